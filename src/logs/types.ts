/**
 * Request logs: the record the gateway writes per request, the queries an admin API runs over them, and the
 * `LogStore` interface that memory, Postgres or host stores implement. The parse functions here validate
 * queries arriving as JSON or URL query strings; every store also runs them on its own input, so a bad
 * query fails the same way whichever store answers it.
 */
import { z } from 'zod'
import {
  decodeCursor,
  FILTER_FIELDS,
  type FilterKind,
  filterKind,
  isLogId,
  metadataText,
  numericText,
  OPS_BY_KIND,
  storableText,
} from './filters.js'

/** Custom metadata: a flat object of string, number or boolean values (`cf-aig-metadata`). */
export type LogMetadata = Record<string, string | number | boolean>

/** How a request ended, from the gateway's point of view. */
export type LogOutcome =
  | 'success'
  | 'cache_hit'
  | 'rate_limited'
  | 'blocked'
  | 'upstream_error'
  | 'gateway_error'
  | 'aborted'

export const LOG_OUTCOMES = [
  'success',
  'cache_hit',
  'rate_limited',
  'blocked',
  'upstream_error',
  'gateway_error',
  'aborted',
] as const satisfies readonly LogOutcome[]

/**
 * One request as logged: the fields of the reference's log entry, in camelCase.
 *
 * @example
 * const record: LogRecord = { id: uuidv7(), createdAt: Date.now(), provider: 'openai', model: 'gpt-4o-mini', ... }
 */
export interface LogRecord {
  /** A UUIDv7, so ids sort by time; stores keep it lower-case. */
  id: string
  /** Milliseconds since the epoch when the request arrived. */
  createdAt: number
  provider: string | null
  model: string | null
  /** The request path relative to the gateway mount point. */
  path: string
  success: boolean
  statusCode: number
  /** Answered from the cache. */
  cached: boolean
  durationMs: number
  /** Milliseconds until the first response byte; null when nothing came back. */
  ttfbMs: number | null
  tokensIn: number | null
  tokensOut: number | null
  /** Estimated cost in USD; null when the price is unknown (never 0 for unknown). */
  cost: number | null
  /** The cost came from `cf-aig-custom-cost`. */
  customCost: boolean
  metadata: LogMetadata
  /** Which entry of a universal request answered (0-based); null for other routes. */
  step: number | null
  /** `cf-aig-event-id`. */
  eventId: string | null
  /** Upstream attempts made, retries included. */
  attempts: number
  /** Bytes. */
  requestSize: number
  /** Bytes. */
  responseSize: number
  outcome: LogOutcome
  /** The reference's numeric error code when the gateway failed the request. */
  errorCode: number | null
  /** The host's user or tenant id. */
  principal: string | null
  requestBody: string | null
  responseBody: string | null
  /** Thumbs up (1) or down (-1). */
  feedback: 1 | -1 | null
  /** An integer from 0 to 100. */
  score: number | null
}

export type LogFilterOp = 'eq' | 'neq' | 'contains' | 'lt' | 'gt'

/**
 * `tokens` is `tokensIn + tokensOut` (a missing side counts 0; null when both are). `duration` is
 * `durationMs`. `metadata.<key>` reads one entry; `metadata.key` and `metadata.value` match when any entry's
 * key or value does (so a metadata key literally named `key` or `value` cannot be addressed by name).
 */
export type LogFilterField =
  | 'provider'
  | 'model'
  | 'success'
  | 'cached'
  | 'cost'
  | 'tokens'
  | 'tokensIn'
  | 'tokensOut'
  | 'duration'
  | 'statusCode'
  | 'eventId'
  | 'outcome'
  | 'principal'
  | 'feedback'
  | 'score'
  | 'createdAt'
  | `metadata.${string}`

/**
 * One condition. Text fields take `eq`, `neq`, `contains`; booleans `eq`, `neq`; numbers and `createdAt`
 * `eq`, `neq`, `lt`, `gt`; metadata all five. See `filters.ts` for null handling and comparison rules.
 *
 * @example
 * const filter: LogFilter = { field: 'metadata.team', op: 'eq', value: 'search' }
 */
export interface LogFilter {
  field: LogFilterField
  op: LogFilterOp
  value: string | number | boolean
}

