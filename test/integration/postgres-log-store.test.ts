import { EventEmitter } from 'eventemitter3'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { GatewayEmitter, LogDroppedEvent } from '../../src/events.js'
import { LogQueue } from '../../src/logs/recorder.js'
import type { LogGuard, LogRecord } from '../../src/logs/types.js'
import { namesOf } from '../../src/postgres/log-schema.js'
import { DLP_ACTION_SQL, GUARDRAIL_ACTION_SQL, ROUTE_NAME_SQL } from '../../src/postgres/log-sql.js'
import { createPostgresLogStore } from '../../src/postgres/log-store.js'
import { logStoreConformance } from '../../src/testing/log-store-conformance.js'
import { SAMPLE_ATTEMPT, sampleRecord } from '../helpers/log-store.js'
import { DATABASE_URL, uniqueName } from '../helpers/services.js'
import { eventually } from '../helpers/until.js'

function record(createdAt: number, overrides: Partial<LogRecord> = {}): LogRecord {
  return sampleRecord({
    createdAt,
    ttfbMs: 5,
    tokensIn: 1,
    tokensOut: 2,
    cost: 0.001,
    requestSize: 10,
    responseSize: 20,
    ...overrides,
  })
}

describe.skipIf(!DATABASE_URL)('createPostgresLogStore()', () => {
  const schema = uniqueName('logs')
  const schemas = [schema]
  const pools: pg.Pool[] = []
  let pool: pg.Pool
  let tables = 0

  function newPool(): pg.Pool {
    const created = new pg.Pool({ connectionString: DATABASE_URL, max: 4 })
    pools.push(created)
    return created
  }

  function freshSchema(): string {
    const name = uniqueName('logs')
    schemas.push(name)
    return name
  }

  async function migrationVersions(name: string, table = 'ai_gateway_logs'): Promise<number[]> {
    const { rows } = await pool.query(`SELECT version FROM "${name}"."${table}_migrations" ORDER BY version`)
    return rows.map((row) => row.version)
  }

  beforeAll(() => {
    pool = newPool()
  })

  afterAll(async () => {
    for (const name of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`)
    await Promise.all(pools.map((p) => p.end()))
  })

  // A table per test keeps the conformance tests independent; the schema goes in afterAll.
  logStoreConformance('conformance', () =>
    createPostgresLogStore(pool, { schema, table: `logs_${++tables}` }),
  )

  it('migrates one fresh schema from several instances at once', async () => {
    const name = freshSchema()
    const [a, b] = [newPool(), newPool()]
    const stores = await Promise.all([a, b, a, b].map((p) => createPostgresLogStore(p, { schema: name })))
    expect(stores).toHaveLength(4)
    expect(await migrationVersions(name)).toEqual([1, 2, 3, 4, 5, 6, 7])
  })

  it('lets instances on separate pools see each other’s writes', async () => {
    const name = freshSchema()
    const [first, second] = await Promise.all([
      createPostgresLogStore(newPool(), { schema: name }),
      createPostgresLogStore(newPool(), { schema: name }),
    ])
    const [one, two] = [record(1000), record(2000)]
    await Promise.all([first.write([one]), second.write([two])])
    for (const store of [first, second]) {
      expect((await store.list({ direction: 'asc' })).records.map((r) => r.id)).toEqual([one.id, two.id])
    }
  })

  it('migrates again without changes or data loss', async () => {
    const name = freshSchema()
    const store = await createPostgresLogStore(pool, { schema: name, table: 'again' })
    const kept = record(1000)
    await store.write([kept])
    const reopened = await createPostgresLogStore(pool, { schema: name, table: 'again' })
    expect(await reopened.get(kept.id)).toEqual(kept)
    expect(await migrationVersions(name, 'again')).toEqual([1, 2, 3, 4, 5, 6, 7])
  })

  it('refuses schema and table names that are not plain identifiers, before any query', async () => {
    for (const options of [
      { schema: 'Bad-Name' },
      { table: 'x"; DROP TABLE y; --' },
      { table: 'a'.repeat(49) },
    ]) {
      await expect(createPostgresLogStore(pool, options)).rejects.toThrow(TypeError)
    }
  })

  it('passes hostile values as parameters', async () => {
    const store = await createPostgresLogStore(pool, { schema, table: 'hostile' })
    const hostile = `x'); DROP TABLE "${schema}"."hostile"; --`
    await store.write([record(1000, { provider: hostile, metadata: { [hostile]: hostile } })])
    const filters = [
      { field: 'provider', op: 'eq', value: hostile },
      { field: `metadata.${hostile}`, op: 'eq', value: hostile },
    ] as const
    expect((await store.list({ filters: [...filters] })).records).toHaveLength(1)
    expect(await store.analytics({ groupBy: [`metadata.${hostile}`] })).toMatchObject([
      { group: { [`metadata.${hostile}`]: hostile }, requests: 1 },
    ])
  })

  it('keeps created_at as bigint milliseconds, cost as numeric and metadata as jsonb', async () => {
    await createPostgresLogStore(pool, { schema, table: 'typed' })
    const { rows } = await pool.query(
      `SELECT column_name, data_type FROM information_schema.columns
       WHERE table_schema = $1 AND table_name = 'typed' AND column_name = ANY($2)`,
      [schema, ['created_at', 'metadata', 'cost', 'id']],
    )
    expect(Object.fromEntries(rows.map((row) => [row.column_name, row.data_type]))).toEqual({
      id: 'uuid',
      created_at: 'bigint',
      cost: 'numeric',
      metadata: 'jsonb',
    })
  })

  it('serves a filter on the route name from the route index', async () => {
    const store = await createPostgresLogStore(pool, { schema, table: 'routed' })
    const route = { name: 'tiered', version: 1, path: ['start', 'split', 'm'], variants: { split: '10%' } }
    await store.write([record(1000, { route }), record(2000)])
    const client = await pool.connect()
    try {
      // A table this small is scanned whole unless scans are ruled out; what matters is that the index fits.
      await client.query('BEGIN')
      await client.query('SET LOCAL enable_seqscan = off')
      const { rows } = await client.query(
        `EXPLAIN SELECT id FROM "${schema}"."routed" WHERE ${ROUTE_NAME_SQL} = $1::text`,
        ['tiered'],
      )
      expect(rows.map((row) => row['QUERY PLAN']).join('\n')).toContain('routed_route_idx')
    } finally {
      await client.query('ROLLBACK')
      client.release()
    }
    const filters = [{ field: 'route', op: 'eq', value: 'tiered' }] as const
    expect((await store.list({ filters: [...filters] })).records.map((r) => r.route)).toEqual([route])
  })

  it('serves filters on guard actions from their indexes', async () => {
    const store = await createPostgresLogStore(pool, { schema, table: 'guarded' })
    const guard: LogGuard = {
      dlp: { action: 'BLOCK', findings: [] },
      guardrails: { action: 'FLAG', prompt: [{ category: 'S1', score: 0.9, classifier: 'llama-guard' }] },
    }
    await store.write([record(1000, { guard }), record(2000)])
    const client = await pool.connect()
    try {
      await client.query('BEGIN')
      await client.query('SET LOCAL enable_seqscan = off')
      for (const [expression, index] of [
        [DLP_ACTION_SQL, 'guarded_dlp_idx'],
        [GUARDRAIL_ACTION_SQL, 'guarded_guardrail_idx'],
      ] as const) {
        const { rows } = await client.query(
          `EXPLAIN SELECT id FROM "${schema}"."guarded" WHERE ${expression} = $1::text`,
          ['BLOCK'],
        )
        expect(rows.map((row) => row['QUERY PLAN']).join('\n')).toContain(index)
      }
    } finally {
      await client.query('ROLLBACK')
      client.release()
    }
    const filters = [{ field: 'guardrailAction', op: 'eq', value: 'FLAG' }] as const
    expect((await store.list({ filters: [...filters] })).records.map((r) => r.guard)).toEqual([guard])
  })

  it('sums costs exactly and rounds the sum once to 10 places, as the memory store does', async () => {
    const store = await createPostgresLogStore(pool, { schema, table: 'sums' })
    // 1000 requests of 22 gpt-4o-mini prompt tokens: floats would sum them to 0.003299999999999948.
    await store.write(Array.from({ length: 1000 }, (_, i) => record(1000 + i, { cost: 0.0000033 })))
    await store.write([
      record(5000, { provider: 'x', cost: 0.1 }),
      record(5001, { provider: 'x', cost: 0.2 }),
      // Host-written costs finer than 10 places: exact until the one rounding, halves away from zero.
      record(5002, { provider: 'y', cost: 0.00000000004 }),
      record(5003, { provider: 'y', cost: 0.00000000001 }),
    ])
    const rows = await store.analytics({ groupBy: ['provider'] })
    expect(rows.map((row) => [row.group.provider, row.cost])).toEqual([
      ['openai', 0.0033],
      ['x', 0.3],
      ['y', 0.0000000001],
    ])
    expect((await store.list({ limit: 1 })).records[0]?.cost).toBe(0.00000000001)
  })

  it('ends a page with bodies at 32 MiB of them, and pages on to the rest', async () => {
    const store = await createPostgresLogStore(pool, { schema, table: 'big_bodies' })
    // Five records of 8 MiB of bodies each: with the default 10 MiB per body, a page of 1000 such records
    // would have loaded some 20 GiB into the gateway's memory.
    const body = 'x'.repeat(4 * 1024 * 1024)
    const written = Array.from({ length: 5 }, (_, i) =>
      record(1000 + i, { requestBody: body, responseBody: body }),
    )
    for (const one of written) await store.write([one])
    await store.write([record(2000)])

    const first = await store.list({ limit: 1000, direction: 'asc', includeBodies: true })
    expect(first.records.map((r) => r.createdAt)).toEqual([1000, 1001, 1002, 1003])
    expect(first.records.every((r) => r.requestBody === body && r.responseBody === body)).toBe(true)
    expect(first.nextCursor).toBeDefined()
    const second = await store.list({
      limit: 1000,
      direction: 'asc',
      includeBodies: true,
      cursor: first.nextCursor,
    })
    expect(second.records.map((r) => [r.createdAt, r.requestBody === body])).toEqual([
      [1004, true],
      [2000, false],
    ])
    expect(second.nextCursor).toBeUndefined()
    // Without bodies a page is as long as asked.
    expect((await store.list({ limit: 1000 })).records).toHaveLength(6)
  })

  it('migrates a version-1 table, its float costs becoming the decimals they stand for', async () => {
    const name = freshSchema()
    const store = await createPostgresLogStore(pool, { schema: name, table: 'old' })
    const noisy = record(1000, { cost: 0.0000032999999999999997 })
    await store.write([noisy, record(2000, { cost: null })])
    // Back to version 1: cost as double precision, holding what float arithmetic used to log, and no
    // attempt log, route or guard columns (their indexes go with them).
    await pool.query(`ALTER TABLE "${name}"."old" ALTER COLUMN cost TYPE double precision`)
    await pool.query(`ALTER TABLE "${name}"."old" DROP COLUMN attempt_log`)
    await pool.query(`ALTER TABLE "${name}"."old" DROP COLUMN route`)
    await pool.query(`ALTER TABLE "${name}"."old" DROP COLUMN guard`)
    await pool.query(`ALTER TABLE "${name}"."old" DROP COLUMN websocket`)
    await pool.query(`DELETE FROM "${name}"."old_migrations" WHERE version > 1`)
    const migrated = await createPostgresLogStore(pool, { schema: name, table: 'old' })
    expect(await migrationVersions(name, 'old')).toEqual([1, 2, 3, 4, 5, 6, 7])
    expect((await migrated.get(noisy.id))?.cost).toBe(0.0000033)
    expect(await migrated.analytics({})).toMatchObject([{ requests: 2, cost: 0.0000033 }])
    // Records from before the attempt log read back without one; new ones keep theirs.
    expect(await migrated.get(noisy.id)).not.toHaveProperty('attemptLog')
    const attemptLog = [SAMPLE_ATTEMPT]
    const retried = record(3000, { attemptLog })
    await migrated.write([retried])
    expect((await migrated.get(retried.id))?.attemptLog).toEqual(attemptLog)
    expect(await migrated.get(retried.id)).not.toHaveProperty('route')
    const route = { name: 'tiered', version: 2, path: ['start', 'plan', 'big'], variants: { split: '10%' } }
    const routed = record(4000, { route })
    await migrated.write([routed])
    expect((await migrated.get(routed.id))?.route).toEqual(route)
    expect(await migrated.get(routed.id)).not.toHaveProperty('guard')
    const guard: LogGuard = { dlp: { action: 'BLOCK', findings: [] }, guardrails: { action: 'UNAVAILABLE' } }
    const guarded = record(5000, { guard })
    await migrated.write([guarded])
    expect((await migrated.get(guarded.id))?.guard).toEqual(guard)
    const blocked = [{ field: 'dlpAction', op: 'eq', value: 'BLOCK' }] as const
    expect((await migrated.list({ filters: [...blocked] })).records.map((r) => r.id)).toEqual([guarded.id])
    expect(await migrated.get(guarded.id)).not.toHaveProperty('websocket')
    const websocket = {
      framesIn: 3,
      framesOut: 9,
      closeCode: 1000,
      closeReason: '',
      closedBy: 'client',
    } as const
    const session = record(6000, { websocket })
    await migrated.write([session])
    expect((await migrated.get(session.id))?.websocket).toEqual(websocket)
  })

  it('rejects a transaction whose connection is terminated mid-write, and the process goes on', async () => {
    const name = freshSchema()
    const application = uniqueName('dropped')
    const own = new pg.Pool({ connectionString: DATABASE_URL, max: 2, application_name: application })
    pools.push(own)
    own.on('error', () => {}) // the host's listener for its idle clients, as pg asks of every pool
    const store = await createPostgresLogStore(own, { schema: name })
    const locker = new pg.Client({ connectionString: DATABASE_URL })
    await locker.connect()
    await locker.query('BEGIN')
    await locker.query(`LOCK TABLE "${name}".ai_gateway_logs IN ACCESS EXCLUSIVE MODE`)
    // Over one statement's 500 rows: written in a transaction, on a client checked out of the pool.
    const write = store.write(Array.from({ length: 501 }, (_, i) => record(1000 + i))).then(
      () => undefined,
      (error: unknown) => error,
    )
    const waiting = await eventually(async () => {
      const { rows } = await pool.query(
        `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
        [application],
      )
      return rows[0]?.pid as number | undefined
    })
    // A failover or an administrator ends the backend: pg's client emits `error` while its query is pending.
    await pool.query('SELECT pg_terminate_backend($1)', [waiting])
    expect(await write).toMatchObject({ message: expect.stringMatching(/terminat/) })
    await locker.query('ROLLBACK')
    await locker.end()
    // The broken connection went back to the pool with its failure and was discarded: the next write works.
    await store.write([record(5000)])
    expect((await store.list({ limit: 10 })).records).toHaveLength(1)
  })

  it('loses only the invalid record of a batch the gateway’s log queue writes, counted as dropped', async () => {
    const store = await createPostgresLogStore(pool, { schema: freshSchema() })
    const events: GatewayEmitter = new EventEmitter()
    const dropped: LogDroppedEvent[] = []
    events.on('log:dropped', (e) => dropped.push(e))
    const settings = { batchSize: 100, flushIntervalMs: 600_000, maxQueue: 100, writeTimeoutMs: 60_000 }
    const queue = new LogQueue(store, settings, events)
    const records = Array.from({ length: 10 }, (_, i) => record(1000 + i))
    // A count past int8, as a provider once reported it.
    for (const [i, r] of records.entries()) queue.push(i === 5 ? { ...r, tokensIn: 1e19 } : r)
    await queue.flush()
    expect(queue.stats).toMatchObject({ written: 9, dropped: 1 })
    expect(dropped).toEqual([{ count: 1, total: 1, reason: 'write-failed' }])
    const kept = (await store.list({ limit: 100 })).records.map((r) => r.id)
    expect(kept.sort()).toEqual(
      records
        .filter((_, i) => i !== 5)
        .map((r) => r.id)
        .sort(),
    )
  })

  describe('named inserts', () => {
    // One connection: what Postgres holds for it is read back on it, and what the test does to it is what
    // the store's next write meets.
    async function storeOnOneConnection() {
      const one = new pg.Pool({ connectionString: DATABASE_URL, max: 1 })
      pools.push(one)
      const table = `named_${++tables}`
      const store = await createPostgresLogStore(one, { schema, table })
      return { one, store, prefix: namesOf({ schema, table }).statementPrefix }
    }

    async function heldNames(one: pg.Pool): Promise<string[]> {
      const { rows } = await one.query(
        "SELECT name FROM pg_prepared_statements WHERE name LIKE 'aigw_logs_%' ORDER BY name",
      )
      return rows.map((row) => row.name)
    }

    const batch = (size: number, from: number) => Array.from({ length: size }, (_, i) => record(from + i))

    async function storedIds(store: Awaited<ReturnType<typeof createPostgresLogStore>>): Promise<string[]> {
      const { records } = await store.list({ limit: 1000, direction: 'asc' })
      return records.map((r) => r.id)
    }

    it('names a batch size from its second write, and writes the same rows', async () => {
      const { one, store, prefix } = await storeOnOneConnection()
      const written = [batch(3, 1000), batch(2, 2000), batch(3, 3000), batch(3, 4000)]
      await store.write(written[0]!)
      await store.write(written[1]!)
      expect(await heldNames(one)).toEqual([])
      await store.write(written[2]!)
      await store.write(written[3]!)
      expect(await heldNames(one)).toEqual([`${prefix}3`])
      expect(await storedIds(store)).toEqual(written.flat().map((r) => r.id))
    })

    // What a pooler in transaction mode does to a named statement: the next query runs on a server
    // connection that never parsed it, or on one where another client parsed one of that name.
    it.each([
      [
        'no longer holds the statement (26000)',
        async (one: pg.Pool) => {
          await one.query('DEALLOCATE ALL')
        },
        3,
      ],
      [
        'holds another statement of its name (42P05)',
        async (one: pg.Pool, prefix: string) => {
          await one.query(`PREPARE "${prefix}3" AS SELECT 1`)
        },
        1,
      ],
    ])('writes on unnamed when the connection %s, and names nothing more', async (_name, meddle, before) => {
      const { one, store, prefix } = await storeOnOneConnection()
      const written = Array.from({ length: before }, (_, i) => batch(3, 1000 * (i + 1)))
      for (const records of written) await store.write(records)
      await meddle(one, prefix)
      for (const [i, size] of [3, 3, 2, 2, 2].entries()) {
        const records = batch(size, 100_000 + 1000 * i)
        written.push(records)
        await store.write(records)
      }
      expect(await storedIds(store)).toEqual(written.flat().map((r) => r.id))
      // pg's pool ends a connection whose query failed: the store's writes went on on a new one, where an
      // insert still named would have been parsed again under its name.
      expect(await heldNames(one)).toEqual([])
    })

    it('lets every other failure of a named insert through, unretried', async () => {
      const { one, store } = await storeOnOneConnection()
      for (const at of [1000, 2000, 3000]) await store.write(batch(3, at))
      await one.query(`DROP TABLE "${schema}"."named_${tables}"`)
      let inserts = 0
      const query = one.query.bind(one) as (...args: unknown[]) => Promise<unknown>
      Object.assign(one, {
        query: (...args: unknown[]) => {
          const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text: string }).text
          if (text.startsWith('INSERT')) inserts++
          return query(...args)
        },
      })
      await expect(store.write(batch(3, 4000))).rejects.toMatchObject({ code: '42P01' })
      expect(inserts).toBe(1)
    })
  })
})
