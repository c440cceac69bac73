/**
 * The Postgres log table: its identifiers, the one column layout that INSERT, SELECT and row mapping read,
 * and the schema versions with the migration that applies them.
 */
import { createHash } from 'node:crypto'
import type { Pool } from 'pg'
import type { LogRecord } from '../logs/types.js'
import { inTransaction } from './pool.js'

// Identifiers cannot be parameters, so they are held to lower-case letters, digits and underscores and then
// quoted. Tables leave room for the suffixes of derived names within Postgres's 63 characters.
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/
const TABLE_NAME = /^[a-z_][a-z0-9_]{0,47}$/

export type ColumnType = 'uuid' | 'int8' | 'int4' | 'int2' | 'float8' | 'numeric' | 'bool' | 'text' | 'jsonb'

/** Record field, column, type: the one place INSERT, SELECT and row mapping read the layout from. */
export const COLUMNS = [
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
  ['cost', 'cost', 'numeric'],
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
  ['attemptLog', 'attempt_log', 'jsonb'],
  ['route', 'route', 'jsonb'],
  ['guard', 'guard', 'jsonb'],
  ['websocket', 'websocket', 'jsonb'],
] as const satisfies readonly (readonly [keyof LogRecord, string, ColumnType])[]

export const NUMERIC_TYPES = new Set<ColumnType>(['int8', 'int4', 'int2', 'float8', 'numeric'])
export const BODY_COLUMNS = new Set<string>(['request_body', 'response_body'])

export interface Names {
  schema: string
  table: string
  migrations: string
  index(suffix: string): string
  lockKey: string
  /** How the table's named inserts begin (`NamedInserts`), from its digest: no other table's do. */
  statementPrefix: string
}

export function namesOf(options: { schema?: string | undefined; table?: string | undefined }): Names {
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
    statementPrefix: `aigw_logs_${digest.subarray(8, 14).toString('hex')}_`,
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
  // Costs as exact decimals, so sums are exact. A cost goes in as the text of its JS number (what `pg`
  // sends), i.e. the decimal it prints as; costs stored as double precision before become their 15
  // significant digits, which drops float noise such as 0.0000032999999999999997.
  (n) => [`ALTER TABLE ${n.table} ALTER COLUMN cost TYPE numeric USING cost::numeric`],
  // Every attempt of a request that retried, fell back or skipped a target; NULL for the others.
  (n) => [`ALTER TABLE ${n.table} ADD COLUMN attempt_log jsonb`],
  // The dynamic route a request walked; NULL for the others.
  (n) => [`ALTER TABLE ${n.table} ADD COLUMN route jsonb`],
  // Filters on the route's name. Partial, as most requests take no route; the expression is the one the
  // queries compare (ROUTE_NAME_SQL in log-sql.ts), or the planner would not match it.
  (n) => [
    `CREATE INDEX ${n.index('route_idx')} ON ${n.table} (((route ->> 'name') COLLATE "C"), created_at, id) WHERE route IS NOT NULL`,
  ],
  // What guardrails and DLP found and did; NULL for the requests they let through untouched. Partial
  // indexes for the filters on their actions, on the expressions the queries compare (DLP_ACTION_SQL and
  // GUARDRAIL_ACTION_SQL in log-sql.ts).
  (n) => [
    `ALTER TABLE ${n.table} ADD COLUMN guard jsonb`,
    `CREATE INDEX ${n.index('dlp_idx')} ON ${n.table} (((guard -> 'dlp' ->> 'action') COLLATE "C"), created_at, id) WHERE guard IS NOT NULL`,
    `CREATE INDEX ${n.index('guardrail_idx')} ON ${n.table} (((guard -> 'guardrails' ->> 'action') COLLATE "C"), created_at, id) WHERE guard IS NOT NULL`,
  ],
  // A realtime WebSocket session's frames and close; NULL for every other request.
  (n) => [`ALTER TABLE ${n.table} ADD COLUMN websocket jsonb`],
]

/** Record fields that are left out of a record, rather than null, when their column is NULL. */
export const OPTIONAL_FIELDS = new Set<string>(['attemptLog', 'route', 'guard', 'websocket'])

/**
 * Brings the table to the latest version. Runs in one transaction holding a transaction-level advisory lock,
 * so instances starting together take turns and the later ones find nothing left to do.
 */
export function migrate(pool: Pool, names: Names): Promise<void> {
  return inTransaction(pool, async (client) => {
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
  })
}
