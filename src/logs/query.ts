/**
 * Log queries as they arrive, as JSON or as URL query strings: the zod schemas, the coercion of text back
 * to numbers, booleans and arrays, and the parse functions every store runs on its own input, so a bad
 * query fails the same way (a `LogQueryError`) whichever store answers it.
 */
import { z } from 'zod'
import { LogQueryError, type LogQueryIssue } from '../errors.js'
import {
  ACTION_VALUES,
  decodeCursor,
  FILTER_FIELDS,
  type FilterKind,
  filterKind,
  metadataText,
  numericText,
  OPS_BY_KIND,
  storableText,
} from './filters.js'
import type {
  AnalyticsGroupBy,
  LogFilter,
  LogFilterField,
  LogFilterOp,
  LogMetadata,
  LogPatch,
  LogSelection,
  ResolvedAnalyticsQuery,
  ResolvedLogQuery,
} from './types.js'

export const DEFAULT_LOG_LIMIT = 50
export const MAX_LOG_LIMIT = 1000
/**
 * Bytes of bodies a page with `includeBodies` holds at most (its first record's excepted): a database keeps
 * bodies of up to `maxPayloadBytes` each, and a thousand of those would not fit in the gateway's memory.
 */
export const MAX_PAGE_BODY_BYTES = 32 * 1024 * 1024
const MAX_FILTERS = 25
const MAX_METADATA_ENTRIES = 5
const MAX_GROUP_BY = 5

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

function filterValue(kind: FilterKind, field: string, op: LogFilterOp, value: string | number | boolean) {
  const asNumber =
    typeof value === 'number' ? value : typeof value === 'string' ? numericText(value) : undefined
  switch (kind) {
    case 'text':
      return storableText(metadataText(value))
    case 'boolean': {
      // Only `true` and `false`: a store must not read `yes`, `1` or `f` its own way (Postgres's bool does).
      const flag = fromBooleanString(value)
      return typeof flag === 'boolean' ? flag : undefined
    }
    case 'number':
      return asNumber
    case 'time':
      return asNumber !== undefined && Number.isSafeInteger(asNumber) ? asNumber : undefined
    case 'metadata':
      return op === 'lt' || op === 'gt' ? asNumber : storableText(metadataText(value))
    case 'action': {
      // Upper case as stored; `block` is taken for `BLOCK`.
      const action = typeof value === 'string' ? value.toUpperCase() : undefined
      return action !== undefined && ACTION_VALUES[field]!.includes(action) ? action : undefined
    }
  }
}

const VALUE_EXPECTED: Record<Exclude<FilterKind, 'action'>, string> = {
  text: 'a string',
  boolean: 'true or false',
  number: 'a number',
  time: 'milliseconds since the epoch (an integer)',
  metadata: 'a number (lt and gt compare metadata numerically)',
}

function valueExpected(kind: FilterKind, field: string): string {
  return kind === 'action' ? `one of ${ACTION_VALUES[field]!.join(', ')}` : VALUE_EXPECTED[kind]
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
    const value = filterValue(kind, filter.field, filter.op, filter.value)
    if (value === undefined) {
      const message = `'${filter.field}' ${filter.op} needs ${valueExpected(kind, filter.field)}, got ${JSON.stringify(filter.value)}`
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

export const metadataValue = z.union([z.string(), z.number(), z.boolean()])

export function storableMetadata(metadata: Record<string, string | number | boolean>): LogMetadata {
  // fromEntries defines own properties, so even a key named __proto__ stays a plain entry.
  return Object.fromEntries(
    Object.entries(metadata).map(([key, value]) => [
      storableText(key),
      typeof value === 'string' ? storableText(value) : value === 0 ? 0 : value,
    ]),
  )
}

// Checked entry by entry rather than with zod's record, which builds its output by assignment: a key named
// `__proto__` would set the prototype and be lost, where a record's metadata keeps it.
const patchMetadata = z.unknown().transform((value, ctx) => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    ctx.addIssue({ code: 'custom', message: 'expected an object of metadata' })
    return z.NEVER
  }
  const entries = Object.entries(value)
  if (entries.length > MAX_METADATA_ENTRIES) {
    ctx.addIssue({ code: 'custom', message: `may have at most ${MAX_METADATA_ENTRIES} entries` })
    return z.NEVER
  }
  for (const [key, entry] of entries) {
    if (key.length === 0 || key.length > 128) {
      ctx.addIssue({ code: 'custom', path: [key], message: 'a key has 1 to 128 characters' })
    } else if (!metadataValue.safeParse(entry).success) {
      ctx.addIssue({ code: 'custom', path: [key], message: 'expected a string, number or boolean' })
    }
  }
  return storableMetadata(Object.fromEntries(entries) as Record<string, string | number | boolean>)
})

const logPatchSchema = z.strictObject({
  feedback: z.preprocess(fromNumberString, z.union([z.literal(1), z.literal(-1)]).nullable()).optional(),
  score: z.preprocess(fromNumberString, z.number().int().min(0).max(100).nullable()).optional(),
  metadata: z.preprocess(fromJsonString, patchMetadata).optional(),
})

const GROUP_FIELDS = ['provider', 'model', 'outcome', 'principal', 'route', 'variant']
const groupByItem = z
  .string()
  .refine((group) => GROUP_FIELDS.includes(group) || /^metadata\../s.test(group), {
    message: `expected ${GROUP_FIELDS.join(', ')} or metadata.<key>`,
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

export function issuesOf(error: z.ZodError): LogQueryIssue[] {
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
 * Validates an analytics query; `groupBy` may also be a comma-separated or JSON-array string. Groups:
 * `provider`, `model`, `outcome`, `principal`, `route`, `variant` and `metadata.<key>`.
 *
 * @example
 * parseAnalyticsQuery({ groupBy: 'provider,metadata.team', bucket: 'day' })
 * parseAnalyticsQuery({ groupBy: 'variant', filters: [{ field: 'route', op: 'eq', value: 'tiered' }] })
 */
export function parseAnalyticsQuery(input: unknown): ResolvedAnalyticsQuery {
  return parseWith(analyticsQuerySchema, 'analytics query', input)
}
