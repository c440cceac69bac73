import { Redis } from 'ioredis'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RouteDefinition, RouteStore } from '../../src/dynamic/types.js'
import { createPostgresRouteStore } from '../../src/postgres/route-store.js'
import { createRedisRouteStore } from '../../src/redis/route-store.js'
import { createMemoryRouteStore } from '../../src/stores/memory-routes.js'
import { routeStoreConformance } from '../../src/testing/route-store-conformance.js'
import { DATABASE_URL, REDIS_URL, uniqueName } from '../helpers/services.js'

const NOON = Date.UTC(2025, 0, 15, 12)

function definition(name: string, model = 'gpt-4o-mini'): RouteDefinition {
  return {
    name,
    elements: [
      { id: 'start', type: 'start', outputs: { next: { elementId: 'model' } } },
      {
        id: 'model',
        type: 'model',
        properties: { provider: 'openai', model },
        outputs: { success: { elementId: 'end' } },
      },
      { id: 'end', type: 'end', outputs: {} },
    ],
  }
}

/**
 * What two instances sharing one backend must agree on: each sees the other's saves, deployments and
 * deletes, and saves made through both at once still get distinct, consecutive versions.
 */
function sharedBetweenInstances(make: () => Promise<[RouteStore, RouteStore]>): void {
  it("sees the other instance's saves, deployments and deletes", async () => {
    const [a, b] = await make()
    await a.save(definition('shared', 'model-1'), NOON)
    await b.save(definition('shared', 'model-2'), NOON + 1)
    expect((await a.versions('shared')).map((v) => v.version)).toEqual([2, 1])
    expect((await a.version('shared', 2))?.definition).toEqual(definition('shared', 'model-2'))

    expect(await a.deploy('shared', 2, NOON + 2)).toEqual({
      name: 'shared',
      version: 2,
      deployedAt: NOON + 2,
    })
    expect(await b.deployed('shared')).toEqual({
      name: 'shared',
      version: 2,
      deployedAt: NOON + 2,
      definition: definition('shared', 'model-2'),
    })
    // A rollback on the second instance is what the first then reads.
    await b.deploy('shared', 1, NOON + 3)
    expect(await a.deployed('shared')).toMatchObject({ version: 1, deployedAt: NOON + 3 })
    expect(await a.list()).toEqual([
      { name: 'shared', latestVersion: 2, deployedVersion: 1, updatedAt: NOON + 3 },
    ])

    expect(await b.delete('shared')).toBe(true)
    expect(await a.deployed('shared')).toBeUndefined()
    expect(await a.deploy('shared', 1, NOON + 4)).toBeUndefined()
    expect(await a.list()).toEqual([])
  })

  it('allocates distinct, consecutive versions to saves made through both at once', async () => {
    const [a, b] = await make()
    const saved = await Promise.all(
      Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).save(definition('busy', `model-${i}`), NOON + i)),
    )
    expect(saved.map((v) => v.version).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 30 }, (_, i) => i + 1),
    )
    const versions = await b.versions('busy')
    for (const each of saved) {
      expect(versions.find((v) => v.version === each.version)?.definition).toEqual(each.definition)
    }
  })
}

routeStoreConformance('createMemoryRouteStore', () => createMemoryRouteStore())

