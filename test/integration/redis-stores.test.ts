import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis, type RedisOptions } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedisBreakerStore } from '../../src/redis/breaker-store.js'
import { createRedisCacheStore } from '../../src/redis/cache-store.js'
import { createRedisLimitStore } from '../../src/redis/limit-store.js'
import { callStore, StoreTimeoutError } from '../../src/stores/call.js'
import type {
  BreakerPolicy,
  BreakerState,
  BreakerStore,
  CacheEntry,
  LimitDecision,
  LimitWindow,
} from '../../src/stores/types.js'
import {
  breakerStoreConformance,
  cacheStoreConformance,
  limitStoreConformance,
} from '../../src/testing/conformance.js'
import { PrivateRedis } from '../helpers/private-redis.js'
import { REDIS_URL, uniqueName } from '../helpers/services.js'

const opened: Redis[] = []

/** A connected client, quit after the file. The stores refuse to queue, so they need one that is ready. */
async function connect(options: RedisOptions = {}, url = REDIS_URL!): Promise<Redis> {
  const client = new Redis(url, { lazyConnect: true, ...options })
  opened.push(client)
  await client.connect()
  return client
}

async function untilReady(client: Redis): Promise<void> {
  if (client.status !== 'ready') await once(client, 'ready')
}

/** Every key under `prefix`, by SCAN (never KEYS, which blocks a shared server). */
async function keysUnder(client: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
    keys.push(...batch)
    cursor = next
  } while (cursor !== '0')
  return keys
}

/**
 * Checks a breaker through `stores` (10 calls at once, spread over them) until a round has an answer other
 * than `open`, pausing for the shortest `retryInMs` between rounds: the breaker's open period is measured
 * by the server's clock, so only a changed answer says it has ended. Bounded, so a breaker that never
 * half-opens fails the test rather than hanging it.
 */
async function checkUntilHalfOpen(
  stores: BreakerStore[],
  key: string,
  policy: BreakerPolicy,
): Promise<BreakerState[]> {
  for (let round = 0; round < 40; round++) {
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, index) => stores[index % stores.length]!.check(key, policy, Date.now())),
    )
    const waits = answers.map((answer) => (answer.state === 'open' ? answer.retryInMs : 0))
    if (waits.includes(0)) return answers
    await sleep(Math.min(250, Math.min(...waits) + 1))
  }
  throw new Error(`breaker ${key} never half-opened`)
}

const entry: CacheEntry = {
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: new TextEncoder().encode('{"ok":true}'),
  storedAt: 1_700_000_000_000,
}

