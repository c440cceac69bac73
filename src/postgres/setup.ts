import { inTransaction, type PostgresPoolLike, type PostgresQueryResult } from './pool.js'

export type { PostgresClientLike, PostgresPoolLike, PostgresQueryResult } from './pool.js'

/**
 * Creates a store's tables: the schema when missing, then `statements`, in one transaction under an
 * advisory lock named by `lockName`, so instances starting together take turns (concurrent CREATE ... IF
 * NOT EXISTS can still collide on the catalog's unique indexes).
 */
export function createTables(
  pool: PostgresPoolLike,
  schema: string,
  lockName: string,
  statements: readonly string[],
): Promise<void> {
  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
      `ai-gateway-middleware:${lockName}`,
    ])
    // CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema exists, so look first.
    const existing = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])
    if (existing.rows.length === 0) await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`)
    for (const statement of statements) await client.query(statement)
  })
}

/**
 * A pool whose queries wait for `setup`, run once; a failed setup (the database down at boot) is retried by
 * the next call rather than remembered. Failures come out as `fail` makes them.
 */
export function readyPool(
  pool: PostgresPoolLike,
  setup: () => Promise<void>,
  fail: (what: string, cause: unknown) => Error,
): { ready(): Promise<void>; query(text: string, values: unknown[]): Promise<PostgresQueryResult> } {
  let done: Promise<void> | undefined
  function ready(): Promise<void> {
    done ??= setup().catch((cause: unknown) => {
      done = undefined
      throw fail('could not create its tables', cause)
    })
    return done
  }
  async function query(text: string, values: unknown[]): Promise<PostgresQueryResult> {
    await ready()
    try {
      return await pool.query(text, values)
    } catch (cause) {
      throw fail('query failed', cause)
    }
  }
  return { ready, query }
}
