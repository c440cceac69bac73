import { createHash } from 'node:crypto'
import type { Pool, QueryResultRow } from 'pg'
import {
  BUCKET_MS,
  decodeCursor,
  encodeCursor,
  isLogId,
  NUMERIC_TEXT,
  orderIsNullable,
  positionOf,
} from '../logs/filters.js'
import {
  type AnalyticsGroupBy,
  type AnalyticsRow,
  type LogFilter,
  type LogFilterOp,
  type LogOrderBy,
  type LogPage,
  type LogRecord,
  type LogSelection,
  type LogStore,
  parseAnalyticsQuery,
  parseLogPatch,
  parseLogQuery,
  parseLogSelection,
  validateLogRecords,
} from '../logs/types.js'

export interface PostgresLogStoreOptions {
  /** Schema holding the table, created when missing. Default `public`. */
  schema?: string | undefined
  /** Table name; `<table>_migrations` records the applied schema version. Default `ai_gateway_logs`. */
  table?: string | undefined
}

// Identifiers cannot be parameters, so they are held to lower-case letters, digits and underscores and then
// quoted. Tables leave room for the suffixes of derived names within Postgres's 63 characters.
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/
const TABLE_NAME = /^[a-z_][a-z0-9_]{0,47}$/

// The rows of a write go in as one multi-row INSERT per chunk; chunks stay far below the 65,535 parameter
// limit and keep a single statement to a sane size when bodies are large.
const CHUNK_ROWS = 500
const CHUNK_BODY_CHARS = 16 * 1024 * 1024

type ColumnType = 'uuid' | 'int8' | 'int4' | 'int2' | 'float8' | 'bool' | 'text' | 'jsonb'

/** Record field, column, type: the one place INSERT, SELECT and row mapping read the layout from. */
const COLUMNS = [
  ['id', 'id', 'uuid'],
  ['createdAt', 'created_at', 'int8'],
  ['provider', 'provider', 'text'],
  ['model', 'model', 'text'],
  ['path', 'path', 'text'],
  ['success', 'success', 'bool'],
  ['statusCode', 'status_code', 'int4'],
  ['cached', 'cached', 'bool'],
  ['durationMs', 'duration_ms', 'float8'],
  ['ttfbMs', 'ttfb_ms', 'float8'],
  ['tokensIn', 'tokens_in', 'int8'],
  ['tokensOut', 'tokens_out', 'int8'],
  ['cost', 'cost', 'float8'],
  ['customCost', 'custom_cost', 'bool'],
  ['metadata', 'metadata', 'jsonb'],
  ['step', 'step', 'int4'],
  ['eventId', 'event_id', 'text'],
  ['attempts', 'attempts', 'int4'],
  ['requestSize', 'request_size', 'int8'],
  ['responseSize', 'response_size', 'int8'],
  ['outcome', 'outcome', 'text'],
  ['errorCode', 'error_code', 'int4'],
  ['principal', 'principal', 'text'],
  ['requestBody', 'request_body', 'text'],
  ['responseBody', 'response_body', 'text'],
  ['feedback', 'feedback', 'int2'],
  ['score', 'score', 'int2'],
] as const satisfies readonly (readonly [keyof LogRecord, string, ColumnType])[]

const NUMERIC_TYPES = new Set<ColumnType>(['int8', 'int4', 'int2', 'float8'])
const BODY_COLUMNS = new Set<string>(['request_body', 'response_body'])

interface Names {
  schema: string
  table: string
  migrations: string
  index(suffix: string): string
  lockKey: string
}

function namesOf(options: PostgresLogStoreOptions): Names {
  const schema = options.schema ?? 'public'
  const table = options.table ?? 'ai_gateway_logs'
  if (!SCHEMA_NAME.test(schema)) throw new TypeError(`schema must match ${SCHEMA_NAME}, got '${schema}'`)
  if (!TABLE_NAME.test(table)) throw new TypeError(`table must match ${TABLE_NAME}, got '${table}'`)
  // One advisory lock per table, so instances migrating different tables do not wait on each other.
  const digest = createHash('sha256').update(`ai-gateway-logs:${schema}.${table}`).digest()
  return {
    schema,
    table: `"${schema}"."${table}"`,
    migrations: `"${schema}"."${table}_migrations"`,
    index: (suffix) => `"${table}_${suffix}"`,
    lockKey: digest.readBigInt64BE(0).toString(),
  }
}