export type LogOrderBy = 'createdAt' | 'provider' | 'model' | 'success' | 'cached' | 'cost' | 'duration'

/** Which records: every filter must match (AND), and `from <= createdAt < to` (milliseconds). */
export interface LogSelection {
  filters?: LogFilter[] | undefined
  from?: number | undefined
  to?: number | undefined
}

/**
 * A page of logs. Defaults: newest first (`createdAt`, `desc`), 50 per page (at most 1000).
 *
 * @example
 * const page = await store.list({ filters: [{ field: 'success', op: 'eq', value: false }], limit: 20 })
 * const next = await store.list({ filters: [...], limit: 20, cursor: page.nextCursor })
 */
export interface LogQuery extends LogSelection {
  orderBy?: LogOrderBy | undefined
  direction?: 'asc' | 'desc' | undefined
  limit?: number | undefined
  /** `nextCursor` of the previous page, taken with the same order; records written since never repeat or go missing. */
  cursor?: string | undefined
}

export interface LogListQuery extends LogQuery {
  /** Return `requestBody`/`responseBody`; otherwise they are null. Default false. */
  includeBodies?: boolean | undefined
}

/** A `LogListQuery` after `parseLogQuery`, defaults filled in. */
export interface ResolvedLogQuery {
  filters: LogFilter[]
  from?: number | undefined
  to?: number | undefined
  orderBy: LogOrderBy
  direction: 'asc' | 'desc'
  limit: number
  cursor?: string | undefined
  includeBodies: boolean
}

export interface LogPage {
  /** Bodies are null unless the query asked for them. */
  records: LogRecord[]
  /** Present when more records follow. */
  nextCursor?: string | undefined
}

/** Feedback on one log; `metadata` replaces the whole object. `null` clears feedback or score. */
export interface LogPatch {
  feedback?: 1 | -1 | null | undefined
  /** An integer from 0 to 100. */
  score?: number | null | undefined
  /** At most 5 flat entries. */
  metadata?: LogMetadata | undefined
}

/** A `metadata.<key>` group here always names that key, including `metadata.key`. */
export type AnalyticsGroupBy = 'provider' | 'model' | 'outcome' | `metadata.${string}`

/**
 * Totals over the selected records, per group and per time bucket (UTC, aligned to the epoch).
 *
 * @example
 * await store.analytics({ from: Date.now() - 86_400_000, groupBy: ['provider'], bucket: 'hour' })
 */
export interface AnalyticsQuery extends LogSelection {
  groupBy?: AnalyticsGroupBy[] | undefined
  bucket?: 'minute' | 'hour' | 'day' | undefined
}

export interface ResolvedAnalyticsQuery {
  filters: LogFilter[]
  from?: number | undefined
  to?: number | undefined
  groupBy: AnalyticsGroupBy[]
  bucket?: 'minute' | 'hour' | 'day' | undefined
}

/**
 * One group (and bucket) with at least one record. Rows come sorted by bucket, then by group values in
 * `groupBy` order (code point order, nulls last); buckets without records are absent.
 */
export interface AnalyticsRow {
  /** Keyed by the `groupBy` entries; metadata values as text, null when absent. */
  group: Record<string, string | null>
  /** Start of the bucket in milliseconds; present when the query has `bucket`. */
  bucketStart?: number
  requests: number
  /** Records with `success: false`. */
  errors: number
  cacheHits: number
  /** Sums; a missing count adds 0. */
  tokensIn: number
  tokensOut: number
  /** Sum of known costs; null when no record had one. */
  cost: number | null
  /** Percentiles of `durationMs` by linear interpolation, the definition of Postgres `percentile_cont`. */
  latencyP50: number
  latencyP95: number
}

/**
 * Where request logs live. Every method validates its input with the parse functions below and throws
 * `LogQueryError` (or `LogRecordError` from `write`) on bad input; `logStoreConformance` in `./testing`
 * pins the rest of the behaviour.
 */
export interface LogStore {
  /** Stores new records; an id already stored is skipped (the first write wins). */
  write(records: readonly LogRecord[]): Promise<void>
  /** One record, bodies included. */
  get(id: string): Promise<LogRecord | undefined>
  list(query: LogListQuery): Promise<LogPage>
  /** Applies feedback; returns the updated record (bodies included), or undefined when there is none. */
  patch(id: string, patch: LogPatch): Promise<LogRecord | undefined>
  /** Deletes the selected records (`{}` deletes all) and returns how many went. */
  delete(selection: LogSelection): Promise<number>
  analytics(query: AnalyticsQuery): Promise<AnalyticsRow[]>
  close?(): Promise<void>
}

