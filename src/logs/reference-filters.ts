/**
 * Log filters in the reference's shape, `{ key, operator, value: [v] }` (Cloudflare's logs API), read as
 * this library's `{ field, op, value }`, so a filter written for the reference works here unchanged. The
 * result goes through the same validation as a native filter (`parseLogQuery` and friends).
 */
import { LogQueryError, type LogQueryIssue } from '../errors.js'
import { filterKind, OPS_BY_KIND } from './filters.js'
import type { LogFilterField, LogFilterOp } from './types.js'

/** The reference's keys this library records, and the field each one is. */
const REFERENCE_KEYS: Readonly<Record<string, LogFilterField>> = {
  created_at: 'createdAt',
  success: 'success',
  cached: 'cached',
  provider: 'provider',
  model: 'model',
  cost: 'cost',
  tokens: 'tokens',
  tokens_in: 'tokensIn',
  tokens_out: 'tokensOut',
  duration: 'duration',
  feedback: 'feedback',
  event_id: 'eventId',
  dlp_action: 'dlpAction',
  'metadata.key': 'metadata.key',
  'metadata.value': 'metadata.value',
}

/** The reference's keys for what this library does not record (`id` is a path instead: `GET /logs/:id`). */
const UNRECORDED_KEYS = new Set([
  'id',
  'request_content_type',
  'response_content_type',
  'request_type',
  'model_type',
  'authentication',
  'wholesale',
  'compatibilityMode',
  'user_agent',
])

const OPERATORS: readonly LogFilterOp[] = ['eq', 'neq', 'contains', 'lt', 'gt']
const SHAPE_KEYS = new Set(['key', 'operator', 'value'])
// A date, or a date-time with its zone: without one, JS would read the time in the server's own zone.
const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/
const INTEGER_TEXT = /^\d+$/

/** Whether a filter is written in the reference's shape rather than this library's. */
function isReferenceShaped(filter: unknown): filter is Record<string, unknown> {
  return (
    typeof filter === 'object' &&
    filter !== null &&
    !Array.isArray(filter) &&
    (Object.hasOwn(filter, 'key') || Object.hasOwn(filter, 'operator'))
  )
}

/**
 * `filters` (an array, or its JSON text as a URL carries it) with every reference-shaped entry rewritten
 * as `{ field, op, value }`; native entries stay as they are, and anything that is not an array of
 * filters is handed back untouched for the native validation to refuse. A malformed reference filter
 * throws a `LogQueryError` naming it (`filters.<index>`) and its key.
 *
 * - `key`: the reference's filter keys this library records (`created_at`, `success`, `cached`,
 *   `provider`, `model`, `cost`, `tokens`, `tokens_in`, `tokens_out`, `duration`, `feedback`, `event_id`,
 *   `dlp_action`, `metadata.key`, `metadata.value`), and `metadata.<name>` for one entry. Keys for what it does not
 *   record (`model_type`, `user_agent`, ...) are refused by name, never ignored.
 * - `operator`: `eq`, `neq`, `contains`, `lt` or `gt`, where the field's kind allows it.
 * - `value`: an array of exactly one value; filters combine with AND, so several values cannot be
 *   expressed in one filter. `created_at` also takes an ISO 8601 date-time.
 *
 * @example
 * fromReferenceFilters('[{"key":"tokens_in","operator":"gt","value":[100]}]', 'log query')
 * // [{ field: 'tokensIn', op: 'gt', value: 100 }]
 */
export function fromReferenceFilters(filters: unknown, what: string): unknown {
  let list = filters
  if (typeof filters === 'string') {
    try {
      list = JSON.parse(filters)
    } catch {
      return filters
    }
  }
  if (!Array.isArray(list) || !list.some(isReferenceShaped)) return filters
  const issues: LogQueryIssue[] = []
  const mapped = list.map((filter: unknown, index) => {
    if (!isReferenceShaped(filter)) return filter
    const result = fromReferenceFilter(filter)
    if (typeof result === 'string') issues.push({ path: `filters.${index}`, message: result })
    return result
  })
  if (issues.length > 0) throw new LogQueryError(what, issues)
  return mapped
}

/** The native filter, or why the reference filter is refused. */
function fromReferenceFilter(
  filter: Record<string, unknown>,
): { field: LogFilterField; op: LogFilterOp; value: string | number | boolean } | string {
  const { key, operator, value } = filter
  const name = typeof key === 'string' ? `filter on '${key}'` : 'filter'
  const extra = Object.keys(filter).filter((property) => !SHAPE_KEYS.has(property))
  if (extra.length > 0) {
    return `${name}: unexpected ${JSON.stringify(extra[0])}; a reference filter is { key, operator, value: [v] }`
  }
  if (typeof key !== 'string') return `${name}: key must be a string, e.g. "provider"`
  const field = fieldOf(key)
  if (field === undefined) {
    if (UNRECORDED_KEYS.has(key)) return `${name}: the gateway does not record ${key}`
    return `${name}: unknown key; expected ${Object.keys(REFERENCE_KEYS).join(', ')} or metadata.<name>`
  }
  if (typeof operator !== 'string' || !(OPERATORS as readonly string[]).includes(operator)) {
    return `${name}: operator must be one of ${OPERATORS.join(', ')}, got ${JSON.stringify(operator)}`
  }
  const allowed = OPS_BY_KIND[filterKind(field)!]
  if (!allowed.includes(operator as LogFilterOp)) {
    return `${name}: '${operator}' does not apply to ${key}; use ${allowed.join(', ')}`
  }
  if (!Array.isArray(value) || value.length !== 1) {
    return `${name}: value must be an array of exactly one value, e.g. ["openai"] (filters combine with AND)`
  }
  const [only] = value as unknown[]
  if (typeof only !== 'string' && typeof only !== 'number' && typeof only !== 'boolean') {
    return `${name}: the value must be a string, number or boolean, got ${JSON.stringify(only ?? null)}`
  }
  if (field !== 'createdAt' || typeof only !== 'string' || INTEGER_TEXT.test(only)) {
    return { field, op: operator as LogFilterOp, value: only }
  }
  const ms = ISO_DATE.test(only) && isCalendarDate(only) ? Date.parse(only) : Number.NaN
  if (Number.isNaN(ms)) {
    return `${name}: expected milliseconds since the epoch or an ISO 8601 date-time with its zone, got ${JSON.stringify(only)}`
  }
  return { field, op: operator as LogFilterOp, value: ms }
}

/**
 * Whether the date a `created_at` value begins with is on the calendar: `Date.parse` takes any day up to
 * 31 and rolls it into the next month (`2024-02-30` is March 1), which would move the filter's bound.
 */
function isCalendarDate(iso: string): boolean {
  const [year, month, day] = iso.slice(0, 10).split('-').map(Number) as [number, number, number]
  return month >= 1 && month <= 12 && day >= 1 && day <= new Date(Date.UTC(year, month, 0)).getUTCDate()
}

function fieldOf(key: string): LogFilterField | undefined {
  if (Object.hasOwn(REFERENCE_KEYS, key)) return REFERENCE_KEYS[key]
  return key.startsWith('metadata.') && key.length > 'metadata.'.length ? (key as LogFilterField) : undefined
}
