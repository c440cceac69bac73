import { once } from 'node:events'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { StoreErrorEvent } from '../../src/events.js'
import { createGateway, type Gateway, type GatewayOptions } from '../../src/index.js'
import {
  createRedisBreakerStore,
  createRedisCacheStore,
  createRedisLimitStore,
} from '../../src/redis/index.js'
import { createMockProvider, type MockProvider } from '../../src/testing/index.js'
import { PrivateRedis } from '../helpers/private-redis.js'
import { chatRequest } from '../helpers/requests.js'
import { REDIS_URL, uniqueName } from '../helpers/services.js'
import { eventually } from '../helpers/until.js'

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

async function ask(gateway: Gateway, text: string) {
  const response = await gateway.handle(chatRequest(text))
  return { status: response!.status, headers: response!.headers }
}

describe.skipIf(!REDIS_URL)('gateways sharing one Redis', () => {
  it('three instances, each with its own connection: a limit of 20 admits exactly 20, and a cache entry written by one is a hit in the others', async () => {
    mock.reset()
    const prefix = `${uniqueName('gw')}:`
    const cachePrefix = `${prefix}cache:`
    const admin = await connect(REDIS_URL!)
    const instances = await Promise.all(
      [0, 1, 2].map(async () => {
        const client = await connect(REDIS_URL!)
        return gatewayWith({
          rateLimit: {
            limit: 20,
            window: 60,
            technique: 'sliding',
            store: createRedisLimitStore(client, { prefix: `${prefix}limit:` }),
          },
          cache: { ttl: 600, store: createRedisCacheStore(client, { prefix: cachePrefix }) },
        })
      }),
    )
    const answers = await Promise.all(
      Array.from({ length: 60 }, (_, i) => ask(instances[i % 3]!, `load ${i}`)),
    )
    expect(answers.filter((a) => a.status === 200)).toHaveLength(20)
    expect(answers.filter((a) => a.status === 429)).toHaveLength(40)
    expect(mock.calls).toHaveLength(20)

    // Every admitted answer is written to Redis by the instance that served it, once its response is out:
    // wait until Redis holds all 20, then the other two instances find each of them.
    const entries = await eventually(async () => {
      const keys = await admin.keys(`${cachePrefix}*`)
      return keys.length >= 20 ? keys : undefined
    })
    expect(entries).toHaveLength(20)
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

describe.skipIf(!REDIS_URL)('circuit breakers shared through Redis', () => {
  /** Three instances, each with its own connection, sharing breakers under one prefix. */
  async function threeInstances(openMs: number): Promise<{ instances: Gateway[]; prefix: string }> {
    const prefix = `${uniqueName('gw')}:breaker:`
    const instances = await Promise.all(
      [0, 1, 2].map(async () => {
        const client = await connect(REDIS_URL!)
        return gatewayWith({
          providers: {
            openai: { apiKey: 'sk-test', baseURL: `${mock.url}/v1` },
            anthropic: { apiKey: 'sk-ant-test', baseURL: mock.url },
          },
          breaker: {
            failures: 2,
            openMs,
            probeMs: 10_000,
            store: createRedisBreakerStore(client, { prefix }),
          },
        })
      }),
    )
    return { instances, prefix }
  }

  /** A compat request with a fallback; resolves with the provider that answered. */
  async function answeredBy(gateway: Gateway, text: string): Promise<string | undefined> {
    const response = await gateway.handle({
      method: 'POST',
      path: '/compat/chat/completions',
      search: '',
      headers: { 'content-type': 'application/json' },
      signal: new AbortController().signal,
      body: JSON.stringify({
        model: 'openai/gpt-4o-mini',
        models: ['anthropic/claude-haiku-4-5'],
        messages: [{ role: 'user', content: text }],
      }),
    })
    return response?.headers['cf-aig-provider']
  }

  const primaryCalls = () => mock.calls.filter((call) => call.path === '/v1/chat/completions').length

  it('three instances: failures seen by two open the breaker for the third too', async () => {
    mock.reset()
    const { instances } = await threeInstances(60_000)
    const skipped: number[] = []
    for (const [i, gateway] of instances.entries()) {
      gateway.events.on('upstream:retry', (event) => {
        if (event.action === 'skip') skipped.push(i)
      })
    }
    // Instances 0 and 1 each see the primary fail once: two failures in the shared window open it.
    mock.enqueue({ status: 503 }, {})
    expect(await answeredBy(instances[0]!, 'a')).toBe('anthropic')
    mock.enqueue({ status: 503 }, {})
    expect(await answeredBy(instances[1]!, 'b')).toBe('anthropic')
    // Instance 2 never saw a failure, and skips the primary all the same.
    expect(await answeredBy(instances[2]!, 'c')).toBe('anthropic')
    expect(primaryCalls()).toBe(2)
    expect(skipped).toEqual([2])
  })

  it('three instances: once the open time is over one probe tests the target, and its success closes it for all', async () => {
    mock.reset()
    const { instances, prefix } = await threeInstances(200)
    const admin = await connect(REDIS_URL!)
    mock.enqueue({ status: 503 }, {}, { status: 503 }, {})
    await answeredBy(instances[0]!, 'a')
    await answeredBy(instances[0]!, 'b')
    // Open for 200 ms of Redis's clock: asked until the probe goes through to the recovered primary.
    await eventually(async () => ((await answeredBy(instances[1]!, 'probe')) === 'openai' ? true : undefined))
    // The probe's success is reported without holding up its answer: once it reached Redis, the breaker is
    // gone, and every instance calls the primary again.
    await eventually(async () => ((await admin.keys(`${prefix}*`)).length === 0 ? true : undefined))
    for (const gateway of instances) expect(await answeredBy(gateway, 'closed')).toBe('openai')
  })
})

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
    // The gateways' clock, moved on by hand past the pause a rule keeps after its store failed.
    let clock = Date.now()
    const now = () => clock
    // Long enough that a healthy Redis on a busy machine always answers in time (the limits' default);
    // while Redis is frozen below, this is the only clock that decides.
    const storeTimeoutMs = 1000
    const limit = { limit: 1000, window: 60, store: createRedisLimitStore(client), storeTimeoutMs }
    const cache = { ttl: 600, store: createRedisCacheStore(client), storeTimeoutMs }
    const open = gatewayWith({
      rateLimit: { ...limit, onStoreError: 'open', insuranceLimit: 500 },
      cache,
      now,
    })
    const closed = gatewayWith({ rateLimit: { ...limit, onStoreError: 'closed' }, now })
    for (const gateway of [open, closed]) gateway.events.on('store:error', (e) => storeErrors.push(e))

    expect((await ask(open, 'before')).status).toBe(200)
    expect((await ask(open, 'before')).headers['cf-aig-cache-status']).toBe('HIT')
    expect((await ask(closed, 'before')).status).toBe(200)
    expect(await admin.dbsize()).toBeGreaterThan(0)

    // Stalled: frozen (SIGSTOP) until resumed below, however long the requests take, so every command
    // waits. The store calls time out and each rule falls back by its policy.
    redis.pause()
    let stalledOpen: Awaited<ReturnType<typeof ask>>
    let stalledClosed: Awaited<ReturnType<typeof ask>>
    try {
      stalledOpen = await ask(open, 'during pause')
      stalledClosed = await ask(closed, 'during pause')
    } finally {
      redis.resume()
    }
    expect(stalledOpen.status).toBe(200)
    expect(stalledOpen.headers['cf-aig-cache-status']).toBe('MISS')
    expect(stalledClosed.status).toBe(503)
    expect(storeErrors.map((e) => `${e.store}:${e.operation}`)).toEqual(
      expect.arrayContaining(['limit:consume', 'cache:get']),
    )
    // Replies on one connection come in order: once this one is back, Redis has run every stalled command.
    await client.ping()

    // Stopped: the client is not ready, every store call fails at once.
    await redis.down()
    clock += 1100
    for (let i = 0; i < 5; i++) {
      expect((await ask(open, `down ${i}`)).status).toBe(200)
      expect((await ask(closed, `down ${i}`)).status).toBe(503)
    }

    // Back: no restart of the gateway; after the retry pause both rules count in Redis again.
    await redis.up()
    if (client.status !== 'ready') await once(client, 'ready')
    if (admin.status !== 'ready') await once(admin, 'ready')
    clock += 1100
    expect(await admin.dbsize()).toBe(0)
    expect((await ask(closed, 'after')).status).toBe(200)
    expect((await ask(open, 'after')).headers['cf-aig-cache-status']).toBe('MISS')
    // The answer is written to Redis after the response: wait until it is there.
    await eventually(async () => ((await admin.keys('aigw:cache:*')).length > 0 ? true : undefined))
    expect((await ask(open, 'after')).headers['cf-aig-cache-status']).toBe('HIT')
    expect(await admin.dbsize()).toBeGreaterThan(0)
  }, 30_000)
})