export const DEFAULT_LOG_LIMIT = 50
export const MAX_LOG_LIMIT = 1000
const MAX_FILTERS = 25
const MAX_METADATA_ENTRIES = 5
const MAX_GROUP_BY = 5

/** One problem with a query: where (`filters.0.op`) and what. */
export interface LogQueryIssue {
  path: string
  message: string
}

/** A log query, patch or analytics request that does not validate (an admin API answers 400); `issues` names each bad field. */
export class LogQueryError extends Error {
  readonly code = 'GW_ERR_INVALID_REQUEST'
  readonly issues: LogQueryIssue[]
  constructor(what: string, issues: LogQueryIssue[]) {
    super(
      `Invalid ${what}: ${issues.map((issue) => `${issue.path || '(root)'}: ${issue.message}`).join('; ')}`,
    )
    this.name = 'LogQueryError'
    this.issues = issues
  }
}

/** A record handed to `write` that a store cannot keep as given. */
export class LogRecordError extends TypeError {
  override readonly name = 'LogRecordError'
  readonly issues: LogQueryIssue[]
  constructor(issues: LogQueryIssue[]) {
    super(`Invalid log record: ${issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ')}`)
    this.issues = issues
  }
}

// URL query strings carry everything as text; these read it back where the JSON form would have a number,
// a boolean or an array.
const NUMBER_STRING = /^-?\d+(\.\d+)?$/
const fromNumberString = (value: unknown) =>
  typeof value === 'string' && NUMBER_STRING.test(value) ? Number(value) : value
const fromBooleanString = (value: unknown) => (value === 'true' ? true : value === 'false' ? false : value)
function fromJsonString(value: unknown): unknown {
  if (typeof value !== 'string') return value
  try {
    return JSON.parse(value)
  } catch {
    return value
  }
}

const scalar = z.union([z.string(), z.number(), z.boolean()])
const timeMs = z.preprocess(fromNumberString, z.number().int().min(0))

function filterValue(kind: FilterKind, op: LogFilterOp, value: string | number | boolean) {
  const asNumber =
    typeof value === 'number' ? value : typeof value === 'string' ? numericText(value) : undefined
  switch (kind) {
    case 'text':
      return storableText(metadataText(value))
    case 'boolean':
      return typeof value === 'boolean' ? value : (fromBooleanString(value) as boolean | undefined)
    case 'number':
      return asNumber
    case 'time':
      return asNumber !== undefined && Number.isSafeInteger(asNumber) ? asNumber : undefined
    case 'metadata':
      return op === 'lt' || op === 'gt' ? asNumber : storableText(metadataText(value))
  }
}

const VALUE_EXPECTED: Record<FilterKind, string> = {
  text: 'a string',
  boolean: 'true or false',
  number: 'a number',
  time: 'milliseconds since the epoch (an integer)',
  metadata: 'a number (lt and gt compare metadata numerically)',
}

const filterSchema = z
  .strictObject({ field: z.string(), op: z.enum(['eq', 'neq', 'contains', 'lt', 'gt']), value: scalar })
  .transform((filter, ctx): LogFilter => {
    const kind = filterKind(filter.field)
    if (kind === undefined) {
      const known = `${FILTER_FIELDS.join(', ')}, metadata.key, metadata.value or metadata.<key>`
      ctx.addIssue({
        code: 'custom',
        path: ['field'],
        message: `unknown field '${filter.field}': expected ${known}`,
      })
      return z.NEVER
    }
    if (!OPS_BY_KIND[kind].includes(filter.op)) {
      const allowed = OPS_BY_KIND[kind].join(', ')
      const message = `'${filter.op}' does not apply to '${filter.field}' (${kind}); use ${allowed}`
      ctx.addIssue({ code: 'custom', path: ['op'], message })
      return z.NEVER
    }
    const value = filterValue(kind, filter.op, filter.value)
    if (value === undefined) {
      const message = `'${filter.field}' ${filter.op} needs ${VALUE_EXPECTED[kind]}, got ${JSON.stringify(filter.value)}`
      ctx.addIssue({ code: 'custom', path: ['value'], message })
      return z.NEVER
    }
    return { field: storableText(filter.field) as LogFilterField, op: filter.op, value }
  })

