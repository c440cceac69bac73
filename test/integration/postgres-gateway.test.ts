import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StoreTimeoutError } from '../../src/errors.js'
import type { StoreErrorEvent } from '../../src/events.js'
import { createGateway, createKeyRing, type Gateway } from '../../src/index.js'
import { createPostgresLogStore, createPostgresSecretStore } from '../../src/postgres/index.js'
import { createMockProvider, type MockProvider } from '../../src/testing/index.js'
import { chatRequest } from '../helpers/requests.js'
import { DATABASE_URL, uniqueName } from '../helpers/services.js'

const MASTER_KEY = 'b'.repeat(64)

describe.skipIf(!DATABASE_URL)('gateways sharing one Postgres database', () => {
  const schema = uniqueName('gw')
  const pools: pg.Pool[] = []
  const gateways: Gateway[] = []
  let mock: MockProvider

  beforeAll(async () => {
    mock = await createMockProvider()
  })
  afterAll(async () => {
    await Promise.all(gateways.map((gateway) => gateway.close()))
    await pools[0]?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await Promise.all(pools.map((pool) => pool.end()))
    await mock.close()
  })

  async function instance(): Promise<Gateway> {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 })
    pools.push(pool)
    const keys = createKeyRing({ store: createPostgresSecretStore(pool, { schema }), masterKey: MASTER_KEY })
    const gateway = createGateway({
      providers: { openai: { baseURL: `${mock.url}/v1` } },
      keys,
      logs: { store: await createPostgresLogStore(pool, { schema }), batchSize: 10, flushIntervalMs: 20 },
    })
    gateways.push(gateway)
    return gateway
  }

  it('two instances log to one table, read each other’s records and stored keys, and aggregate in SQL', async () => {
    const [first, second] = await Promise.all([instance(), instance()])
    // A key stored through one instance's key ring is used by the other's.
    await createKeyRing({
      store: createPostgresSecretStore(pools[0]!, { schema }),
      masterKey: MASTER_KEY,
    }).putSecret('openai', 'default', 'sk-from-postgres')
    const sent = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        (i % 2 === 0 ? first! : second!).handle(
          chatRequest(`n${i}`, { 'cf-aig-metadata': `{"team":"${i % 3 === 0 ? 'red' : 'blue'}"}` }),
        ),
      ),
    )
    expect(sent.map((response) => response?.status)).toEqual(Array(30).fill(200))
    expect(new Set(mock.calls.map((call) => call.headers.authorization))).toEqual(
      new Set(['Bearer sk-from-postgres']),
    )
    await Promise.all([first!.flushLogs(), second!.flushLogs()])

    const ids = sent.map((response) => response!.headers['cf-aig-log-id']!)
    const seen: string[] = []
    let cursor: string | undefined
    do {
      const page = await second!.logs!.list({ limit: 7, ...(cursor ? { cursor } : {}) })
      seen.push(...page.records.map((record) => record.id))
      cursor = page.nextCursor ?? undefined
    } while (cursor)
    expect(seen.sort()).toEqual([...ids].sort())
    expect(await first!.logs!.get(ids[1]!)).toMatchObject({ provider: 'openai', success: true })

    const [rows, byTeam] = await Promise.all([
      first!.logs!.analytics({ groupBy: ['provider'] }),
      first!.logs!.analytics({ groupBy: ['metadata.team'] }),
    ])
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ group: { provider: 'openai' }, requests: 30, errors: 0, cacheHits: 0 })
    expect(rows[0]!.cost).toBeGreaterThan(0)
    expect(Object.fromEntries(byTeam.map((row) => [row.group['metadata.team'], row.requests]))).toEqual({
      red: 10,
      blue: 20,
    })

    const patched = await second!.logs!.patch(ids[0]!, { feedback: 1, score: 90 })
    expect(patched).toMatchObject({ feedback: 1, score: 90 })
  })
})

describe.skipIf(!DATABASE_URL)('a Postgres log store whose table another session has locked', () => {
  const schema = uniqueName('gwlock')
  let mock: MockProvider
  // One connection, as a host that gives its log store a pool of its own might: the insert given up keeps it.
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 })
  const locker = new pg.Client({ connectionString: DATABASE_URL })

  beforeAll(async () => {
    mock = await createMockProvider()
    await locker.connect()
  })
  afterAll(async () => {
    await locker.end()
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await pool.end()
    await mock.close()
  })

  it('gives up the insert after writeTimeoutMs and closes while the lock is held; the insert lands after', async () => {
    const store = await createPostgresLogStore(pool, { schema })
    const gateway = createGateway({
      providers: { openai: { apiKey: 'sk-locked-table', baseURL: `${mock.url}/v1` } },
      logs: { store, writeTimeoutMs: 200 },
    })
    const errors: StoreErrorEvent[] = []
    gateway.events.on('store:error', (e) => errors.push(e))
    await locker.query('BEGIN')
    await locker.query(`LOCK TABLE "${schema}".ai_gateway_logs IN ACCESS EXCLUSIVE MODE`)
    expect((await gateway.handle(chatRequest('behind a lock')))?.status).toBe(200)
    // Every insert waits for the lock, which this test holds until the gateway has closed.
    await gateway.close()
    expect(gateway.stats().logs).toMatchObject({ queued: 0, written: 0, dropped: 1 })
    expect(errors).toEqual([
      expect.objectContaining({ store: 'logs', operation: 'write', error: expect.any(StoreTimeoutError) }),
    ])
    await locker.query('ROLLBACK')
    // The pool's one connection is the insert's until it ends: this count runs after it.
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".ai_gateway_logs`)
    expect(rows[0].n).toBe(1)
  })
})
