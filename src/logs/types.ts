/**
 * Request logs: the record the gateway writes per request, the queries an admin API runs over them, and the
 * `LogStore` interface that memory, Postgres or host stores implement. Types only: queries are validated in
 * `./query.ts`, records in `./validate.ts`, and their errors live in the library's catalog (`src/errors.ts`).
 */

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
 * What followed an upstream attempt: it answered, or its failure led to a retry, a fallback or nothing
 * more; `skip`: its breaker was open; `resume`: its stream failed after part of it was sent, and the next
 * target went on from there.
 */
export type LogAttemptAction = 'answered' | 'retry' | 'fallback' | 'final' | 'skip' | 'resume'

export const LOG_ATTEMPT_ACTIONS = [
  'answered',
  'retry',
  'fallback',
  'final',
  'skip',
  'resume',
] as const satisfies readonly LogAttemptAction[]

/** One upstream attempt of a request (or a target skipped for its open circuit breaker). */
export interface LogAttempt {
  provider: string
  model: string | null
  /** The target's universal step or fallback model index (0 for the first). */
  step: number
  /** The provider's status; null when no answer came (a timeout, a reset, a skip). */
  status: number | null
  /** Why it failed (`rate_limited`, `timeout`, ...: see failure classes); null for the attempt that answered. */
  failureClass: string | null
  /** The gateway's error code for a failure without an answer (2105, 2124, 2125, ...), else null. */
  errorCode: number | null
  action: LogAttemptAction
  durationMs: number
}

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
  /**
   * Every attempt, in order, when the request took more than one or skipped a target (a clean answer at the
   * first attempt has none: `attempts`, `provider` and `model` say it all).
   */
  attemptLog?: LogAttempt[] | undefined
  /** For a request to `dynamic/{name}`: the route, its version, the path to the model and the branches drawn. */
  route?: LogRoute | undefined
  /** What guardrails and DLP found in the request and its answer, and what they did. */
  guard?: LogGuard | undefined
  /**
   * For a realtime WebSocket session: its frames each way and how it ended. Its bytes are `requestSize`
   * (client to provider) and `responseSize` (provider to client), its duration the session's.
   */
  websocket?: LogWebSocket | undefined
}

/** How a realtime WebSocket session went, as its log record keeps it. */
export interface LogWebSocket {
  /** Frames from the client to the provider. */
  framesIn: number
  /** Frames from the provider to the client. */
  framesOut: number
  /** The close code the session ended with, as the client was told it; null when it never opened. */
  closeCode: number | null
  /** The close reason (at most 123 bytes), `''` when none was given. */
  closeReason: string
  /** Which side ended it: `client`, `provider`, or `gateway` (a limit, a timeout, the gateway closing). */
  closedBy: 'client' | 'provider' | 'gateway'
}

export const LOG_WEBSOCKET_CLOSERS = [
  'client',
  'provider',
  'gateway',
] as const satisfies readonly LogWebSocket['closedBy'][]

/** How a request was walked through a dynamic route to the model that answered (or failed last). */
export interface LogRoute {
  name: string
  version: number
  /** Element ids from `start` to the model. */
  path: string[]
  /** Percentage element id → the branch drawn (the A/B variant). */
  variants: Record<string, string>
}

/**
 * What guardrails and DLP found in a request and its answer, and what they did. Findings never hold the
 * matched text.
 */
export interface LogGuard {
  readonly dlp?: LogDlp | undefined
  readonly guardrails?: LogGuardrails | undefined
}

export type LogDlpAction = 'FLAG' | 'REDACT' | 'BLOCK'

export const LOG_DLP_ACTIONS = ['FLAG', 'REDACT', 'BLOCK'] as const satisfies readonly LogDlpAction[]

export interface LogDlp {
  /** The strongest action taken: BLOCK over REDACT over FLAG. */
  readonly action: LogDlpAction
  /** At most 100 findings are kept; `truncated` says more were found. */
  readonly findings: LogDlpFinding[]
  readonly truncated?: boolean | undefined
}

