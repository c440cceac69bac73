import type { RouteDefinition, RouteStore, RouteSummary, RouteVersion } from '../dynamic/types.js'
import { createTables, type PostgresPoolLike, readyPool } from './setup.js'

export interface PostgresRouteStoreOptions {
  /** Schema of the tables; created when missing. Default `'public'`. */
  schema?: string
  /**
   * Table of routes; `<table>_versions` holds their versions. Both created when missing. Default
   * `'ai_gateway_routes'`.
   */
  table?: string
}

/** A {@link RouteStore} that can also be made ready ahead of the first call. */
export interface PostgresRouteStore extends RouteStore {
  /** Creates the schema and tables if needed; call at startup to fail fast on a bad database. */
  ready(): Promise<void>
}

// Identifiers cannot be query parameters, so only plain lower-case names are accepted, and then quoted. A
// table name leaves room for its `_versions` sibling within PostgreSQL's 63 bytes.
const SCHEMA = /^[a-z_][a-z0-9_]{0,62}$/
const TABLE = /^[a-z_][a-z0-9_]{0,53}$/

/**
 * A {@link RouteStore} in two PostgreSQL tables shared by every instance on the same database: one row per
 * route (its version counter, deployment and last change) and one per version (its definition as jsonb),
 * deleted with their route. The tables (and schema) are created on first use, under an advisory lock so
 * instances starting together do not race; values only ever travel as query parameters.
 *
 * A save bumps the route row's counter and inserts the version in one statement: the upsert locks the route
 * row, so concurrent saves of one route (from any instance) take turns and each gets the next number. A
 * deploy is one UPDATE that only matches when the version exists.
 *
 * @example
 * const routes = createPostgresRouteStore(pool, { schema: 'gateway' })
 * await routes.ready()
 */
export function createPostgresRouteStore(
  pool: PostgresPoolLike,
  options: PostgresRouteStoreOptions = {},
): PostgresRouteStore {
  const schema = identifier('schema', options.schema ?? 'public', SCHEMA)
  const table = identifier('table', options.table ?? 'ai_gateway_routes', TABLE)
  const routes = `"${schema}"."${table}"`
  const versions = `"${schema}"."${table}_versions"`
  const { ready, query } = readyPool(pool, () => createRouteTables(pool, schema, table), failure)

  return {
    ready,

    async save(definition, now) {
      const name = definition.name
      // ON CONFLICT DO UPDATE locks the route's row until the statement commits, and a waiting save then
      // sees the committed counter: versions come out distinct and consecutive.
      const result = await query(
        `WITH route AS (
           INSERT INTO ${routes} AS r (name, latest_version, updated_at) VALUES ($1, 1, $3::int8)
           ON CONFLICT (name) DO UPDATE
             SET latest_version = r.latest_version + 1, updated_at = greatest(r.updated_at, EXCLUDED.updated_at)
           RETURNING latest_version
         )
         INSERT INTO ${versions} (name, version, definition, created_at)
         SELECT $1, latest_version, $2::jsonb, $3::int8 FROM route
         RETURNING version, definition, created_at`,
        [name, JSON.stringify(definition), now],
      )
      return fromVersionRow(name, result.rows[0]!)
    },

    async versions(name) {
      const result = await query(
        `SELECT version, definition, created_at FROM ${versions} WHERE name = $1 ORDER BY version DESC`,
        [name],
      )
      return result.rows.map((row) => fromVersionRow(name, row))
    },

    async version(name, version) {
      if (!isVersion(version)) return undefined
      const result = await query(
        `SELECT version, definition, created_at FROM ${versions} WHERE name = $1 AND version = $2`,
        [name, version],
      )
      const row = result.rows[0]
      return row === undefined ? undefined : fromVersionRow(name, row)
    },

    async deploy(name, version, now) {
      if (!isVersion(version)) return undefined
      // One statement: the row lock it takes makes a concurrent delete of the route either finish first
      // (nothing matches) or wait until this deploy is done.
      const result = await query(
        `UPDATE ${routes} AS r
         SET deployed_version = $2, deployed_at = $3::int8, updated_at = greatest(r.updated_at, $3::int8)
         WHERE r.name = $1 AND EXISTS (SELECT 1 FROM ${versions} v WHERE v.name = $1 AND v.version = $2)
         RETURNING deployed_version, deployed_at`,
        [name, version, now],
      )
      const row = result.rows[0]
      if (row === undefined) return undefined
      return { name, version: Number(row.deployed_version), deployedAt: Number(row.deployed_at) }
    },

    async deployed(name) {
      const result = await query(
        `SELECT r.deployed_version, r.deployed_at, v.definition
         FROM ${routes} r JOIN ${versions} v ON v.name = r.name AND v.version = r.deployed_version
         WHERE r.name = $1`,
        [name],
      )
      const row = result.rows[0]
      if (row === undefined) return undefined
      return {
        name,
        version: Number(row.deployed_version),
        deployedAt: Number(row.deployed_at),
        definition: definitionOf(row.definition),
      }
    },

    async list() {
      // The column is COLLATE "C": code-unit order, as the other stores list, whatever the database locale.
      const result = await query(
        `SELECT name, latest_version, deployed_version, updated_at FROM ${routes} ORDER BY name`,
        [],
      )
      return result.rows.map(
        (row): RouteSummary => ({
          name: String(row.name),
          latestVersion: Number(row.latest_version),
          deployedVersion:
            row.deployed_version === null || row.deployed_version === undefined
              ? undefined
              : Number(row.deployed_version),
          updatedAt: Number(row.updated_at),
        }),
      )
    },

    async delete(name) {
      // The versions go with it (ON DELETE CASCADE).
      const result = await query(`DELETE FROM ${routes} WHERE name = $1`, [name])
      return (result.rowCount ?? 0) > 0
    },
  }
}