/**
 * Schema versions, applied in order. Text is `COLLATE "C"` so comparisons and order follow code points,
 * exactly as the memory store's; `created_at` is bigint milliseconds so buckets are plain integer math
 * that no session time zone can shift.
 */
const MIGRATIONS: readonly ((names: Names) => string[])[] = [
  (n) => [
    `CREATE TABLE ${n.table} (
      id uuid PRIMARY KEY,
      created_at bigint NOT NULL,
      provider text COLLATE "C",
      model text COLLATE "C",
      path text COLLATE "C" NOT NULL,
      success boolean NOT NULL,
      status_code integer NOT NULL,
      cached boolean NOT NULL,
      duration_ms double precision NOT NULL,
      ttfb_ms double precision,
      tokens_in bigint,
      tokens_out bigint,
      cost double precision,
      custom_cost boolean NOT NULL,
      metadata jsonb NOT NULL,
      step integer,
      event_id text COLLATE "C",
      attempts integer NOT NULL,
      request_size bigint NOT NULL,
      response_size bigint NOT NULL,
      outcome text COLLATE "C" NOT NULL,
      error_code integer,
      principal text COLLATE "C",
      request_body text,
      response_body text,
      feedback smallint CHECK (feedback IN (1, -1)),
      score smallint CHECK (score BETWEEN 0 AND 100)
    )`,
    `CREATE INDEX ${n.index('created_at_idx')} ON ${n.table} (created_at, id)`,
    `CREATE INDEX ${n.index('provider_idx')} ON ${n.table} (provider, created_at, id)`,
    `CREATE INDEX ${n.index('model_idx')} ON ${n.table} (model, created_at, id)`,
    `CREATE INDEX ${n.index('principal_idx')} ON ${n.table} (principal, created_at, id)`,
    `CREATE INDEX ${n.index('event_id_idx')} ON ${n.table} (event_id) WHERE event_id IS NOT NULL`,
    `CREATE INDEX ${n.index('metadata_idx')} ON ${n.table} USING gin (metadata)`,
  ],
]

/**
 * Brings the table to the latest version. Runs in one transaction holding a transaction-level advisory lock,
 * so instances starting together take turns and the later ones find nothing left to do.
 */
async function migrate(pool: Pool, names: Names): Promise<void> {
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    await client.query('SELECT pg_advisory_xact_lock($1::int8)', [names.lockKey])
    // Checked first because CREATE SCHEMA IF NOT EXISTS still needs the CREATE privilege on the database.
    const schema = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [names.schema])
    if (schema.rowCount === 0) await client.query(`CREATE SCHEMA "${names.schema}"`)
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${names.migrations} (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
    )
    const { rows } = await client.query(
      `SELECT coalesce(max(version), 0) AS version FROM ${names.migrations}`,
    )
    for (let version = Number(rows[0]?.version ?? 0) + 1; version <= MIGRATIONS.length; version++) {
      for (const statement of MIGRATIONS[version - 1]!(names)) await client.query(statement)
      await client.query(`INSERT INTO ${names.migrations} (version) VALUES ($1)`, [version])
    }
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {})
    throw error
  } finally {
    client.release()
  }
}

/** Collects query parameters and hands back their typed placeholders. */
class Params {
  readonly values: unknown[] = []
  add(value: unknown, type: ColumnType): string {
    this.values.push(value)
    return `$${this.values.length}::${type}`
  }
}

const TOKENS_SQL =
  'CASE WHEN tokens_in IS NULL AND tokens_out IS NULL THEN NULL ELSE coalesce(tokens_in, 0) + coalesce(tokens_out, 0) END'

