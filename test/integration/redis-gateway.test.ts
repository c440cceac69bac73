import { once } from 'node:events'
import { mkdirSync, writeFileSync } from 'node:fs'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { StoreErrorEvent } from '../../src/events.js'
import {
  createGateway,
  type Gateway,
  type GatewayOptions,
  type GatewayRequest,
  type GatewayResponse,
  StoreTimeoutError,
} from '../../src/index.js'
import {
  createRedisBreakerStore,
  createRedisCacheStore,
  createRedisLimitStore,
  createRedisRouteStore,
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

    it('serves a dynamic route from the copy read before, and refuses one never read with 503, while the route store is frozen', async () => {
      const prefix = `${uniqueName('frozen-routes')}:`
      const store = createRedisRouteStore(await connect(redis.url), { prefix })
      const definitions = [
        {
          name: 'steady',
          elements: [
            { id: 'start', type: 'start', outputs: { next: { elementId: 'm' } } },
            {
              id: 'm',
              type: 'model',
              properties: { provider: 'openai', model: 'gpt-4o-mini' },
              outputs: { success: { elementId: 'end' } },
            },
            { id: 'end', type: 'end', outputs: {} },
          ],
        },
      ]
      // refreshMs 0: every request asks the store for the live version.
      const served = gatewayWith({ routes: { store, definitions, refreshMs: 0 } })
      const unread = gatewayWith({ routes: { store, refreshMs: 0 } })
      const storeErrors: StoreErrorEvent[] = []
      for (const gateway of [served, unread]) gateway.events.on('store:error', (e) => storeErrors.push(e))
      const route = () =>
        compatRequest({ model: 'dynamic/steady', messages: [{ role: 'user', content: 'hi' }] }, {})
      const before = await served.handle(route())
      await readBody(before!.body)
      expect(before!.status).toBe(200)

      redis.pause()
      let during: (GatewayResponse | undefined)[]
      try {
        during = [await served.handle(route()), await unread.handle(route())]
      } finally {
        redis.resume()
      }
      await readBody(during[0]!.body)
      expect(during[0]!.status).toBe(200)
      expect(during[1]!.status).toBe(503)
      expect(JSON.parse(String(during[1]!.body))).toMatchObject({ internalCode: 2128 })
      expect(storeErrors).toEqual([
        expect.objectContaining({
          store: 'routes',
          operation: 'deployed',
          error: expect.any(StoreTimeoutError),
        }),
        expect.objectContaining({
          store: 'routes',
          operation: 'deployed',
          error: expect.any(StoreTimeoutError),
        }),
      ])
    })
  },
)

/** A compat request for `gateway.handle()`, as a user with these metadata would send it. */
function compatRequest(body: Record<string, unknown>, metadata: Record<string, unknown>): GatewayRequest {
  return {
    method: 'POST',
    path: '/compat/chat/completions',
    search: '',
    headers: { 'content-type': 'application/json', 'cf-aig-metadata': JSON.stringify(metadata) },
    signal: new AbortController().signal,
    body: JSON.stringify(body),
  }
}

