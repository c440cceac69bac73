import { Redis } from 'ioredis'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createKeyRing } from '../../src/keys/key-ring.js'
import { createMemorySecretStore } from '../../src/keys/memory-store.js'
import { createPostgresSecretStore } from '../../src/postgres/key-store.js'
import { createRedisSecretStore } from '../../src/redis/key-store.js'
import { secretStoreConformance } from '../../src/testing/key-store-conformance.js'
import { DATABASE_URL, REDIS_URL, uniqueName } from '../helpers/services.js'

const MASTER_KEY = Buffer.alloc(32, 0x5c)
const CANARY = 'sk-integration-canary-0d9c8b7a6f5e'

function rejectsWith(reason: string) {
  return expect.objectContaining({ name: 'KeyStoreError', reason })
}

secretStoreConformance('createMemorySecretStore', () => createMemorySecretStore())

describe.skipIf(!REDIS_URL)('createRedisSecretStore()', () => {
  const root = `${uniqueName('aigw_keys')}:`
  let client: Redis
  let stores = 0

  beforeAll(async () => {
    client = new Redis(REDIS_URL!, { lazyConnect: true, maxRetriesPerRequest: 1 })
    await client.connect()
  })

  afterAll(async () => {
    const keys = await client.keys(`${root}*`)
    if (keys.length > 0) await client.del(...keys)
    await client.quit()
  })

  secretStoreConformance('createRedisSecretStore', () =>
    createRedisSecretStore(client, { prefix: `${root}${stores++}:` }),
  )

  it('holds only ciphertext in Redis', async () => {
    const prefix = `${root}canary:`
    const keys = createKeyRing({ store: createRedisSecretStore(client, { prefix }), masterKey: MASTER_KEY })
    await keys.putSecret('openai', 'default', CANARY)
    expect(await keys.getSecret('openai', 'default')).toBe(CANARY)
    const raw = JSON.stringify(await client.hgetall(`${prefix}p:openai`))
    expect(raw).not.toContain(CANARY.slice(3, -4))
    expect(raw).not.toContain(Buffer.from(CANARY).toString('base64').slice(4, -4))
  })

  it('rejects at once while the client is not connected', async () => {
    const idle = new Redis(REDIS_URL!, { lazyConnect: true })
    const store = createRedisSecretStore(idle)
    await expect(store.get('openai', 'default')).rejects.toThrow(rejectsWith('store-unavailable'))
    await expect(
      store.put({
        provider: 'openai',
        alias: 'a',
        ciphertext: 'x',
        keyId: 'y',
        hint: '…',
        createdAt: 1,
        updatedAt: 1,
      }),
    ).rejects.toThrow(rejectsWith('store-unavailable'))
    idle.disconnect()
  })

  it('reports a record it cannot read as invalid-record', async () => {
    const prefix = `${root}corrupt:`
    await client.hset(`${prefix}p:openai`, 'default', '{"not":"a record"}')
    const store = createRedisSecretStore(client, { prefix })
    await expect(store.get('openai', 'default')).rejects.toThrow(rejectsWith('invalid-record'))
  })
})

describe.skipIf(!DATABASE_URL)('createPostgresSecretStore()', () => {
  const schema = uniqueName('aigw_keys')
  let pool: pg.Pool
  let tables = 0

  beforeAll(() => {
    pool = new pg.Pool({ connectionString: DATABASE_URL, max: 8 })
  })

  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    await pool.end()
  })

  secretStoreConformance('createPostgresSecretStore', () =>
    createPostgresSecretStore(pool, { schema, table: `keys_${tables++}` }),
  )

  it('creates its table once when many instances start together', async () => {
    const table = 'shared_start'
    const stores = Array.from({ length: 6 }, () => createPostgresSecretStore(pool, { schema, table }))
    await Promise.all(stores.map((store) => store.ready()))
    await Promise.all(stores.map((store, i) => store.put(sample(`k${i}`))))
    expect(await stores[0]!.list()).toHaveLength(6)
  })

  it('holds only ciphertext in the table', async () => {
    const table = 'canary'
    const keys = createKeyRing({
      store: createPostgresSecretStore(pool, { schema, table }),
      masterKey: MASTER_KEY,
    })
    await keys.putSecret('openai', 'default', CANARY)
    expect(await keys.getSecret('openai', 'default')).toBe(CANARY)
    const { rows } = await pool.query(`SELECT * FROM "${schema}"."${table}"`)
    const raw = JSON.stringify(rows)
    expect(raw).not.toContain(CANARY.slice(3, -4))
    expect(raw).not.toContain(Buffer.from(CANARY).toString('base64').slice(4, -4))
  })

  it.each([
    ['a quoted schema', { schema: 'x"; DROP TABLE y; --' }],
    ['an upper-case table', { table: 'Keys' }],
    ['a dotted table', { table: 'a.b' }],
  ])('refuses %s at construction', (_, options) => {
    expect(() => createPostgresSecretStore(pool, options)).toThrow(rejectsWith('invalid-options'))
  })

  it('reports an unreachable database as store-unavailable', async () => {
    const down = new pg.Pool({
      connectionString: 'postgres://postgres@127.0.0.1:1/test',
      connectionTimeoutMillis: 500,
    })
    const store = createPostgresSecretStore(down, { schema, table: 'unreachable' })
    await expect(store.get('openai', 'default')).rejects.toThrow(rejectsWith('store-unavailable'))
    await down.end()
  })
})

function sample(alias: string) {
  return {
    provider: 'openai',
    alias,
    ciphertext: 'AQID',
    keyId: '00000000',
    hint: '…',
    createdAt: 1,
    updatedAt: 2,
  }
}