const filtersSchema = z.preprocess(
  fromJsonString,
  z
    .array(filterSchema, { error: 'expected an array of { field, op, value } or its JSON text' })
    .max(MAX_FILTERS),
)

const selectionShape = {
  filters: filtersSchema.default([]),
  from: timeMs.optional(),
  to: timeMs.optional(),
}

function checkRange(query: { from?: number | undefined; to?: number | undefined }, ctx: z.RefinementCtx) {
  if (query.from !== undefined && query.to !== undefined && query.from > query.to) {
    ctx.addIssue({ code: 'custom', path: ['to'], message: `must not be before from (${query.from})` })
  }
}

const logQuerySchema = z
  .strictObject({
    ...selectionShape,
    orderBy: z
      .enum(['createdAt', 'provider', 'model', 'success', 'cached', 'cost', 'duration'])
      .default('createdAt'),
    direction: z.enum(['asc', 'desc']).default('desc'),
    limit: z
      .preprocess(fromNumberString, z.number().int().min(1).max(MAX_LOG_LIMIT))
      .default(DEFAULT_LOG_LIMIT),
    cursor: z.string().optional(),
    includeBodies: z.preprocess(fromBooleanString, z.boolean()).default(false),
  })
  .superRefine(checkRange)
  .superRefine((query, ctx) => {
    if (query.cursor !== undefined && !decodeCursor(query.cursor, query.orderBy, query.direction)) {
      const message = `not a cursor from a page ordered by ${query.orderBy} ${query.direction}`
      ctx.addIssue({ code: 'custom', path: ['cursor'], message })
    }
  })

const selectionSchema = z.strictObject(selectionShape).superRefine(checkRange)

const metadataValue = z.union([z.string(), z.number(), z.boolean()])

function storableMetadata(metadata: Record<string, string | number | boolean>): LogMetadata {
  // fromEntries defines own properties, so even a key named __proto__ stays a plain entry.
  return Object.fromEntries(
    Object.entries(metadata).map(([key, value]) => [
      storableText(key),
      typeof value === 'string' ? storableText(value) : value === 0 ? 0 : value,
    ]),
  )
}

const recordMetadata = z.record(z.string(), metadataValue).transform(storableMetadata)

const patchMetadata = z
  .record(z.string().min(1).max(128), metadataValue)
  .refine((metadata) => Object.keys(metadata).length <= MAX_METADATA_ENTRIES, {
    message: `may have at most ${MAX_METADATA_ENTRIES} entries`,
  })
  .transform(storableMetadata)

const logPatchSchema = z.strictObject({
  feedback: z.preprocess(fromNumberString, z.union([z.literal(1), z.literal(-1)]).nullable()).optional(),
  score: z.preprocess(fromNumberString, z.number().int().min(0).max(100).nullable()).optional(),
  metadata: z.preprocess(fromJsonString, patchMetadata).optional(),
})

const GROUP_FIELDS = ['provider', 'model', 'outcome']
const groupByItem = z
  .string()
  .refine((group) => GROUP_FIELDS.includes(group) || /^metadata\../s.test(group), {
    message: 'expected provider, model, outcome or metadata.<key>',
  })
  .transform((group) => storableText(group) as AnalyticsGroupBy)

// `groupBy=provider,model` in a URL, a JSON array string, or a real array.
const fromListString = (value: unknown) =>
  typeof value === 'string' && !value.startsWith('[') ? value.split(',') : fromJsonString(value)

const analyticsQuerySchema = z
  .strictObject({
    ...selectionShape,
    groupBy: z
      .preprocess(fromListString, z.array(groupByItem).max(MAX_GROUP_BY))
      .refine((groups) => new Set(groups).size === groups.length, { message: 'names a group twice' })
      .default([]),
    bucket: z.enum(['minute', 'hour', 'day']).optional(),
  })
  .superRefine(checkRange)

function issuesOf(error: z.ZodError): LogQueryIssue[] {
  return error.issues.map((issue) => ({ path: issue.path.map(String).join('.'), message: issue.message }))
}