describe.skipIf(!REDIS_URL)('createRedisRouteStore()', () => {
  const root = `${uniqueName('aigw_routes')}:`
  let client: Redis
  let other: Redis
  let stores = 0

  beforeAll(async () => {
    client = new Redis(REDIS_URL!, { lazyConnect: true, maxRetriesPerRequest: 1 })
    other = new Redis(REDIS_URL!, { lazyConnect: true, maxRetriesPerRequest: 1 })
    await Promise.all([client.connect(), other.connect()])
  })

  afterAll(async () => {
    // SCAN rather than KEYS, which would block a shared server.
    const keys: string[] = []
    let cursor = '0'
    do {
      const [next, batch] = await client.scan(cursor, 'MATCH', `${root}*`, 'COUNT', 500)
      keys.push(...batch)
      cursor = next
    } while (cursor !== '0')
    if (keys.length > 0) await client.del(...keys)
    await Promise.all([client.quit(), other.quit()])
  })

  routeStoreConformance('createRedisRouteStore', () =>
    createRedisRouteStore(client, { prefix: `${root}${stores++}:` }),
  )

  describe('two instances on two clients', () => {
    sharedBetweenInstances(async () => {
      const prefix = `${root}${stores++}:`
      return [createRedisRouteStore(client, { prefix }), createRedisRouteStore(other, { prefix })]
    })
  })

  it('keeps everything under its prefix', async () => {
    const prefix = `${root}layout:`
    const store = createRedisRouteStore(client, { prefix })
    await store.save(definition('support'), NOON)
    const keys: string[] = []
    let cursor = '0'
    do {
      const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
      keys.push(...batch)
      cursor = next
    } while (cursor !== '0')
    expect(keys.sort()).toEqual([`${prefix}index`, `${prefix}r:support`])
  })

  it('rejects at once while the client is not connected', async () => {
    const idle = new Redis(REDIS_URL!, { lazyConnect: true })
    const store = createRedisRouteStore(idle, { prefix: `${root}idle:` })
    await expect(Promise.resolve().then(() => store.save(definition('support'), NOON))).rejects.toThrow(
      /not ready/,
    )
    await expect(Promise.resolve().then(() => store.deployed('support'))).rejects.toThrow(/not ready/)
    await expect(Promise.resolve().then(() => store.list())).rejects.toThrow(/not ready/)
    idle.disconnect()
  })

  it('reports a version it cannot read rather than answering it', async () => {
    const prefix = `${root}corrupt:`
    await client.hset(`${prefix}r:support`, 'latest', '1', 'v:1', '{"not":"a version"}')
    const store = createRedisRouteStore(client, { prefix })
    await expect(Promise.resolve().then(() => store.version('support', 1))).rejects.toThrow(
      /version 1 of route 'support'/,
    )
  })
})

describe.skipIf(!DATABASE_URL)('createPostgresRouteStore()', () => {
  const schema = uniqueName('aigw_routes')
  let pool: pg.Pool
  let other: pg.Pool
  let tables = 0

  beforeAll(() => {
    pool = new pg.Pool({ connectionString: DATABASE_URL, max: 8 })
    other = new pg.Pool({ connectionString: DATABASE_URL, max: 8 })
  })

  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await Promise.all([pool.end(), other.end()])
  })

  routeStoreConformance('createPostgresRouteStore', () =>
    createPostgresRouteStore(pool, { schema, table: `routes_${tables++}` }),
  )

  describe('two instances on two pools', () => {
    sharedBetweenInstances(async () => {
      const table = `routes_${tables++}`
      return [
        createPostgresRouteStore(pool, { schema, table }),
        createPostgresRouteStore(other, { schema, table }),
      ]
    })
  })

  it('creates its tables once when many instances start together', async () => {
    const table = 'shared_start'
    const stores = Array.from({ length: 6 }, (_, i) =>
      createPostgresRouteStore(i % 2 ? pool : other, { schema, table }),
    )
    await Promise.all(stores.map((store) => store.ready()))
    await Promise.all(stores.map((store, i) => store.save(definition(`route-${i}`), NOON)))
    expect(await stores[0]!.list()).toHaveLength(6)
  })

  it('keeps definitions as jsonb', async () => {
    const table = 'jsonb'
    const store = createPostgresRouteStore(pool, { schema, table })
    await store.save(definition('support', 'model-1'), NOON)
    const { rows } = await pool.query(
      `SELECT definition -> 'elements' -> 1 -> 'properties' ->> 'model' AS model, created_at
       FROM "${schema}"."${table}_versions"`,
    )
    expect(rows).toEqual([{ model: 'model-1', created_at: String(NOON) }])
  })

  it.each([
    ['a quoted schema', { schema: 'x"; DROP TABLE y; --' }],
    ['an upper-case table', { table: 'Routes' }],
    ['a dotted table', { table: 'a.b' }],
    ['a table too long for its versions table', { table: 'a'.repeat(55) }],
  ])('refuses %s at construction', (_, options) => {
    expect(() => createPostgresRouteStore(pool, options)).toThrow(TypeError)
  })

  it('reports an unreachable database, and retries setup on the next call', async () => {
    const down = new pg.Pool({
      connectionString: 'postgres://postgres@127.0.0.1:1/test',
      connectionTimeoutMillis: 500,
    })
    const store = createPostgresRouteStore(down, { schema, table: 'unreachable' })
    await expect(store.list()).rejects.toThrow(/Postgres route store could not create its tables/)
    await expect(store.ready()).rejects.toThrow(/could not create/)
    await down.end()
  })
})
