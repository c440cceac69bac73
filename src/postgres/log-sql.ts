/**
 * SQL for the Postgres log store: typed parameters, filter and selection conditions, keyset paging and the
 * column lists of SELECT and INSERT. Every value is a parameter; identifiers come from `log-schema.ts`.
 */
import { NUMERIC_TEXT, orderIsNullable } from '../logs/filters.js'
import type { LogFilter, LogFilterOp, LogOrderBy, LogRecord, LogSelection } from '../logs/types.js'
import { BODY_COLUMNS, COLUMNS, type ColumnType } from './log-schema.js'

/** Collects query parameters and hands back their typed placeholders. */
export class Params {
  readonly values: unknown[] = []
  add(value: unknown, type: ColumnType): string {
    this.values.push(value)
    return `$${this.values.length}::${type}`
  }
}

const TOKENS_SQL =
  'CASE WHEN tokens_in IS NULL AND tokens_out IS NULL THEN NULL ELSE coalesce(tokens_in, 0) + coalesce(tokens_out, 0) END'

/** The dynamic route's name; written exactly as the expression of the route index (migration 5). */
export const ROUTE_NAME_SQL = `((route ->> 'name') COLLATE "C")`

/** `guard.dlp.action` and `guard.guardrails.action`; written exactly as their indexes (migration 6). */
export const DLP_ACTION_SQL = `((guard -> 'dlp' ->> 'action') COLLATE "C")`
export const GUARDRAIL_ACTION_SQL = `((guard -> 'guardrails' ->> 'action') COLLATE "C")`

// Numbers compare as float8 so a fractional filter value never fails an integer cast; created_at keeps its
// own type so its index serves time ranges.
const FILTER_COLUMNS: Record<string, readonly [string, ColumnType]> = {
  provider: ['provider', 'text'],
  model: ['model', 'text'],
  eventId: ['event_id', 'text'],
  outcome: ['outcome', 'text'],
  principal: ['principal', 'text'],
  route: [ROUTE_NAME_SQL, 'text'],
  dlpAction: [DLP_ACTION_SQL, 'text'],
  guardrailAction: [GUARDRAIL_ACTION_SQL, 'text'],
  success: ['success', 'bool'],
  cached: ['cached', 'bool'],
  cost: ['cost', 'float8'],
  tokens: [TOKENS_SQL, 'float8'],
  tokensIn: ['tokens_in', 'float8'],
  tokensOut: ['tokens_out', 'float8'],
  duration: ['duration_ms', 'float8'],
  statusCode: ['status_code', 'float8'],
  feedback: ['feedback', 'float8'],
  score: ['score', 'float8'],
  createdAt: ['created_at', 'int8'],
}

const COMPARISONS: Record<Exclude<LogFilterOp, 'contains'>, string> = {
  eq: '=',
  neq: 'IS DISTINCT FROM',
  lt: '<',
  gt: '>',
}

function columnCondition(filter: LogFilter, params: Params): string {
  const [expression, type] = FILTER_COLUMNS[filter.field]!
  const value = params.add(filter.value, type)
  if (filter.op === 'contains') return `strpos(${expression}, ${value}) > 0`
  return `${expression} ${COMPARISONS[filter.op]} ${value}`
}

/** `eq`, `contains`, `lt` or `gt` on metadata text; `lt`/`gt` only where the text is a plain decimal. */
function textCondition(text: string, op: LogFilterOp, value: LogFilter['value'], params: Params): string {
  if (op === 'contains') return `strpos(${text}, ${params.add(value, 'text')}) > 0`
  if (op === 'eq') return `${text} = ${params.add(value, 'text')}`
  const number = `CASE WHEN ${text} ~ ${params.add(NUMERIC_TEXT.source, 'text')} THEN (${text})::float8 END`
  return `${number} ${op === 'lt' ? '<' : '>'} ${params.add(value, 'float8')}`
}

function metadataCondition(filter: LogFilter, params: Params): string {
  const key = filter.field.slice('metadata.'.length)
  const op = filter.op === 'neq' ? 'eq' : filter.op
  let condition: string
  if (key === 'key' && op === 'eq') {
    condition = `metadata ? ${params.add(filter.value, 'text')}`
  } else if (key === 'key') {
    condition = `EXISTS (SELECT 1 FROM jsonb_object_keys(metadata) AS k(t) WHERE ${textCondition('k.t', op, filter.value, params)})`
  } else if (key === 'value') {
    condition = `EXISTS (SELECT 1 FROM jsonb_each_text(metadata) AS e(k, t) WHERE ${textCondition('e.t', op, filter.value, params)})`
  } else {
    // `?` first lets the GIN index narrow the rows to those that have the key at all.
    const name = params.add(key, 'text')
    condition = `(metadata ? ${name} AND ${textCondition(`(metadata ->> ${name})`, op, filter.value, params)})`
  }
  return filter.op === 'neq' ? `NOT (${condition})` : condition
}

export function selectionConditions(selection: LogSelection, params: Params): string[] {
  const conditions: string[] = []
  if (selection.from !== undefined) conditions.push(`created_at >= ${params.add(selection.from, 'int8')}`)
  if (selection.to !== undefined) conditions.push(`created_at < ${params.add(selection.to, 'int8')}`)
  for (const filter of selection.filters ?? []) {
    const metadata = filter.field.startsWith('metadata.')
    conditions.push(metadata ? metadataCondition(filter, params) : columnCondition(filter, params))
  }
  return conditions
}