function parseWith<T>(schema: z.ZodType<T>, what: string, input: unknown): T {
  const result = schema.safeParse(input ?? {})
  if (!result.success) throw new LogQueryError(what, issuesOf(result.error))
  return result.data
}

/**
 * Validates a list query from JSON or a URL query object and fills in the defaults. `filters` may be an
 * array or its JSON text; numbers and booleans may arrive as strings. Unknown keys are refused.
 *
 * @example
 * parseLogQuery({ filters: '[{"field":"cost","op":"gt","value":0.01}]', limit: '20' })
 * // { filters: [{ field: 'cost', op: 'gt', value: 0.01 }], limit: 20, orderBy: 'createdAt', direction: 'desc', ... }
 * parseLogQuery({ filters: [{ field: 'cost', op: 'contains', value: 1 }] })
 * // LogQueryError: Invalid log query: filters.0.op: 'contains' does not apply to 'cost' (number); use eq, neq, lt, gt
 */
export function parseLogQuery(input: unknown): ResolvedLogQuery {
  return parseWith(logQuerySchema, 'log query', input)
}

/**
 * Validates the selection of a log deletion: `filters`, `from`, `to`.
 *
 * @example
 * parseLogSelection({ to: Date.now() - 30 * 86_400_000 }) // older than 30 days
 */
export function parseLogSelection(input: unknown): LogSelection & { filters: LogFilter[] } {
  return parseWith(selectionSchema, 'log selection', input)
}

/**
 * Validates feedback for one log: `feedback` 1, -1 or null, `score` an integer 0..100 or null, `metadata`
 * at most 5 flat entries.
 *
 * @example
 * parseLogPatch({ feedback: 1, score: 90 }) // { feedback: 1, score: 90 }
 * parseLogPatch({ score: 101 }) // LogQueryError: Invalid log patch: score: Too big: expected number to be <=100
 */
export function parseLogPatch(input: unknown): LogPatch {
  return parseWith(logPatchSchema, 'log patch', input)
}

/**
 * Validates an analytics query; `groupBy` may also be a comma-separated or JSON-array string.
 *
 * @example
 * parseAnalyticsQuery({ groupBy: 'provider,metadata.team', bucket: 'day' })
 */
export function parseAnalyticsQuery(input: unknown): ResolvedAnalyticsQuery {
  return parseWith(analyticsQuerySchema, 'analytics query', input)
}

const int4 = z.number().int().min(-2147483648).max(2147483647)
const count = z.number().int().min(0)
const text = z.string().transform(storableText)

const logRecordSchema = z.object({
  id: z
    .string()
    .refine(isLogId, { message: 'expected a UUID' })
    .transform((id) => id.toLowerCase()),
  createdAt: count,
  provider: text.nullable(),
  model: text.nullable(),
  path: text,
  success: z.boolean(),
  statusCode: int4,
  cached: z.boolean(),
  durationMs: z.number().min(0),
  ttfbMs: z.number().min(0).nullable(),
  tokensIn: count.nullable(),
  tokensOut: count.nullable(),
  cost: z.number().nullable(),
  customCost: z.boolean(),
  metadata: recordMetadata,
  step: int4.nullable(),
  eventId: text.nullable(),
  attempts: int4.min(0),
  requestSize: count,
  responseSize: count,
  outcome: z.enum(LOG_OUTCOMES),
  errorCode: int4.nullable(),
  principal: text.nullable(),
  requestBody: text.nullable(),
  responseBody: text.nullable(),
  feedback: z.union([z.literal(1), z.literal(-1)]).nullable(),
  score: z.number().int().min(0).max(100).nullable(),
})

/**
 * Checks records before a store keeps them and returns copies as stored: ids lower-case, and NUL or
 * unpaired surrogates in text replaced by U+FFFD (Postgres text cannot hold them). Throws
 * `LogRecordError` naming the record and field; nothing of the batch should be written then.
 *
 * @example
 * const stored = validateLogRecords(records)
 */
export function validateLogRecords(records: readonly LogRecord[]): LogRecord[] {
  return records.map((record, index) => {
    const result = logRecordSchema.safeParse(record)
    if (result.success) return result.data
    const issues = issuesOf(result.error).map((issue) => ({ ...issue, path: `[${index}].${issue.path}` }))
    throw new LogRecordError(issues)
  })
}