/** Only a positive whole number within int4 can name a version; anything else names none. */
function isVersion(version: number): boolean {
  return Number.isSafeInteger(version) && version >= 1 && version <= 2_147_483_647
}

function identifier(name: string, value: string, pattern: RegExp): string {
  if (typeof value !== 'string' || !pattern.test(value)) {
    throw new TypeError(`${name} must match ${pattern}, got ${JSON.stringify(value)}`)
  }
  return value
}

/** Times are bigint milliseconds, kept exactly as given. */
function createRouteTables(pool: PostgresPoolLike, schema: string, table: string): Promise<void> {
  return createTables(pool, schema, `routes:${schema}.${table}`, [
    `CREATE TABLE IF NOT EXISTS "${schema}"."${table}" (
      name text COLLATE "C" PRIMARY KEY,
      latest_version integer NOT NULL,
      deployed_version integer,
      deployed_at bigint,
      updated_at bigint NOT NULL
    )`,
    `CREATE TABLE IF NOT EXISTS "${schema}"."${table}_versions" (
      name text COLLATE "C" NOT NULL REFERENCES "${schema}"."${table}" (name) ON DELETE CASCADE,
      version integer NOT NULL,
      definition jsonb NOT NULL,
      created_at bigint NOT NULL,
      PRIMARY KEY (name, version)
    )`,
  ])
}

function fromVersionRow(name: string, row: Record<string, unknown>): RouteVersion {
  return {
    name,
    version: Number(row.version),
    definition: definitionOf(row.definition),
    // int8 arrives as a string unless the host installed a type parser for it.
    createdAt: Number(row.created_at),
  }
}

/** pg parses jsonb by default; a host that replaced that parser hands over the text instead. */
function definitionOf(value: unknown): RouteDefinition {
  return (typeof value === 'string' ? JSON.parse(value) : value) as RouteDefinition
}

function failure(what: string, cause: unknown): Error {
  const detail = cause instanceof Error ? cause.message : String(cause)
  return new Error(`Postgres route store ${what}: ${detail}`, { cause })
}