describe.skipIf(!REDIS_URL)('spend limits and dynamic routes shared through Redis', () => {
  const LONG_REPLY = 'word '.repeat(200).trim()

  async function instancesWith(
    options: (client: Redis, prefix: string) => GatewayOptions,
  ): Promise<Gateway[]> {
    const prefix = `${uniqueName('gw')}:`
    return Promise.all(
      [0, 1, 2].map(async () => {
        const client = await connect(REDIS_URL!)
        return gatewayWith({
          providers: {
            openai: { apiKey: 'sk-test', baseURL: `${mock.url}/v1` },
            anthropic: { apiKey: 'sk-ant-test', baseURL: mock.url },
          },
          ...options(client, prefix),
        })
      }),
    )
  }

  /** Sends `count` requests at once, spread over the instances; the costs of those answered. */
  async function burst(instances: Gateway[], count: number, body: Record<string, unknown>) {
    const answers = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const gateway = instances[i % instances.length]!
        const response = await gateway.handle(compatRequest(body, { user: 'ann' }))
        await readBody(response!.body)
        return { gateway, status: response!.status, id: response!.headers['cf-aig-log-id'] }
      }),
    )
    const costs: number[] = []
    for (const answer of answers.filter((a) => a.status === 200)) {
      await answer.gateway.flushLogs()
      costs.push((await answer.gateway.logs!.get(answer.id!))!.cost!)
    }
    return { costs, refused: answers.filter((a) => a.status === 429).length }
  }

  it('a per-user daily budget holds across three instances: a burst overshoots by at most what is in flight, and not at all when requests say their output cap', async () => {
    const LIMIT = 0.0005
    const rule = (client: Redis, prefix: string): GatewayOptions => ({
      rateLimit: {
        unit: 'cost',
        limit: LIMIT,
        window: 86_400,
        key: 'metadata.user',
        store: createRedisLimitStore(client, { prefix: `${prefix}limit:` }),
      },
    })
    // Each answer is 200 words, which the estimate cannot know without max_tokens.
    mock.reset()
    for (let i = 0; i < 30; i++) mock.enqueue({ reply: LONG_REPLY })
    const blind = await burst(await instancesWith(rule), 30, {
      model: 'openai/gpt-4o-mini',
      messages: [{ role: 'user', content: 'tell me a long story' }],
    })
    const blindSpent = blind.costs.reduce((sum, cost) => sum + cost, 0)
    const oneAnswer = Math.max(...blind.costs)
    // Every reservation fit, so all 30 went out at once: the overshoot is theirs, bounded by them.
    expect(blindSpent).toBeLessThanOrEqual(LIMIT + blind.costs.length * oneAnswer)

    mock.reset()
    for (let i = 0; i < 30; i++) mock.enqueue({ reply: LONG_REPLY })
    const capped = await burst(await instancesWith(rule), 30, {
      model: 'openai/gpt-4o-mini',
      max_tokens: 256,
      messages: [{ role: 'user', content: 'tell me a long story' }],
    })
    const cappedSpent = capped.costs.reduce((sum, cost) => sum + cost, 0)
    expect(capped.refused).toBeGreaterThan(0)
    expect(cappedSpent).toBeLessThanOrEqual(LIMIT)
    writeResult('spend-overshoot.md', [
      `budget ${LIMIT} USD per user per day, 30 concurrent requests over 3 instances sharing Redis`,
      `without max_tokens: ${blind.costs.length} answered, ${blind.refused} refused, spent ${blindSpent.toFixed(6)} USD (overshoot ${(blindSpent - LIMIT).toFixed(6)}; one answer ${oneAnswer.toFixed(6)})`,
      `with max_tokens 256: ${capped.costs.length} answered, ${capped.refused} refused, spent ${cappedSpent.toFixed(6)} USD (overshoot ${Math.max(0, cappedSpent - LIMIT).toFixed(6)})`,
    ])
  })

  it('a per-user daily policy cap holds across three instances: a burst overshoots by what was in flight, then every instance refuses (2131)', async () => {
    const CAP = 0.0005
    const instances = await instancesWith((client, prefix) => ({
      policies: {
        rules: [
          {
            id: 'daily-per-user',
            actor: '{metadata.user}',
            resource: '*',
            action: { type: 'limit', amount: CAP, period: 'daily', technique: 'named-interval' },
          },
        ],
        store: createRedisLimitStore(client, { prefix: `${prefix}policy:` }),
      },
    }))
    mock.reset()
    for (let i = 0; i < 30; i++) mock.enqueue({ reply: LONG_REPLY })
    const story = {
      model: 'openai/gpt-4o-mini',
      messages: [{ role: 'user', content: 'tell me a long story' }],
    }
    const { costs, refused } = await burst(instances, 30, story)
    // A policy reserves a micro-dollar, not an estimate (as the reference): the whole burst was in flight.
    expect(costs.length + refused).toBe(30)
    const spent = costs.reduce((sum, cost) => sum + cost, 0)
    // Once the answers' costs are settled in Redis, every instance refuses, and says what was spent.
    let probed = 0
    const body = await eventually(async () => {
      const gateway = instances[probed++ % 3]!
      const response = await gateway.handle(compatRequest(story, { user: 'ann' }))
      await readBody(response!.body)
      if (response!.status !== 429) return undefined
      expect(response!.headers['retry-after']).toMatch(/^\d+$/)
      return JSON.parse(String(response!.body)) as { error: { spent: number; limit: number; code: number } }
    })
    expect(body.error).toMatchObject({ code: 2131, limit: CAP })
    expect(body.error.spent).toBeGreaterThanOrEqual(spent - 30e-6)
    for (const gateway of instances) {
      const response = await gateway.handle(compatRequest(story, { user: 'ann' }))
      expect(response!.status).toBe(429)
    }
    // Another user's bucket is untouched.
    const other = await instances[1]!.handle(compatRequest(story, { user: 'bob' }))
    await readBody(other!.body)
    expect(other!.status).toBe(200)
    writeResult('policy-overshoot.md', [
      `policy cap ${CAP} USD per user per day, 30 concurrent requests over 3 instances sharing Redis`,
      `${costs.length} answered, ${refused} refused, spent ${spent.toFixed(6)} USD (overshoot ${(spent - CAP).toFixed(6)}); refused from then on after ${probed - 1} more admitted`,
    ])
  })

  it('three instances serve the route deployed by one of them, and a keyed split sends a user to the same variant on every instance', async () => {
    mock.reset()
    const instances = await instancesWith((client, prefix) => ({
      routes: { store: createRedisRouteStore(client, { prefix: `${prefix}routes:` }), refreshMs: 0 },
    }))
    const to = (elementId: string) => ({ elementId })
    const model = (id: string, provider: string, name: string) => ({
      id,
      type: 'model',
      properties: { provider, model: name },
      outputs: { success: to('end') },
    })
    const saved = await instances[0]!.routes.save({
      name: 'ab',
      elements: [
        { id: 'start', type: 'start', outputs: { next: to('split') } },
        {
          id: 'split',
          type: 'percentage',
          properties: { key: 'metadata.user' },
          outputs: { '50%': to('a'), else: to('b') },
        },
        model('a', 'openai', 'gpt-4o'),
        model('b', 'anthropic', 'claude-haiku-4-5'),
        { id: 'end', type: 'end', outputs: {} },
      ],
    })
    await instances[0]!.routes.deploy('ab', saved.version)
    for (let user = 0; user < 10; user++) {
      const seen = new Set<string>()
      for (const gateway of instances) {
        const response = await gateway.handle(
          compatRequest(
            { model: 'dynamic/ab', messages: [{ role: 'user', content: 'hi' }] },
            { user: `u${user}` },
          ),
        )
        await readBody(response!.body)
        expect(response!.status).toBe(200)
        seen.add(response!.headers['cf-aig-provider']!)
      }
      expect(seen.size).toBe(1)
    }
  })
})

async function readBody(body: unknown): Promise<void> {
  if (body !== null && typeof body === 'object' && Symbol.asyncIterator in body) {
    for await (const _ of body as AsyncIterable<unknown>);
  }
}

function writeResult(file: string, lines: string[]): void {
  mkdirSync('test-results', { recursive: true })
  writeFileSync(`test-results/${file}`, `${lines.join('\n')}\n`)
}