describe.skipIf(!REDIS_URL)('redis stores', () => {
  let client: Redis
  let admin: Redis

  beforeAll(async () => {
    client = await connect()
    admin = await connect()
  })

  afterAll(async () => {
    await Promise.allSettled(opened.map((each) => (each.status === 'end' ? undefined : each.quit())))
  })

  cacheStoreConformance('redis cache store', () =>
    createRedisCacheStore(client, { prefix: `${uniqueName('aigw_cache')}:` }),
  )
  limitStoreConformance('redis limit store', () =>
    createRedisLimitStore(client, { prefix: `${uniqueName('aigw_limit')}:` }),
  )

  // Breaker keys expire on their own within minutes; the suite's are removed once it has run all the same.
  const breakerPrefixes: string[] = []
  breakerStoreConformance(
    'redis breaker store',
    () => {
      const prefix = `${uniqueName('aigw_breaker')}:`
      breakerPrefixes.push(prefix)
      return createRedisBreakerStore(client, { prefix })
    },
    {
      afterAll: async () => {
        for (const prefix of breakerPrefixes) {
          const keys = await keysUnder(admin, prefix)
          if (keys.length > 0) await admin.del(...keys)
        }
      },
    },
  )

  describe('redis breaker store', () => {
    const policy: BreakerPolicy = { failures: 3, windowMs: 60_000, openMs: 60_000, probeMs: 30_000 }
    const prefixes: string[] = []
    const prefixed = (label: string) => {
      const prefix = `${uniqueName(label)}:`
      prefixes.push(prefix)
      return prefix
    }

    afterAll(async () => {
      for (const prefix of prefixes) {
        const keys = await keysUnder(admin, prefix)
        if (keys.length > 0) await admin.del(...keys)
      }
    })

    it('hands exactly one probe to two instances racing on a half-open breaker', async () => {
      const prefix = prefixed('aigw_breaker_race')
      const [one, two] = await Promise.all([connect(), connect()])
      const stores = [createRedisBreakerStore(one!, { prefix }), createRedisBreakerStore(two!, { prefix })]
      // A provider's short Retry-After opens it briefly; the half-open breaker is then checked by both.
      expect((await stores[0]!.failure('shared', policy, Date.now(), 5)).state).toBe('open')
      const answers = await checkUntilHalfOpen(stores, 'shared', policy)
      expect(answers.filter((answer) => answer.state === 'probe')).toHaveLength(1)
      expect(answers.filter((answer) => answer.state === 'open')).toHaveLength(9)
      // The probe's lease holds for both instances.
      for (const store of stores) expect((await store.check('shared', policy, Date.now())).state).toBe('open')
      await stores[1]!.success('shared', policy, Date.now())
      expect(await stores[0]!.check('shared', policy, Date.now())).toEqual({
        state: 'closed',
        failing: false,
      })
    })

    it('measures time by the server clock, whatever now the caller passes', async () => {
      const prefix = prefixed('aigw_breaker_clock')
      const store = createRedisBreakerStore(client, { prefix })
      const hourAgo = Date.now() - 3_600_000
      for (let i = 0; i < 3; i++) await store.failure('k', policy, hourAgo)
      const state = await store.check('k', policy, Date.now() + 3_600_000)
      expect(state.state).toBe('open')
      expect((state as { retryInMs: number }).retryInMs).toBeGreaterThan(30_000)
    })

    it('writes only keys that expire: one hash per breaker, kept no longer than its state needs', async () => {
      const prefix = prefixed('aigw_breaker_keys')
      const store = createRedisBreakerStore(client, { prefix })
      const now = Date.now()
      await store.failure('counting', policy, now)
      for (let i = 0; i < 3; i++) await store.failure('open', policy, now)
      await store.failure('retry-after', policy, now, 120_000)
      await store.failure('probing', policy, now, 5)
      expect((await checkUntilHalfOpen([store], 'probing', policy)).map((answer) => answer.state)).toContain(
        'probe',
      )
      await store.failure('closed-again', policy, now)
      await store.success('closed-again', policy, now)
      await store.check('never-failed', policy, now)
      await store.success('never-failed', policy, now)

      const keys = (await keysUnder(admin, prefix)).sort()
      expect(keys).toEqual(['counting', 'open', 'probing', 'retry-after'].map((key) => prefix + key))
      // Counted failures live as long as their window; a tripped breaker max(openMs, probeMs) past the end of
      // its open period (or, once probed, of its probe's lease).
      const longest: Record<string, number> = {
        counting: policy.windowMs,
        open: policy.openMs + 60_000,
        'retry-after': 120_000 + 60_000,
        probing: 5 + policy.probeMs + 60_000,
      }
      for (const key of keys) {
        const ttl = await admin.pttl(key)
        expect(ttl, key).toBeGreaterThan(0)
        expect(ttl, key).toBeLessThanOrEqual(longest[key.slice(prefix.length)]!)
      }
      expect(await admin.type(`${prefix}open`)).toBe('hash')
    })
  })

  for (const technique of ['fixed', 'sliding'] as const) {
    it(`admits exactly the limit across three connections (${technique}, 60 against 25)`, async () => {
      const prefix = `${uniqueName('aigw_limit_shared')}:`
      const stores = await Promise.all([connect(), connect(), connect()]).then((clients) =>
        clients.map((each) => createRedisLimitStore(each, { prefix })),
      )
      const window: LimitWindow = { limit: 25, windowMs: 60_000, technique }
      const now = Date.now()
      const decisions = await Promise.all(
        Array.from({ length: 60 }, (_, index) => stores[index % 3]!.consume('shared', 1, window, now)),
      )
      expect(decisions.filter((decision) => decision.allowed)).toHaveLength(25)
    })
  }

  it('reads through one client an entry written through another', async () => {
    const prefix = `${uniqueName('aigw_cache_shared')}:`
    const other = await connect()
    await createRedisCacheStore(client, { prefix }).set('k', entry, 60)
    const found = await createRedisCacheStore(other, { prefix }).get('k')
    expect(found).toEqual({ ...entry, body: expect.any(Uint8Array) })
    expect(new TextDecoder().decode(found!.body)).toBe('{"ok":true}')
  })

  it('reads a malformed stored value as a miss', async () => {
    const prefix = `${uniqueName('aigw_cache_bad')}:`
    const store = createRedisCacheStore(client, { prefix })
    const head = (json: string) => {
      const bytes = Buffer.from(json)
      const length = Buffer.alloc(4)
      length.writeUInt32BE(bytes.byteLength)
      return Buffer.concat([length, bytes, Buffer.from('body')])
    }
    const values = {
      short: Buffer.from([0, 0]),
      overlong: Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7b, 0x7d]),
      notJson: head('{nope'),
      wrongVersion: head('{"v":99,"status":200,"headers":{},"storedAt":1}'),
      badHeaders: head('{"v":1,"status":200,"headers":{"a":1},"storedAt":1}'),
      plainText: Buffer.from('hello world, this is not an entry'),
    }
    for (const [key, value] of Object.entries(values)) await client.set(prefix + key, value)
    for (const key of Object.keys(values)) expect(await store.get(key), key).toBeUndefined()
  })

  it('writes keys that expire: a counter per fixed window, a log and its sum per sliding key', async () => {
    const prefix = `${uniqueName('aigw_limit_keys')}:`
    const store = createRedisLimitStore(client, { prefix })
    const now = Date.UTC(2025, 0, 15, 12, 0, 15)
    await store.consume('k', 1, { limit: 5, windowMs: 60_000, technique: 'fixed' }, now)
    await store.consume('k', 1, { limit: 5, windowMs: 60_000, technique: 'sliding' }, now)
    const bucket = Math.floor(now / 60_000)
    expect(await client.get(`${prefix}k:${bucket}`)).toBe('1')
    expect(await client.zcard(`${prefix}{k}:log`)).toBe(1)
    expect(await client.get(`${prefix}{k}:sum`)).toBe('1')
    for (const key of [`${prefix}k:${bucket}`, `${prefix}{k}:log`, `${prefix}{k}:sum`]) {
      const ttl = await client.pttl(key)
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(70_000)
    }
  })

  it('leaves no key behind for a count given back in full', async () => {
    const prefix = `${uniqueName('aigw_limit_given_back')}:`
    const store = createRedisLimitStore(client, { prefix })
    const now = Date.now()
    for (const technique of ['fixed', 'sliding'] as const) {
      const window: LimitWindow = { limit: 5, windowMs: 60_000, technique }
      const decision = await store.consume('k', 2, window, now)
      await store.adjust('k', decision.reservation!, -2, window, now)
    }
    expect(await keysUnder(admin, prefix)).toEqual([])
  })

  it('keeps in a sliding log only the admissions that still count', async () => {
    const prefix = `${uniqueName('aigw_limit_log')}:`
    const store = createRedisLimitStore(client, { prefix })
    const window: LimitWindow = { limit: 5, windowMs: 60_000, technique: 'sliding' }
    const now = Date.now()
    const decisions: LimitDecision[] = []
    for (let i = 0; i < 3; i++) decisions.push(await store.consume('k', 1, window, now))
    for (const decision of decisions.slice(1)) await store.adjust('k', decision.reservation!, -1, window, now)
    expect(await client.zcard(`${prefix}{k}:log`)).toBe(1)
    expect(await client.get(`${prefix}{k}:sum`)).toBe('1')
  })

  describe('outages', () => {
    const window: LimitWindow = { limit: 100, windowMs: 60_000, technique: 'sliding' }
    const fragile = () =>
      connect({ enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: () => 300 })

    it('fails at once while a killed connection reconnects, then works again', async () => {
      const victim = await fragile()
      const prefix = `${uniqueName('aigw_outage_kill')}:`
      const limits = createRedisLimitStore(victim, { prefix })
      const cache = createRedisCacheStore(victim, { prefix })
      const id = await victim.client('ID')
      const closed = once(victim, 'close')
      await admin.client('KILL', 'ID', String(id))
      await closed
      await expect(limits.consume('k', 1, window, Date.now())).rejects.toThrow(/not ready/)
      await expect(cache.get('k')).rejects.toThrow(/not ready/)
      await expect(cache.set('k', entry, 60)).rejects.toThrow(/not ready/)
      await untilReady(victim)
      expect((await limits.consume('k', 1, window, Date.now())).allowed).toBe(true)
      await cache.set('k', entry, 60)
      expect(await cache.get('k')).toBeDefined()
    })

    it('fails at once after disconnect() and works again after connect()', async () => {
      const victim = await fragile()
      const prefix = `${uniqueName('aigw_outage_disconnect')}:`
      const limits = createRedisLimitStore(victim, { prefix })
      const cache = createRedisCacheStore(victim, { prefix })
      const breakers = createRedisBreakerStore(victim, { prefix })
      const policy: BreakerPolicy = { failures: 1, windowMs: 1000, openMs: 1000, probeMs: 1000 }
      const ended = once(victim, 'end')
      victim.disconnect()
      await ended
      await expect(breakers.check('k', policy, Date.now())).rejects.toThrow(/not ready/)
      await expect(breakers.failure('k', policy, Date.now())).rejects.toThrow(/not ready/)
      await expect(breakers.success('k', policy, Date.now())).rejects.toThrow(/not ready/)
      await expect(limits.consume('k', 1, window, Date.now())).rejects.toThrow(/not ready/)
      await expect(limits.adjust('k', 'r', 1, window, Date.now())).rejects.toThrow(/not ready/)
      await expect(cache.delete('k')).rejects.toThrow(/not ready/)
      await victim.connect()
      expect((await limits.consume('k', 1, window, Date.now())).allowed).toBe(true)
      expect((await breakers.failure('k', policy, Date.now())).state).toBe('open')
    })
  })
})

