/**
 * The Postgres `LogStore`: writes, reads, paging, feedback and deletion over the table of `log-schema.ts`,
 * with SQL from `log-sql.ts` and analytics from `log-analytics.ts`.
 */
import type { Pool } from 'pg'
import { decodeCursor, encodeCursor, isLogId, positionOf } from '../logs/filters.js'
import {
  MAX_PAGE_BODY_BYTES,
  parseAnalyticsQuery,
  parseLogPatch,
  parseLogQuery,
  parseLogSelection,
} from '../logs/query.js'
import type { LogPage, LogRecord, LogStore } from '../logs/types.js'
import { validateLogRecords } from '../logs/validate.js'
import { queryAnalytics } from './log-analytics.js'
import { toRecord } from './log-rows.js'
import { migrate, namesOf } from './log-schema.js'
import {
  chunksOf,
  insertStatement,
  keysetCondition,
  ORDER_COLUMNS,
  Params,
  selectionConditions,
  selectList,
  whereClause,
} from './log-sql.js'
import { NamedInserts } from './named-statements.js'
import { inTransaction } from './pool.js'

// The bodies' sizes as stored, in bytes: Postgres reads a long text's size from its TOAST header, so
// sizing a page's bodies does not fetch them.
const BODY_BYTES_SQL = 'coalesce(octet_length(request_body), 0) + coalesce(octet_length(response_body), 0)'

/**
 * How many of a page's rows (at most `limit`) to return with their bodies: while their sizes stay within
 * `MAX_PAGE_BODY_BYTES`, and always the first, whatever its size, so paging goes on.
 */
function rowsWithinBodyBudget(rows: readonly { body_bytes: unknown }[], limit: number): number {
  let bytes = 0
  let taken = 0
  for (const row of rows.slice(0, limit)) {
    bytes += Number(row.body_bytes)
    if (taken > 0 && bytes > MAX_PAGE_BODY_BYTES) break
    taken++
  }
  return taken
}

export interface PostgresLogStoreOptions {
  /** Schema holding the table, created when missing. Default `public`. */
  schema?: string | undefined
  /** Table name; `<table>_migrations` records the applied schema version. Default `ai_gateway_logs`. */
  table?: string | undefined
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
  const inserts = new NamedInserts(names.statementPrefix)

  async function insert(records: LogRecord[]): Promise<void> {
    const chunks = chunksOf(records)
    if (chunks.length === 1) {
      const chunk = chunks[0]!
      const { text, values } = insertStatement(table, chunk)
      await inserts.run(pool, chunk.length, text, values)
      return
    }
    // Several statements: one transaction, so a failed batch leaves nothing half-written. Unnamed: such
    // batches are rare (see `chunksOf`), and a lost statement would abort the whole transaction.
    await inTransaction(pool, async (client) => {
      for (const chunk of chunks) {
        const { text, values } = insertStatement(table, chunk)
        await client.query(text, values)
      }
    })
  }

  /** Fills in the bodies of listed records; one deleted since it was listed keeps none. */
  async function addBodies(records: LogRecord[]): Promise<void> {
    if (records.length === 0) return
    const ids = records.map((record) => record.id)
    const { rows } = await pool.query(
      `SELECT id, request_body, response_body FROM ${table} WHERE id = ANY($1::uuid[])`,
      [ids],
    )
    const bodies = new Map(rows.map((row) => [String(row.id), row]))
    for (const record of records) {
      const row = bodies.get(record.id)
      record.requestBody = row?.request_body ?? null
      record.responseBody = row?.response_body ?? null
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
      // With bodies, the page's rows come first with their bodies' sizes only (read without fetching the
      // bodies); then the bodies of those that fit `MAX_PAGE_BODY_BYTES`.
      const sizes = q.includeBodies ? `, ${BODY_BYTES_SQL} AS body_bytes` : ''
      const text = `SELECT ${selectList(false)}${sizes} FROM ${table} ${whereClause(conditions)} ORDER BY ${order} LIMIT ${limit}`
      const { rows } = await pool.query(text, params.values)
      const taken = q.includeBodies ? rowsWithinBodyBudget(rows, q.limit) : Math.min(rows.length, q.limit)
      const records = rows.slice(0, taken).map(toRecord)
      if (q.includeBodies) await addBodies(records)
      const page: LogPage = { records }
      const last = records.at(-1)
      if (rows.length > taken && last) {
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
      return queryAnalytics(pool, table, parseAnalyticsQuery(query))
    },
  }
}