export function whereClause(conditions: string[]): string {
  return conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`
}

export const ORDER_COLUMNS: Record<LogOrderBy, readonly [string, ColumnType]> = {
  createdAt: ['created_at', 'int8'],
  provider: ['provider', 'text'],
  model: ['model', 'text'],
  success: ['success', 'bool'],
  cached: ['cached', 'bool'],
  cost: ['cost', 'float8'],
  duration: ['duration_ms', 'float8'],
}

/**
 * Rows strictly after the cursor's position. Nulls sort last ascending and first descending (Postgres's
 * defaults), and a row comparison yields null on a null column, so null positions get their own branch.
 */
export function keysetCondition(
  position: { value: string | number | boolean | null; id: string },
  orderBy: LogOrderBy,
  ascending: boolean,
  params: Params,
): string {
  const [column, type] = ORDER_COLUMNS[orderBy]
  const id = params.add(position.id, 'uuid')
  if (position.value === null) {
    return ascending ? `(${column} IS NULL AND id > ${id})` : `(${column} IS NOT NULL OR id < ${id})`
  }
  const tuple = `(${column}, id) ${ascending ? '>' : '<'} (${params.add(position.value, type)}, ${id})`
  return ascending && orderIsNullable(orderBy) ? `(${tuple} OR ${column} IS NULL)` : tuple
}

export function selectList(withBodies: boolean): string {
  return COLUMNS.filter(([, column]) => withBodies || !BODY_COLUMNS.has(column))
    .map(([, column]) => column)
    .join(', ')
}

// The rows of a write go in as one statement per chunk: the chunk's records as one JSON parameter that
// Postgres reads as rows (`json_to_recordset`), their bodies as text parameters of their own. A multi-row
// INSERT with a parameter per field (31 per record) cost the gateway about 90 µs per record to build and
// serialize, and Postgres more to parse; one JSON text is a native JSON.stringify. Read as `json`, the text
// is lexed once into the rows; as `jsonb` it was first built into one binary value, then taken apart again:
// Postgres spent 26.1 µs of CPU per record against 28.4 (batches of 100 records with 1.5 KB of bodies, four
// runs each). Bodies are JSON themselves, mostly: inside the JSON text every quote in them was escaped by
// the gateway and unescaped again by Postgres. Apart, they go as they are: with a 20 KB prompt the gateway
// spent 1.7 µs a record instead of 32, and Postgres 94 µs of CPU instead of 174. Chunks keep a statement to a
// sane size when bodies are large.
const CHUNK_ROWS = 500
const CHUNK_BODY_CHARS = 16 * 1024 * 1024

export function chunksOf(records: LogRecord[]): LogRecord[][] {
  const chunks: LogRecord[][] = []
  let chunk: LogRecord[] = []
  let chars = 0
  for (const record of records) {
    const size = (record.requestBody?.length ?? 0) + (record.responseBody?.length ?? 0)
    if (chunk.length > 0 && (chunk.length >= CHUNK_ROWS || chars + size > CHUNK_BODY_CHARS)) {
      chunks.push(chunk)
      chunk = []
      chars = 0
    }
    chunk.push(record)
    chars += size
  }
  if (chunk.length > 0) chunks.push(chunk)
  return chunks
}

const ROW_COLUMNS = COLUMNS.filter(([, column]) => !BODY_COLUMNS.has(column))
// The record's field names are the recordset's column names: JSON keys are matched to them exactly.
const RECORDSET_COLUMNS = ROW_COLUMNS.map(([key, , type]) => `"${key}" ${type}`).join(', ')
const RECORDSET_NAMES = ROW_COLUMNS.map(([key]) => `"${key}"`).join(', ')
const SELECTED_FIELDS = COLUMNS.map(([key]) => `r."${key}"`).join(', ')
const INSERTED_COLUMNS = COLUMNS.map(([, column]) => column).join(', ')

/**
 * The statement that writes `records` (copies made by `validateLogRecords`, whose bodies it moves into
 * parameters of their own, leaving them undefined: their text holds no NUL and no lone surrogate, which
 * neither JSON for Postgres nor text could carry), for `table`. Rows go in in the batch's order, so the
 * first of two records with one id is the one kept.
 */
export function insertStatement(table: string, records: LogRecord[]): { text: string; values: unknown[] } {
  const values: unknown[] = [undefined]
  const requests: string[] = []
  const responses: string[] = []
  for (const record of records) {
    values.push(record.requestBody, record.responseBody)
    requests.push(`$${values.length - 1}`)
    responses.push(`$${values.length}`)
    const moved = record as unknown as Record<'requestBody' | 'responseBody', undefined>
    moved.requestBody = undefined
    moved.responseBody = undefined
  }
  values[0] = JSON.stringify(records)
  // ROWS FROM takes the records and the two lists of bodies side by side, row by row: no join (one on the
  // ordinality cost Postgres some 6 µs of CPU a record more than this on small bodies, bench/log-writes.ts).
  const text =
    `INSERT INTO ${table} (${INSERTED_COLUMNS}) SELECT ${SELECTED_FIELDS} FROM ROWS FROM (` +
    `json_to_recordset($1::json) AS (${RECORDSET_COLUMNS}), ` +
    `unnest(ARRAY[${requests.join(', ')}]::text[]), unnest(ARRAY[${responses.join(', ')}]::text[])` +
    `) WITH ORDINALITY AS r(${RECORDSET_NAMES}, "requestBody", "responseBody", n) ` +
    'ORDER BY n ON CONFLICT (id) DO NOTHING'
  return { text, values }
}