describe.skipIf(!REDIS_URL)('redis stores and their deadlines: a private Redis frozen with SIGSTOP', () => {
  let redis: PrivateRedis
  beforeAll(async () => {
    redis = await PrivateRedis.start()
  })
  afterAll(async () => {
    redis?.resume()
    await redis?.down()
  })

  const store = async () => {
    const client = await connect({ enableOfflineQueue: false, maxRetriesPerRequest: 1 }, redis.url)
    return { client, limits: createRedisLimitStore(client, { prefix: `${uniqueName('aigw_deadline')}:` }) }
  }

  /**
   * Freezes Redis, makes `call` with a deadline of `timeoutMs`, waits until its caller (bounded the way the
   * gateway bounds it) has given up, thaws Redis and returns the call's own outcome once Redis ran it.
   */
  async function frozenCall<T>(
    client: Redis,
    timeoutMs: number,
    call: (options: { timeoutMs: number }) => Promise<T>,
  ): Promise<PromiseSettledResult<T>> {
    redis.pause()
    let pending: Promise<T>
    try {
      pending = call({ timeoutMs })
      pending.catch(() => {})
      await expect(callStore(() => pending, timeoutMs)).rejects.toThrow(StoreTimeoutError)
    } finally {
      redis.resume()
    }
    // Replies on one connection come in order: once this one is back, the frozen call has been run.
    await client.ping()
    const [outcome] = await Promise.allSettled([pending])
    return outcome!
  }

  it('leaves a call without a deadline pending while the server is frozen, so the caller must bound it', async () => {
    const client = await connect({}, redis.url)
    const prefix = `${uniqueName('aigw_outage_pause')}:`
    const limits = createRedisLimitStore(client, { prefix })
    const cache = createRedisCacheStore(client, { prefix })
    const window: LimitWindow = { limit: 100, windowMs: 60_000, technique: 'sliding' }
    // Frozen until resume() below, however long this takes: only a deadline of the stores' own (there must
    // be none) could settle the calls meanwhile, and the sleep is just how long they are given to do so.
    redis.pause()
    let settled = 0
    let consumed: Promise<LimitDecision>
    let read: Promise<CacheEntry | undefined>
    try {
      consumed = Promise.resolve(limits.consume('k', 1, window, Date.now())).finally(() => settled++)
      read = Promise.resolve(cache.get('k')).finally(() => settled++)
      await sleep(300)
      expect(settled).toBe(0)
    } finally {
      redis.resume()
    }
    expect((await consumed).allowed).toBe(true)
    expect(await read).toBeUndefined()
  })

  for (const technique of ['fixed', 'sliding'] as const) {
    const window: LimitWindow = { limit: 100, windowMs: 60_000, technique }

    it(`a consume that reaches Redis after its deadline changes nothing and rejects (${technique})`, async () => {
      const { client, limits } = await store()
      const now = Date.now()
      expect(await limits.consume('k', 1, window, now, { timeoutMs: 5000 })).toMatchObject({ remaining: 99 })
      const late = await frozenCall(client, 200, (call) =>
        Promise.resolve(limits.consume('k', 1, window, now, call)),
      )
      expect(late.status).toBe('rejected')
      expect((late as PromiseRejectedResult).reason).toBeInstanceOf(StoreTimeoutError)
      expect((late as PromiseRejectedResult).reason.message).toMatch(/after it and changed nothing/)
      expect(await limits.consume('k', 1, window, now)).toMatchObject({ allowed: true, remaining: 98 })
    })

    it(`an adjust that reaches Redis after its deadline changes nothing (${technique})`, async () => {
      const { client, limits } = await store()
      const now = Date.now()
      const taken = await limits.consume('k', 10, window, now, { timeoutMs: 5000 })
      const late = await frozenCall(client, 200, (call) =>
        Promise.resolve(limits.adjust('k', taken.reservation!, -10, window, now, call)),
      )
      expect(late.status).toBe('rejected')
      expect(await limits.consume('k', 1, window, now)).toMatchObject({ allowed: true, remaining: 89 })
    })

    it(`a store's first call reads the server's clock first, and is not sent once its caller gave up (${technique})`, async () => {
      const { client, limits } = await store()
      const now = Date.now()
      const late = await frozenCall(client, 200, (call) =>
        Promise.resolve(limits.consume('k', 1, window, now, call)),
      )
      expect(late.status).toBe('rejected')
      expect((late as PromiseRejectedResult).reason).toBeInstanceOf(StoreTimeoutError)
      expect(await limits.consume('k', 1, window, now)).toMatchObject({ allowed: true, remaining: 99 })
    })
  }
})
