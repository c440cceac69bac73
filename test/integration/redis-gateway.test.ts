import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { StoreErrorEvent } from '../../src/events.js'
import { createGateway, type Gateway, type GatewayOptions, type GatewayRequest } from '../../src/index.js'
import { createRedisCacheStore, createRedisLimitStore } from '../../src/redis/index.js'
import { createMockProvider, type MockProvider } from '../../src/testing/index.js'
import { REDIS_URL, uniqueName } from '../helpers/services.js'

let mock: MockProvider
const clients: Redis[] = []
const gateways: Gateway[] = []

beforeAll(async () => {
  mock = await createMockProvider()
})
afterAll(async () => {
  await Promise.all(gateways.map((gateway) => gateway.close()))
  for (const client of clients) client.disconnect()
  await mock.close()
})

/** A client as the README asks hosts to make one: no offline queue, so a call while disconnected fails fast. */
async function connect(url: string): Promise<Redis> {
  const client = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: () => 100,
  })
  client.on('error', () => {})
  clients.push(client)
  if (client.status !== 'ready') await once(client, 'ready')
  return client
}

function gatewayWith(options: GatewayOptions): Gateway {
  const gateway = createGateway({
    providers: { openai: { apiKey: 'sk-test', baseURL: `${mock.url}/v1` } },
    ...options,
  })
  gateways.push(gateway)
  return gateway
}

function chat(text: string): GatewayRequest {
  return {
    method: 'POST',
    path: '/openai/chat/completions',
    search: '',
    headers: { 'content-type': 'application/json' },
    signal: new AbortController().signal,
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] }),
  }
}

async function ask(gateway: Gateway, text: string) {
  const response = await gateway.handle(chat(text))
  return { status: response!.status, headers: response!.headers }
}

describe.skipIf(!REDIS_URL)('gateways sharing one Redis', () => {
  it('three instances, each with its own connection: a limit of 20 admits exactly 20, and a cache entry written by one is a hit in the others', async () => {
    mock.reset()
    const prefix = `${uniqueName('gw')}:`
    const instances = await Promise.all(
      [0, 1, 2].map(async () => {
        const client = await connect(REDIS_URL!)
        return gatewayWith({
          rateLimit: {
            limit: 20,
            window: 60,
            technique: 'sliding',
            store: createRedisLimitStore(client, { prefix }),
          },
          cache: { ttl: 600, store: createRedisCacheStore(client, { prefix }) },
        })
      }),
    )
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) => ask(instances[i % 3]!, `load ${i}`)),
    )
    expect(answers.filter((a) => a.status === 200)).toHaveLength(20)
    expect(answers.filter((a) => a.status === 429)).toHaveLength(40)
    expect(mock.calls).toHaveLength(20)

    // Every admitted answer was written by the instance that served it; the other two find it.
    await new Promise((resolve) => setTimeout(resolve, 50))
    const admitted = answers.flatMap((answer, i) => (answer.status === 200 ? [i] : []))
    for (const i of admitted) {
      for (const other of [1, 2]) {
        const replay = await ask(instances[(i + other) % 3]!, `load ${i}`)
        expect(replay.headers['cf-aig-cache-status']).toBe('HIT')
      }
    }
    expect(mock.calls).toHaveLength(20)
  })
})

/** A Redis server of this test's own, so it can be stopped, paused and started again without disturbing others. */
class PrivateRedis {
  process: ChildProcess | undefined
  constructor(readonly port: number) {}

  static async start(): Promise<PrivateRedis> {
    const server = createServer().listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as { port: number }
    server.close()
    const redis = new PrivateRedis(port)
    await redis.up()
    return redis
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`
  }

  async up(): Promise<void> {
    this.process = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    )
    for (let i = 0; i < 100; i++) {
      const probe = new Redis(this.url, { lazyConnect: true, retryStrategy: () => null })
      probe.on('error', () => {})
      const ok = await probe.connect().then(
        () => true,
        () => false,
      )
      probe.disconnect()
      if (ok) return
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    throw new Error('redis-server did not start')
  }

  async down(): Promise<void> {
    const child = this.process
    if (child === undefined || child.exitCode !== null) return
    child.kill('SIGKILL')
    await once(child, 'exit')
  }
}

describe.skipIf(!REDIS_URL)('a Redis that stops, stalls and comes back', () => {
  let redis: PrivateRedis
  beforeAll(async () => {
    redis = await PrivateRedis.start()
  })
  afterAll(() => redis?.down())

  it('each limit follows its policy, requests keep being served, and Redis is used again once it returns', async () => {
    const client = await connect(redis.url)
    const admin = await connect(redis.url)
    const storeErrors: StoreErrorEvent[] = []
    const limit = { limit: 1000, window: 60, store: createRedisLimitStore(client), storeTimeoutMs: 100 }
    const cache = { ttl: 600, store: createRedisCacheStore(client), storeTimeoutMs: 100 }
    const open = gatewayWith({ rateLimit: { ...limit, onStoreError: 'open', insuranceLimit: 500 }, cache })
    const closed = gatewayWith({ rateLimit: { ...limit, onStoreError: 'closed' } })
    for (const gateway of [open, closed]) gateway.events.on('store:error', (e) => storeErrors.push(e))

    expect((await ask(open, 'before')).status).toBe(200)
    expect((await ask(open, 'before')).headers['cf-aig-cache-status']).toBe('HIT')
    expect((await ask(closed, 'before')).status).toBe(200)
    expect(await admin.dbsize()).toBeGreaterThan(0)

    // Stalled: every command waits. The store calls time out and each rule falls back by its policy.
    await admin.call('CLIENT', 'PAUSE', '1500', 'ALL')
    const stalledOpen = await ask(open, 'during pause')
    const stalledClosed = await ask(closed, 'during pause')
    expect(stalledOpen.status).toBe(200)
    expect(stalledOpen.headers['cf-aig-cache-status']).toBe('MISS')
    expect(stalledClosed.status).toBe(503)
    expect(storeErrors.map((e) => `${e.store}:${e.operation}`)).toEqual(
      expect.arrayContaining(['limit:consume', 'cache:get']),
    )
    await new Promise((resolve) => setTimeout(resolve, 1600))

    // Stopped: the client is not ready, every store call fails at once.
    await redis.down()
    await new Promise((resolve) => setTimeout(resolve, 1100))
    for (let i = 0; i < 5; i++) {
      expect((await ask(open, `down ${i}`)).status).toBe(200)
      expect((await ask(closed, `down ${i}`)).status).toBe(503)
    }

    // Back: no restart of the gateway; after the retry pause both rules count in Redis again.
    await redis.up()
    if (client.status !== 'ready') await once(client, 'ready')
    if (admin.status !== 'ready') await once(admin, 'ready')
    await new Promise((resolve) => setTimeout(resolve, 1100))
    expect(await admin.dbsize()).toBe(0)
    expect((await ask(closed, 'after')).status).toBe(200)
    expect((await ask(open, 'after')).headers['cf-aig-cache-status']).toBe('MISS')
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect((await ask(open, 'after')).headers['cf-aig-cache-status']).toBe('HIT')
    expect(await admin.dbsize()).toBeGreaterThan(0)
  }, 30_000)
})