// Numbers compare as float8 so a fractional filter value never fails an integer cast; created_at keeps its
// own type so its index serves time ranges.
const FILTER_COLUMNS: Record<string, readonly [string, ColumnType]> = {
  provider: ['provider', 'text'],
  model: ['model', 'text'],
  eventId: ['event_id', 'text'],
  outcome: ['outcome', 'text'],
  principal: ['principal', 'text'],
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

function selectionConditions(selection: LogSelection, params: Params): string[] {
  const conditions: string[] = []
  if (selection.from !== undefined) conditions.push(`created_at >= ${params.add(selection.from, 'int8')}`)
  if (selection.to !== undefined) conditions.push(`created_at < ${params.add(selection.to, 'int8')}`)
  for (const filter of selection.filters ?? []) {
    const metadata = filter.field.startsWith('metadata.')
    conditions.push(metadata ? metadataCondition(filter, params) : columnCondition(filter, params))
  }
  return conditions
}

function whereClause(conditions: string[]): string {
  return conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`
}

const ORDER_COLUMNS: Record<LogOrderBy, readonly [string, ColumnType]> = {
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
function keysetCondition(
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

function selectList(withBodies: boolean): string {
  return COLUMNS.filter(([, column]) => withBodies || !BODY_COLUMNS.has(column))
    .map(([, column]) => column)
    .join(', ')
}

function toRecord(row: QueryResultRow): LogRecord {
  const record: Record<string, unknown> = {}
  for (const [key, column, type] of COLUMNS) {
    const value: unknown = row[column] ?? null
    // Number() also copes with hosts that parse int8 or numeric as strings or BigInts.
    if (value !== null && NUMERIC_TYPES.has(type)) record[key] = Number(value)
    else if (type === 'jsonb' && typeof value === 'string') record[key] = JSON.parse(value)
    else record[key] = value
  }
  return record as unknown as LogRecord
}

function chunksOf(records: LogRecord[]): LogRecord[][] {
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

function insertStatement(table: string, records: LogRecord[]): { text: string; values: unknown[] } {
  const params = new Params()
  const rows = records.map(
    (record) => `(${COLUMNS.map(([key, , type]) => params.add(record[key], type)).join(', ')})`,
  )
  const columns = COLUMNS.map(([, column]) => column).join(', ')
  const text = `INSERT INTO ${table} (${columns}) VALUES ${rows.join(', ')} ON CONFLICT (id) DO NOTHING`
  return { text, values: params.values }
}

function groupExpression(group: AnalyticsGroupBy, params: Params): string {
  if (group === 'provider' || group === 'model' || group === 'outcome') return group
  return `(metadata ->> ${params.add(group.slice('metadata.'.length), 'text')}) COLLATE "C"`
}

function toAnalyticsRow(row: QueryResultRow, groupBy: AnalyticsGroupBy[], bucketed: boolean): AnalyticsRow {
  const result: AnalyticsRow = {
    group: Object.fromEntries(groupBy.map((name, i) => [name, (row[`g${i}`] as string | null) ?? null])),
    requests: Number(row.requests),
    errors: Number(row.errors),
    cacheHits: Number(row.cache_hits),
    tokensIn: Number(row.tokens_in),
    tokensOut: Number(row.tokens_out),
    cost: row.cost === null ? null : Number(row.cost),
    latencyP50: Number(row.latency_p50),
    latencyP95: Number(row.latency_p95),
  }
  if (bucketed) result.bucketStart = Number(row.bucket_start)
  return result
}

/**
 * A `LogStore` on a host-owned `pg` Pool. The returned promise settles once the table is migrated (safe to
 * run from many instances at once); every query is parameterised, and filtering, paging and aggregation
 * all happen in SQL. `close()` is absent on purpose: the pool belongs to the host.
 *
 * @example
 * import pg from 'pg'
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL })
 * const logs = await createPostgresLogStore(pool, { schema: 'gateway' })
 * await logs.write([record])
 */
export async function createPostgresLogStore(
  pool: Pool,
  options: PostgresLogStoreOptions = {},
): Promise<LogStore> {
  const names = namesOf(options)
  await migrate(pool, names)
  const table = names.table

  async function insert(records: LogRecord[]): Promise<void> {
    const chunks = chunksOf(records)
    if (chunks.length === 1) {
      const { text, values } = insertStatement(table, chunks[0]!)
      await pool.query(text, values)
      return
    }
    // Several statements: one transaction, so a failed batch leaves nothing half-written.
    const client = await pool.connect()
    try {
      await client.query('BEGIN')
      for (const chunk of chunks) {
        const { text, values } = insertStatement(table, chunk)
        await client.query(text, values)
      }
      await client.query('COMMIT')
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {})
      throw error
    } finally {
      client.release()
    }
  }

  async function get(id: string): Promise<LogRecord | undefined> {
    if (!isLogId(id)) return undefined
    const { rows } = await pool.query(`SELECT ${selectList(true)} FROM ${table} WHERE id = $1::uuid`, [id])
    return rows[0] && toRecord(rows[0])
  }

  return {
    async write(records) {
      const valid = validateLogRecords(records)
      if (valid.length > 0) await insert(valid)
    },

    get,

    async list(query): Promise<LogPage> {
      const q = parseLogQuery(query)
      const ascending = q.direction === 'asc'
      const params = new Params()
      const conditions = selectionConditions(q, params)
      const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor, q.orderBy, q.direction)
      if (after) conditions.push(keysetCondition(after, q.orderBy, ascending, params))
      const [column] = ORDER_COLUMNS[q.orderBy]
      const order = ascending ? `${column} ASC NULLS LAST, id ASC` : `${column} DESC NULLS FIRST, id DESC`
      const limit = params.add(q.limit + 1, 'int8')
      const text = `SELECT ${selectList(q.includeBodies)} FROM ${table} ${whereClause(conditions)} ORDER BY ${order} LIMIT ${limit}`
      const { rows } = await pool.query(text, params.values)
      const records = rows.slice(0, q.limit).map(toRecord)
      const page: LogPage = { records }
      const last = records.at(-1)
      if (rows.length > q.limit && last) {
        page.nextCursor = encodeCursor(q.orderBy, q.direction, positionOf(last, q.orderBy))
      }
      return page
    },

    async patch(id, patch) {
      const changes = parseLogPatch(patch)
      if (!isLogId(id)) return undefined
      const params = new Params()
      const sets: string[] = []
      if (changes.feedback !== undefined) sets.push(`feedback = ${params.add(changes.feedback, 'int2')}`)
      if (changes.score !== undefined) sets.push(`score = ${params.add(changes.score, 'int2')}`)
      if (changes.metadata !== undefined) sets.push(`metadata = ${params.add(changes.metadata, 'jsonb')}`)
      if (sets.length === 0) return get(id)
      const where = `id = ${params.add(id, 'uuid')}`
      const text = `UPDATE ${table} SET ${sets.join(', ')} WHERE ${where} RETURNING ${selectList(true)}`
      const { rows } = await pool.query(text, params.values)
      return rows[0] && toRecord(rows[0])
    },

    async delete(selection) {
      const q = parseLogSelection(selection)
      const params = new Params()
      const result = await pool.query(
        `DELETE FROM ${table} ${whereClause(selectionConditions(q, params))}`,
        params.values,
      )
      return result.rowCount ?? 0
    },

    async analytics(query) {
      const { groupBy, bucket, ...selection } = parseAnalyticsQuery(query)
      const params = new Params()
      const keys = groupBy.map((group, i) => `${groupExpression(group, params)} AS g${i}`)
      if (bucket) {
        const size = params.add(BUCKET_MS[bucket], 'int8')
        keys.unshift(`(created_at / ${size}) * ${size} AS bucket_start`)
      }
      const aggregates = [
        'count(*) AS requests',
        'count(*) FILTER (WHERE NOT success) AS errors',
        'count(*) FILTER (WHERE cached) AS cache_hits',
        'coalesce(sum(tokens_in), 0) AS tokens_in',
        'coalesce(sum(tokens_out), 0) AS tokens_out',
        'sum(cost) AS cost',
        `percentile_cont(${params.add(0.5, 'float8')}) WITHIN GROUP (ORDER BY duration_ms) AS latency_p50`,
        `percentile_cont(${params.add(0.95, 'float8')}) WITHIN GROUP (ORDER BY duration_ms) AS latency_p95`,
      ]
      const where = whereClause(selectionConditions(selection, params))
      const ordinals = keys.map((_, i) => i + 1).join(', ')
      // Without GROUP BY an aggregate answers one row even over nothing; HAVING drops it, as for groups.
      const grouping = keys.length > 0 ? `GROUP BY ${ordinals} ORDER BY ${ordinals}` : 'HAVING count(*) > 0'
      const text = `SELECT ${[...keys, ...aggregates].join(', ')} FROM ${table} ${where} ${grouping}`
      const { rows } = await pool.query(text, params.values)
      return rows.map((row) => toAnalyticsRow(row, groupBy, bucket !== undefined))
    },
  }
}