/** What Redis holds for a rule's one counter: the sum of the fixed counters, or the sliding log's size. */
async function counted(admin: Redis, prefix: string, technique: 'fixed' | 'sliding'): Promise<number> {
  const keys = await admin.keys(`${prefix}*`)
  if (technique === 'fixed') {
    const values = keys.length === 0 ? [] : await admin.mget(...keys)
    return values.reduce((sum, value) => sum + Number(value), 0)
  }
  const log = keys.find((key) => key.endsWith(':log'))
  const sum = keys.find((key) => key.endsWith(':sum'))
  if (log === undefined || sum === undefined) return 0
  const entries = await admin.zcard(log)
  expect(Number(await admin.get(sum))).toBe(entries)
  return entries
}

describe.skipIf(!REDIS_URL)(
  'a Redis frozen (SIGSTOP) while requests wait on it, default rule options',
  () => {
    let redis: PrivateRedis
    beforeAll(async () => {
      redis = await PrivateRedis.start()
    })
    afterAll(async () => {
      redis?.resume()
      await redis?.down()
    })

    for (const technique of ['sliding', 'fixed'] as const) {
      it(`decides by the insurance limit meanwhile, and no count lands late once it resumes (${technique})`, async () => {
        const prefix = `${uniqueName('frozen')}:`
        const client = await connect(redis.url)
        const admin = await connect(redis.url)
        // One instant for every request: a fixed window (Redis's or the insurance limit's) cannot end
        // between them, however long they take.
        const instant = Date.now()
        const gateway = gatewayWith({
          rateLimit: { limit: 60, window: 60, technique, store: createRedisLimitStore(client, { prefix }) },
          now: () => instant,
        })
        const storeErrors: StoreErrorEvent[] = []
        gateway.events.on('store:error', (e) => storeErrors.push(e))

        for (let i = 0; i < 5; i++) expect((await ask(gateway, `before ${i}`)).status).toBe(200)
        expect(await counted(admin, prefix, technique)).toBe(5)

        // Frozen: the connection stays open, so the commands of these requests are written to it and wait
        // there. Each request is decided by the fallback once its store call times out.
        redis.pause()
        let during: Awaited<ReturnType<typeof ask>>[]
        try {
          during = await Promise.all(Array.from({ length: 8 }, (_, i) => ask(gateway, `frozen ${i}`)))
        } finally {
          redis.resume()
        }
        // The default insurance limit is ceil(60 / 10) = 6 per window for this instance.
        expect(during.filter((a) => a.status === 200)).toHaveLength(6)
        expect(during.filter((a) => a.status === 429)).toHaveLength(2)
        expect(storeErrors.length).toBeGreaterThan(0)
        for (const e of storeErrors) expect(e).toMatchObject({ store: 'limit', operation: 'consume' })

        // Replies on one connection come in order: once this one is back, every command the frozen requests
        // wrote before it has been run by Redis. Each found its deadline passed and changed nothing.
        await client.ping()
        expect(await counted(admin, prefix, technique)).toBe(5)
      })
    }
  },
)