export interface LogDlpFinding {
  readonly check: 'REQUEST' | 'RESPONSE'
  readonly profileId: string
  readonly entryId: string
  readonly policyIds: string[]
  /**
   * Where in the JSON body (a JSON pointer, '' for a stream's answer text) and at which UTF-16 offsets of
   * that string.
   */
  readonly path: string
  readonly start: number
  readonly end: number
}

export type LogGuardrailAction = 'FLAG' | 'BLOCK' | 'UNAVAILABLE'

export const LOG_GUARDRAIL_ACTIONS = [
  'FLAG',
  'BLOCK',
  'UNAVAILABLE',
] as const satisfies readonly LogGuardrailAction[]

export interface LogGuardrails {
  /**
   * BLOCK when a category with a block rule was found; FLAG when only flag rules matched; UNAVAILABLE when
   * a classifier failed and the request went on.
   */
  readonly action: LogGuardrailAction
  readonly prompt?: LogGuardHit[] | undefined
  readonly answer?: LogGuardHit[] | undefined
  /** Phases whose classifier was down or too slow. */
  readonly unavailable?: ('prompt' | 'answer')[] | undefined
}

export interface LogGuardHit {
  readonly category: string
  readonly score: number
  /** The classifier that found it. */
  readonly classifier: string
}

export type LogFilterOp = 'eq' | 'neq' | 'contains' | 'lt' | 'gt'

/**
 * `tokens` is `tokensIn + tokensOut` (a missing side counts 0; null when both are). `duration` is
 * `durationMs`. `route` is the dynamic route's name (null for requests that took none). `dlpAction` is
 * `guard.dlp.action` (`FLAG`, `REDACT`, `BLOCK`) and `guardrailAction` is `guard.guardrails.action`
 * (`FLAG`, `BLOCK`, `UNAVAILABLE`), null when absent; both take `eq` and `neq`. `metadata.<key>`
 * reads one entry; `metadata.key` and `metadata.value` match when any entry's key or value does (so a
 * metadata key literally named `key` or `value` cannot be addressed by name).
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
  | 'route'
  | 'dlpAction'
  | 'guardrailAction'
  | 'feedback'
  | 'score'
  | 'createdAt'
  | `metadata.${string}`

/**
 * One condition. Text fields take `eq`, `neq`, `contains`; booleans and actions `eq`, `neq`; numbers and
 * `createdAt` `eq`, `neq`, `lt`, `gt`; metadata all five. See `filters.ts` for null handling and comparison rules.
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
  /**
   * Return `requestBody`/`responseBody`; otherwise they are null. Default false. A page with bodies ends
   * early, with a `nextCursor`, once its bodies pass 32 MiB (`MAX_PAGE_BODY_BYTES`; its first record is
   * always taken, whatever its size).
   */
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

/**
 * `route` is the dynamic route's name. `variant` is one branch of one percentage element, as
 * `<route>/<element id>=<branch>` (`tiered/split=10%`): a record that drew several branches counts once in
 * each of their groups, so the rows of a `variant` grouping can add up to more requests than were made;
 * a record without a drawn branch falls in the null group. A `metadata.<key>` group here always names that
 * key, including `metadata.key`.
 */
export type AnalyticsGroupBy =
  | 'provider'
  | 'model'
  | 'outcome'
  | 'principal'
  | 'route'
  | 'variant'
  | `metadata.${string}`

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
  /** Keyed by the `groupBy` entries; metadata values as text, null when absent (see `AnalyticsGroupBy`). */
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
  /** Records with `feedback` 1 and -1. */
  thumbsUp: number
  thumbsDown: number
  /** Records with a `score`, and its mean over them (null when none has one). */
  scored: number
  scoreAvg: number | null
}

/**
 * Where request logs live. Every method validates its input with the parse functions of `./query.ts` (and
 * `validateLogRecords` of `./validate.ts`) and throws
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
  /**
   * Releases what the store holds. Optional. `gateway.close()` calls it only on a store the gateway made
   * itself, after writing the queued records; a store passed as `logs.store` is the host's to close.
   */
  close?(): Promise<void>
}
