/**
 * The query semantics every log store shares, written once in JS. The memory store runs these functions
 * directly; the Postgres store translates the same rules into SQL, and the conformance suite holds the two
 * to the same answers. Each rule is chosen so that SQL can express it exactly:
 *
 * - Text compares by Unicode code point (Postgres `COLLATE "C"`), never by locale.
 * - `neq` matches exactly the records `eq` does not, including those where the field is null or absent.
 * - `eq`, `contains`, `lt` and `gt` never match a null or absent value.
 * - `contains` is a case-sensitive substring test.
 * - Metadata values compare as text for `eq`/`neq`/`contains` (numbers in plain decimal, booleans as
 *   `true`/`false`, as Postgres `->>` prints them) and as numbers for `lt`/`gt`, where a value that is
 *   not a plain decimal never matches.
 * - Nulls sort after every value (last ascending, first descending); ties break on the id.
 */
import { isWellFormed } from '../surrogates.js'
import {
  LOG_DLP_ACTIONS,
  LOG_GUARDRAIL_ACTIONS,
  type LogFilter,
  type LogFilterOp,
  type LogOrderBy,
  type LogRecord,
  type LogSelection,
} from './types.js'

/**
 * How a filter field compares; decides which operators apply and how its value is read. An `action` field
 * holds one of a few upper-case words (`ACTION_VALUES`).
 */
export type FilterKind = 'text' | 'boolean' | 'number' | 'time' | 'metadata' | 'action'

const FIELD_KINDS: Record<string, FilterKind> = {
  provider: 'text',
  model: 'text',
  eventId: 'text',
  outcome: 'text',
  principal: 'text',
  route: 'text',
  dlpAction: 'action',
  guardrailAction: 'action',
  success: 'boolean',
  cached: 'boolean',
  cost: 'number',
  tokens: 'number',
  tokensIn: 'number',
  tokensOut: 'number',
  duration: 'number',
  statusCode: 'number',
  feedback: 'number',
  score: 'number',
  createdAt: 'time',
}

/** The filter fields besides `metadata.<key>`, `metadata.key` and `metadata.value`. */
export const FILTER_FIELDS = Object.keys(FIELD_KINDS)

/** The values each `action` field can hold. */
export const ACTION_VALUES: Readonly<Record<string, readonly string[]>> = {
  dlpAction: LOG_DLP_ACTIONS,
  guardrailAction: LOG_GUARDRAIL_ACTIONS,
}

/** Which operators make sense for each kind; anything else is refused rather than guessed at. */
export const OPS_BY_KIND: Record<FilterKind, readonly LogFilterOp[]> = {
  text: ['eq', 'neq', 'contains'],
  boolean: ['eq', 'neq'],
  number: ['eq', 'neq', 'lt', 'gt'],
  time: ['eq', 'neq', 'lt', 'gt'],
  metadata: ['eq', 'neq', 'contains', 'lt', 'gt'],
  action: ['eq', 'neq'],
}

/**
 * A plain decimal that both JS `Number()` and Postgres `float8` read to the same double. The digit counts
 * are bounded (255 is also the largest repeat count Postgres regexes allow) so no match can overflow a
 * float8, which would make Postgres raise an error where JS returns Infinity.
 */
export const NUMERIC_TEXT = /^-?[0-9]{1,255}(\.[0-9]{1,255})?$/

const MINUTE_MS = 60_000
export const BUCKET_MS = { minute: MINUTE_MS, hour: 60 * MINUTE_MS, day: 24 * 60 * MINUTE_MS } as const

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Whether `id` can name a record; anything else is answered with "not found" without a lookup. */
export function isLogId(id: string): boolean {
  return UUID.test(id)
}

/** The kind of a filter field, or undefined for a name no store knows. */
export function filterKind(field: string): FilterKind | undefined {
  if (field.startsWith('metadata.') && field.length > 'metadata.'.length) return 'metadata'
  return Object.hasOwn(FIELD_KINDS, field) ? FIELD_KINDS[field] : undefined
}

