import {
  assertSlugs,
  assertStoredSecret,
  KeyStoreError,
  type SecretStore,
  type StoredSecret,
} from '../keys/types.js'
import { createTables, type PostgresPoolLike, readyPool } from './setup.js'

export type { PostgresClientLike, PostgresPoolLike, PostgresQueryResult } from './setup.js'

export interface PostgresSecretStoreOptions {
  /** Schema of the table; created when missing. Default `'public'`. */
  schema?: string
  /** Table name; created when missing. Default `'ai_gateway_provider_keys'`. */
  table?: string
}

/** A {@link SecretStore} that can also be made ready ahead of the first call. */
export interface PostgresSecretStore extends SecretStore {
  /** Creates the schema and table if needed; call at startup to fail fast on a bad database. */
  ready(): Promise<void>
}

// Identifiers cannot be query parameters, so only plain lower-case names are accepted, and then quoted.
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/

/**
 * A {@link SecretStore} in a PostgreSQL table with primary key (provider, alias). The table (and its schema)
 * is created on first use, under an advisory lock so instances starting together do not race; values only
 * ever travel as query parameters.
 *
 * @example
 * const store = createPostgresSecretStore(pool, { schema: 'gateway' })
 * await store.ready()
 * const keys = createKeyRing({ store, masterKey: process.env.MASTER_KEY! })
 */
export function createPostgresSecretStore(
  pool: PostgresPoolLike,
  options: PostgresSecretStoreOptions = {},
): PostgresSecretStore {
  const schema = identifier('schema', options.schema ?? 'public')
  const table = identifier('table', options.table ?? 'ai_gateway_provider_keys')
  const qualified = `"${schema}"."${table}"`
  const columns = `provider, alias, ciphertext, key_id, hint,
    (extract(epoch from created_at) * 1000)::int8 AS created_ms,
    (extract(epoch from updated_at) * 1000)::int8 AS updated_ms`
  const { ready, query } = readyPool(pool, () => createTable(pool, schema, table), unavailable)

  return {
    ready,

    async get(provider, alias) {
      assertSlugs(provider, alias)
      const result = await query(`SELECT ${columns} FROM ${qualified} WHERE provider = $1 AND alias = $2`, [
        provider,
        alias,
      ])
      const row = result.rows[0]
      return row === undefined ? undefined : fromRow(row)
    },

    async put(record) {
      assertSlugs(record.provider, record.alias)
      await query(
        `INSERT INTO ${qualified} (provider, alias, ciphertext, key_id, hint, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, to_timestamp($6::float8 / 1000), to_timestamp($7::float8 / 1000))
         ON CONFLICT (provider, alias) DO UPDATE SET ciphertext = EXCLUDED.ciphertext, key_id = EXCLUDED.key_id,
           hint = EXCLUDED.hint, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at`,
        [
          record.provider,
          record.alias,
          record.ciphertext,
          record.keyId,
          record.hint,
          record.createdAt,
          record.updatedAt,
        ],
      )
    },

    async delete(provider, alias) {
      assertSlugs(provider, alias)
      const result = await query(`DELETE FROM ${qualified} WHERE provider = $1 AND alias = $2`, [
        provider,
        alias,
      ])
      return (result.rowCount ?? 0) > 0
    },

    async list(provider) {
      if (provider !== undefined) assertSlugs(provider)
      // COLLATE "C" orders by code unit, the same order as the other stores whatever the database locale.
      const order = 'ORDER BY provider COLLATE "C", alias COLLATE "C"'
      const result =
        provider === undefined
          ? await query(`SELECT ${columns} FROM ${qualified} ${order}`, [])
          : await query(`SELECT ${columns} FROM ${qualified} WHERE provider = $1 ${order}`, [provider])
      return result.rows.map(fromRow)
    },
  }
}

function identifier(name: string, value: string): string {
  if (typeof value !== 'string' || !IDENTIFIER.test(value)) {
    throw new KeyStoreError(
      'invalid-options',
      `${name} must match ${IDENTIFIER}, got ${JSON.stringify(value)}`,
    )
  }
  return value
}

function createTable(pool: PostgresPoolLike, schema: string, table: string): Promise<void> {
  return createTables(pool, schema, `${schema}.${table}`, [
    `CREATE TABLE IF NOT EXISTS "${schema}"."${table}" (
      provider text NOT NULL,
      alias text NOT NULL,
      ciphertext text NOT NULL,
      key_id text NOT NULL,
      hint text NOT NULL,
      created_at timestamptz NOT NULL,
      updated_at timestamptz NOT NULL,
      PRIMARY KEY (provider, alias)
    )`,
  ])
}

function fromRow(row: Record<string, unknown>): StoredSecret {
  return assertStoredSecret(
    {
      provider: row.provider,
      alias: row.alias,
      ciphertext: row.ciphertext,
      keyId: row.key_id,
      hint: row.hint,
      // int8 arrives as a string unless the host installed a type parser for it.
      createdAt: Number(row.created_ms),
      updatedAt: Number(row.updated_ms),
    },
    'Postgres',
  )
}

function unavailable(what: string, cause: unknown): KeyStoreError {
  if (cause instanceof KeyStoreError) return cause
  const detail = cause instanceof Error ? cause.message : String(cause)
  return new KeyStoreError('store-unavailable', `Postgres secret store ${what}: ${detail}`, { cause })
}