// NUL and unpaired surrogates: Postgres text cannot hold the first, and the driver turns the second into
// U+FFFD on the way in. Both stores replace them up front so they keep the same characters.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching NUL is the point
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/** `text` with the characters no store can keep replaced by U+FFFD. */
export function storableText(text: string): string {
  // Nearly all text is clean: two native checks instead of a regex pass over a whole body.
  if (!text.includes('\u0000') && isWellFormed(text)) return text
  return text.replace(UNSTORABLE, '\uFFFD')
}

/** `storableText` of text that may be null. */
export function storableOrNull(text: string | null): string | null {
  return text === null ? null : storableText(text)
}

/**
 * A metadata value as text, the way Postgres `->>` prints it from jsonb: numbers in plain decimal without
 * an exponent, booleans as `true`/`false`.
 *
 * @example
 * metadataText(1e21) // '1000000000000000000000'
 * metadataText(1.5e-7) // '0.00000015'
 */
export function metadataText(value: string | number | boolean): string {
  if (typeof value === 'string') return value
  if (typeof value === 'boolean') return value ? 'true' : 'false'
  return plainDecimal(value)
}

function plainDecimal(value: number): string {
  const text = String(value)
  const match = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(text)
  if (!match) return text
  const [, sign, lead, fraction = '', exponent] = match
  const digits = `${lead}${fraction}`
  const point = 1 + Number(exponent)
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`
}

/** The number a text stands for, or undefined when it is not a plain decimal. */
export function numericText(text: string): number | undefined {
  return NUMERIC_TEXT.test(text) ? Number(text) : undefined
}

/**
 * Compares by Unicode code point, as Postgres `COLLATE "C"` does on UTF-8. Plain `<` compares UTF-16
 * code units, which puts astral characters (surrogate pairs) before U+E000..U+FFFF.
 *
 * @example
 * ['😀', 'ﬁ', 'a', 'B'].sort(compareText) // ['B', 'a', 'ﬁ', '😀']
 */
export function compareText(a: string, b: string): number {
  const length = Math.min(a.length, b.length)
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) return codePointRank(x) - codePointRank(y)
  }
  return a.length - b.length
}

function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000
  return unit >= 0xe000 ? unit - 0x800 : unit
}

type Scalar = string | number | boolean | null

function fieldValue(record: LogRecord, field: string): Scalar {
  switch (field) {
    case 'tokens':
      if (record.tokensIn === null && record.tokensOut === null) return null
      return (record.tokensIn ?? 0) + (record.tokensOut ?? 0)
    case 'duration':
      return record.durationMs
    case 'route':
      return record.route?.name ?? null
    case 'dlpAction':
      return record.guard?.dlp?.action ?? null
    case 'guardrailAction':
      return record.guard?.guardrails?.action ?? null
    default:
      return record[field as keyof LogRecord] as Scalar
  }
}

function textMatches(op: LogFilterOp, text: string, value: string | number | boolean): boolean {
  if (op === 'contains') return text.includes(value as string)
  if (op === 'lt' || op === 'gt') {
    const number = numericText(text)
    if (number === undefined) return false
    return op === 'lt' ? number < (value as number) : number > (value as number)
  }
  return text === value
}

function metadataMatches(record: LogRecord, filter: LogFilter): boolean {
  const key = filter.field.slice('metadata.'.length)
  const op = filter.op === 'neq' ? 'eq' : filter.op
  let found: boolean
  if (key === 'key') {
    found = Object.keys(record.metadata).some((k) => textMatches(op, k, filter.value))
  } else if (key === 'value') {
    found = Object.values(record.metadata).some((v) => textMatches(op, metadataText(v), filter.value))
  } else {
    const value = Object.hasOwn(record.metadata, key) ? record.metadata[key] : undefined
    found = value !== undefined && textMatches(op, metadataText(value), filter.value)
  }
  return filter.op === 'neq' ? !found : found
}

/**
 * Whether a record passes one filter. Expects a filter as `parseLogQuery` leaves it: numbers for numeric
 * fields and metadata `lt`/`gt`, booleans for boolean fields, text otherwise.
 */
export function matchesFilter(record: LogRecord, filter: LogFilter): boolean {
  if (filterKind(filter.field) === 'metadata') return metadataMatches(record, filter)
  const actual = fieldValue(record, filter.field)
  switch (filter.op) {
    case 'eq':
      return actual === filter.value
    case 'neq':
      return actual !== filter.value
    case 'contains':
      return typeof actual === 'string' && actual.includes(filter.value as string)
    // Only numeric fields accept lt/gt, so both sides are numbers here.
    case 'lt':
      return actual !== null && (actual as number) < (filter.value as number)
    case 'gt':
      return actual !== null && (actual as number) > (filter.value as number)
  }
}

/**
 * Whether a record is in the time range (`from` inclusive, `to` exclusive) and passes every filter.
 *
 * @example
 * matchesSelection(record, parseLogSelection({ filters: [{ field: 'cached', op: 'eq', value: true }] }))
 */
export function matchesSelection(record: LogRecord, selection: LogSelection): boolean {
  if (selection.from !== undefined && record.createdAt < selection.from) return false
  if (selection.to !== undefined && record.createdAt >= selection.to) return false
  return (selection.filters ?? []).every((filter) => matchesFilter(record, filter))
}

/** Where a record sits in an ordering: the order-by value, then the id that breaks ties. */
export interface OrderPosition {
  value: string | number | boolean | null
  id: string
}

/** The record's position under `orderBy`. */
export function positionOf(record: LogRecord, orderBy: LogOrderBy): OrderPosition {
  return { value: fieldValue(record, orderBy), id: record.id }
}

function compareValues(a: OrderPosition['value'], b: OrderPosition['value']): number {
  if (a === b) return 0
  if (a === null) return 1
  if (b === null) return -1
  if (typeof a === 'string') return compareText(a, b as string)
  return a < b ? -1 : 1
}

/** Compares positions ascending (nulls last); negate for descending, which puts nulls first. */
export function comparePositions(a: OrderPosition, b: OrderPosition): number {
  return compareValues(a.value, b.value) || compareText(a.id, b.id)
}

const ORDER_VALUE_KIND: Record<LogOrderBy, { type: 'string' | 'number' | 'boolean'; nullable: boolean }> = {
  createdAt: { type: 'number', nullable: false },
  provider: { type: 'string', nullable: true },
  model: { type: 'string', nullable: true },
  success: { type: 'boolean', nullable: false },
  cached: { type: 'boolean', nullable: false },
  cost: { type: 'number', nullable: true },
  duration: { type: 'number', nullable: false },
}

/** Whether `orderBy` can hold nulls, which the SQL keyset condition has to treat apart. */
export function orderIsNullable(orderBy: LogOrderBy): boolean {
  return ORDER_VALUE_KIND[orderBy].nullable
}

/**
 * An opaque page cursor: the last record's position, plus the order it was taken in so it cannot be
 * replayed under another one. Positions rather than offsets keep pages free of duplicates and gaps while
 * records are written between fetches.
 */
export function encodeCursor(
  orderBy: LogOrderBy,
  direction: 'asc' | 'desc',
  position: OrderPosition,
): string {
  return Buffer.from(JSON.stringify([orderBy, direction, position.value, position.id])).toString('base64url')
}

/** The position in a cursor made for this order, or undefined for anything else. */
export function decodeCursor(
  cursor: string,
  orderBy: LogOrderBy,
  direction: 'asc' | 'desc',
): OrderPosition | undefined {
  let decoded: unknown
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    return undefined
  }
  if (!Array.isArray(decoded) || decoded.length !== 4) return undefined
  const [cursorOrder, cursorDirection, value, id] = decoded as unknown[]
  if (cursorOrder !== orderBy || cursorDirection !== direction) return undefined
  if (typeof id !== 'string' || !isLogId(id)) return undefined
  const kind = ORDER_VALUE_KIND[orderBy]
  const valid =
    value === null
      ? kind.nullable
      : typeof value === kind.type && (kind.type !== 'number' || Number.isFinite(value))
  if (!valid || (orderBy === 'createdAt' && !Number.isSafeInteger(value))) return undefined
  const position = typeof value === 'string' ? storableText(value) : (value as OrderPosition['value'])
  return { value: position, id: id.toLowerCase() }
}
