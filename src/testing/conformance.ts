import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, describe, expect, it } from 'vitest'
import type {
  BreakerPolicy,
  BreakerState,
  BreakerStore,
  CacheEntry,
  CacheStore,
  LimitStore,
  LimitWindow,
  MaybePromise,
} from '../stores/types.js'

/** Optional hooks for a conformance suite. */
export interface ConformanceHooks {
  /** Runs once after the suite's tests, e.g. to quit the clients the stores use. */
  afterAll?: () => MaybePromise<void>
}

/** Hooks for the cache suite. */
export interface CacheConformanceHooks extends ConformanceHooks {
  /**
   * How long past a 1-second TTL to wait before expecting the entry gone. Default 100 ms; raise it for a
   * store whose expiry is coarser than that.
   */
  expiryGraceMs?: number
}

/** A fixed instant (Wednesday 15 January 2025, 12:00:00.000 UTC) so time-based cases never sleep. */
const NOON = Date.UTC(2025, 0, 15, 12, 0, 0)
const MINUTE = 60_000

/** A key no other test (or earlier run against a shared store) uses. */
function freshKey(label: string): string {
  return `${label}-${randomBytes(6).toString('hex')}`
}

function sampleEntry(body: Uint8Array, status = 200): CacheEntry {
  return {
    status,
    headers: { 'content-type': 'text/event-stream', 'cf-aig-cache-status': 'HIT', 'x-custom': 'a, b; c="d"' },
    body,
    storedAt: NOON,
  }
}

/**
 * Registers a vitest `describe` block with the tests every `CacheStore` must pass. Call it at the top level
 * of a test file run by vitest (the suite imports `describe`/`it`/`expect` from 'vitest'). `makeStore` runs
 * once per test; keys are random, so stores sharing state between calls are fine. The expiry test waits
 * about a second.
 *
 * @example
 * // test/my-cache.test.ts
 * import { cacheStoreConformance } from 'ai-gateway-middleware/testing/conformance'
 * cacheStoreConformance('my cache', () => createMyCacheStore(client), { afterAll: () => client.quit() })
 */
export function cacheStoreConformance(
  name: string,
  makeStore: () => MaybePromise<CacheStore>,
  hooks: CacheConformanceHooks = {},
): void {
  describe(`${name}: CacheStore conformance`, () => {
    if (hooks.afterAll !== undefined) afterAll(hooks.afterAll)

    it('answers undefined for a key never set', async () => {
      const store = await makeStore()
      expect(await store.get(freshKey('missing'))).toBeUndefined()
    })

    it('round-trips status, headers, storedAt and a binary body byte for byte', async () => {
      const store = await makeStore()
      const key = freshKey('binary')
      // Bytes that are not valid UTF-8 (a lone continuation byte, an overlong form, 0xff) and a NUL.
      const body = new Uint8Array([
        0x64, 0x61, 0x74, 0x61, 0x3a, 0x00, 0xff, 0xfe, 0x80, 0xc0, 0xaf, 0xc3, 0x28, 0x0a,
      ])
      const entry = sampleEntry(body, 203)
      await store.set(key, entry, 60)
      const found = await store.get(key)
      expect(found).toBeDefined()
      expect(found!.status).toBe(203)
      expect(found!.headers).toEqual(entry.headers)
      expect(found!.storedAt).toBe(NOON)
      expect(found!.body).toBeInstanceOf(Uint8Array)
      expect([...found!.body]).toEqual([...body])
    })

    it('round-trips an empty body and a large one', async () => {
      const store = await makeStore()
      const emptyKey = freshKey('empty')
      const largeKey = freshKey('large')
      const large = new Uint8Array(randomBytes(512 * 1024))
      await store.set(emptyKey, sampleEntry(new Uint8Array(0)), 60)
      await store.set(largeKey, sampleEntry(large), 60)
      expect((await store.get(emptyKey))?.body.byteLength).toBe(0)
      const found = await store.get(largeKey)
      expect(found?.body.byteLength).toBe(large.byteLength)
      expect(Buffer.compare(Buffer.from(found!.body), Buffer.from(large))).toBe(0)
    })

    it('replaces an existing entry', async () => {
      const store = await makeStore()
      const key = freshKey('replace')
      await store.set(key, sampleEntry(new TextEncoder().encode('first'), 200), 60)
      await store.set(
        key,
        { ...sampleEntry(new TextEncoder().encode('second'), 201), headers: { a: '1' } },
        60,
      )
      const found = await store.get(key)
      expect(found?.status).toBe(201)
      expect(found?.headers).toEqual({ a: '1' })
      expect(new TextDecoder().decode(found!.body)).toBe('second')
    })

    it('deletes an entry, and deleting a missing key is harmless', async () => {
      const store = await makeStore()
      const key = freshKey('delete')
      await store.set(key, sampleEntry(new Uint8Array([1, 2, 3])), 60)
      await store.delete(key)
      expect(await store.get(key)).toBeUndefined()
      await store.delete(freshKey('never-set'))
    })

    it('keeps keys apart, including keys that share a prefix', async () => {
      const store = await makeStore()
      const key = freshKey('isolated')
      await store.set(key, sampleEntry(new Uint8Array([1])), 60)
      await store.set(`${key}0`, sampleEntry(new Uint8Array([2])), 60)
      expect([...(await store.get(key))!.body]).toEqual([1])
      expect([...(await store.get(`${key}0`))!.body]).toEqual([2])
      await store.delete(key)
      expect(await store.get(key)).toBeUndefined()
      expect([...(await store.get(`${key}0`))!.body]).toEqual([2])
    })

    it('expires an entry after its TTL (in seconds) and keeps one with a longer TTL', async () => {
      const store = await makeStore()
      const shortKey = freshKey('ttl-short')
      const longKey = freshKey('ttl-long')
      // Whether the short entry is there right after its set is not asked: on a busy machine its second
      // may be gone by then. The long one, set with it, says the store keeps what it is given.
      await store.set(shortKey, sampleEntry(new Uint8Array([1])), 1)
      await store.set(longKey, sampleEntry(new Uint8Array([2])), 60)
      await sleep(1000 + (hooks.expiryGraceMs ?? 100))
      expect(await store.get(shortKey)).toBeUndefined()
      expect(await store.get(longKey)).toBeDefined()
    })
  })
}

/**
 * Registers a vitest `describe` block with the tests every `LimitStore` must pass, for both `fixed` and
 * `sliding` windows: exact admission under concurrency, refusals that take nothing, token amounts,
 * `adjust` (a sliding admission given back in full leaves the log), `resetMs`, calls that carry the
 * caller's `timeoutMs` (answered in time, they count as any other), and the reference case (10 per 10 minutes, 10 calls at 12:09 and 10 at 12:11: a fixed
 * window admits all 20, a sliding one refuses the second 10). Call it at the top level of a vitest test
 * file. Every case passes an explicit `now`, so nothing sleeps; `makeStore` runs once per test.
 *
 * @example
 * // test/my-limits.test.ts
 * import { limitStoreConformance } from 'ai-gateway-middleware/testing/conformance'
 * limitStoreConformance('my limits', () => createMyLimitStore(client), { afterAll: () => client.quit() })
 */
export function limitStoreConformance(
  name: string,
  makeStore: () => MaybePromise<LimitStore>,
  hooks: ConformanceHooks = {},
): void {
  describe(`${name}: LimitStore conformance`, () => {
    if (hooks.afterAll !== undefined) afterAll(hooks.afterAll)

    for (const technique of ['fixed', 'sliding'] as const) {
      describe(technique, () => {
        commonLimitCases(makeStore, technique)
      })
    }

    describe('fixed', () => {
      fixedLimitCases(makeStore)
    })

    describe('sliding', () => {
      slidingLimitCases(makeStore)
    })

    it('follows the reference case: 10 per 10 minutes, 10 calls at 12:09 and 10 at 12:11', async () => {
      const store = await makeStore()
      const at = (minute: number, ms = 0) => Date.UTC(2025, 0, 15, 12, minute, 0, ms)
      const run = async (key: string, window: LimitWindow, now: number, count: number) => {
        const decisions = []
        for (let i = 0; i < count; i++) decisions.push(await store.consume(key, 1, window, now))
        return decisions.map((decision) => decision.allowed)
      }
      const fixed: LimitWindow = { limit: 10, windowMs: 10 * MINUTE, technique: 'fixed' }
      const fixedKey = freshKey('reference-fixed')
      expect(await run(fixedKey, fixed, at(9), 10)).toEqual(Array(10).fill(true))
      expect(await run(fixedKey, fixed, at(11), 10)).toEqual(Array(10).fill(true))

      const sliding: LimitWindow = { limit: 10, windowMs: 10 * MINUTE, technique: 'sliding' }
      const slidingKey = freshKey('reference-sliding')
      expect(await run(slidingKey, sliding, at(9), 10)).toEqual(Array(10).fill(true))
      expect(await run(slidingKey, sliding, at(11), 10)).toEqual(Array(10).fill(false))
      const refused = await store.consume(slidingKey, 1, sliding, at(11))
      expect(refused.resetMs).toBe(8 * MINUTE)
      expect((await store.consume(slidingKey, 1, sliding, at(18, 59_999))).allowed).toBe(false)
      const again = await store.consume(slidingKey, 1, sliding, at(19, 1))
      expect(again).toMatchObject({ allowed: true, remaining: 9 })
    })
  })
}

function commonLimitCases(
  makeStore: () => MaybePromise<LimitStore>,
  technique: LimitWindow['technique'],
): void {
  const window = (limit: number): LimitWindow => ({ limit, windowMs: MINUTE, technique })
  const now = NOON + 1000

  it('admits up to the limit, counting down what remains, then refuses', async () => {
    const store = await makeStore()
    const key = freshKey('count')
    const decisions = []
    for (let i = 0; i < 4; i++) decisions.push(await store.consume(key, 1, window(3), now))
    expect(decisions.map((decision) => [decision.allowed, decision.remaining])).toEqual([
      [true, 2],
      [true, 1],
      [true, 0],
      [false, 0],
    ])
    for (const decision of decisions.slice(0, 3)) expect(typeof decision.reservation).toBe('string')
  })

  it('admits exactly the limit under concurrent consumes (50 against 20)', async () => {
    const store = await makeStore()
    const key = freshKey('concurrent')
    const decisions = await Promise.all(
      Array.from({ length: 50 }, () => store.consume(key, 1, window(20), now)),
    )
    const admitted = decisions.filter((decision) => decision.allowed)
    expect(admitted).toHaveLength(20)
    expect(admitted.map((decision) => decision.remaining).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 20 }, (_, index) => index),
    )
    expect((await store.consume(key, 1, window(20), now)).allowed).toBe(false)
  })

  it('takes nothing for a refused amount', async () => {
    const store = await makeStore()
    const key = freshKey('refused')
    expect(await store.consume(key, 8, window(10), now)).toMatchObject({ allowed: true, remaining: 2 })
    expect(await store.consume(key, 5, window(10), now)).toMatchObject({ allowed: false, remaining: 0 })
    expect(await store.consume(key, 2, window(10), now)).toMatchObject({ allowed: true, remaining: 0 })
    expect((await store.consume(key, 1, window(10), now)).allowed).toBe(false)
  })

  it('takes amounts larger than 1 (tokens)', async () => {
    const store = await makeStore()
    const key = freshKey('tokens')
    expect(await store.consume(key, 400, window(1000), now)).toMatchObject({ allowed: true, remaining: 600 })
    expect(await store.consume(key, 400, window(1000), now)).toMatchObject({ allowed: true, remaining: 200 })
    expect((await store.consume(key, 300, window(1000), now)).allowed).toBe(false)
    expect(await store.consume(key, 200, window(1000), now)).toMatchObject({ allowed: true, remaining: 0 })
  })

  it('refuses an amount larger than the whole limit without taking anything', async () => {
    const store = await makeStore()
    const key = freshKey('oversized')
    const refused = await store.consume(key, 11, window(10), now)
    expect(refused).toMatchObject({ allowed: false, remaining: 0 })
    expect(refused.resetMs).toBeGreaterThan(0)
    expect(refused.resetMs).toBeLessThanOrEqual(MINUTE)
    expect(await store.consume(key, 10, window(10), now)).toMatchObject({ allowed: true, remaining: 0 })
  })

  it('gives back what a downward adjust returns', async () => {
    const store = await makeStore()
    const key = freshKey('adjust-down')
    const first = await store.consume(key, 80, window(100), now)
    await store.adjust(key, first.reservation!, -50, window(100), now + 10)
    expect((await store.consume(key, 71, window(100), now + 20)).allowed).toBe(false)
    expect(await store.consume(key, 70, window(100), now + 20)).toMatchObject({ allowed: true, remaining: 0 })
  })

  it('takes more after an upward adjust', async () => {
    const store = await makeStore()
    const key = freshKey('adjust-up')
    const first = await store.consume(key, 10, window(100), now)
    await store.adjust(key, first.reservation!, 60, window(100), now + 10)
    expect((await store.consume(key, 31, window(100), now + 20)).allowed).toBe(false)
    expect(await store.consume(key, 30, window(100), now + 20)).toMatchObject({ allowed: true, remaining: 0 })
  })

  it('never lets an adjust take an admission below zero', async () => {
    const store = await makeStore()
    const key = freshKey('adjust-floor')
    const first = await store.consume(key, 5, window(10), now)
    await store.adjust(key, first.reservation!, -20, window(10), now + 10)
    expect(await store.consume(key, 10, window(10), now + 20)).toMatchObject({ allowed: true, remaining: 0 })
    expect((await store.consume(key, 1, window(10), now + 20)).allowed).toBe(false)
  })

  it('answers a call that carries a timeoutMs as any other, when it answers in time', async () => {
    const store = await makeStore()
    const key = freshKey('timeout-option')
    const call = { timeoutMs: 10_000 }
    const first = await store.consume(key, 3, window(10), now, call)
    expect(first).toMatchObject({ allowed: true, remaining: 7 })
    await store.adjust(key, first.reservation!, -1, window(10), now + 10, call)
    expect(await store.consume(key, 8, window(10), now + 20, call)).toMatchObject({
      allowed: true,
      remaining: 0,
    })
    expect((await store.consume(key, 1, window(10), now + 20, call)).allowed).toBe(false)
  })

  it('counts separate keys independently', async () => {
    const store = await makeStore()
    const key = freshKey('separate')
    await store.consume(key, 2, window(2), now)
    expect((await store.consume(key, 1, window(2), now)).allowed).toBe(false)
    expect(await store.consume(`${key}-other`, 1, window(2), now)).toMatchObject({
      allowed: true,
      remaining: 1,
    })
  })
}

function fixedLimitCases(makeStore: () => MaybePromise<LimitStore>): void {
  const window = (limit: number): LimitWindow => ({ limit, windowMs: MINUTE, technique: 'fixed' })

  it('reports resetMs as the end of the clock-aligned window', async () => {
    const store = await makeStore()
    const key = freshKey('fixed-reset')
    expect((await store.consume(key, 1, window(1), NOON + 15_000)).resetMs).toBe(45_000)
    expect(await store.consume(key, 1, window(1), NOON + 59_000)).toMatchObject({
      allowed: false,
      resetMs: 1000,
    })
  })

  it('starts afresh when the clock crosses into the next window', async () => {
    const store = await makeStore()
    const key = freshKey('fixed-next')
    await store.consume(key, 2, window(2), NOON + 59_999)
    expect((await store.consume(key, 1, window(2), NOON + 59_999)).allowed).toBe(false)
    const next = await store.consume(key, 1, window(2), NOON + MINUTE)
    expect(next).toMatchObject({ allowed: true, remaining: 1, resetMs: MINUTE })
  })

  it('ignores an adjust for a window that has ended', async () => {
    const store = await makeStore()
    const key = freshKey('fixed-stale-adjust')
    const old = await store.consume(key, 5, window(10), NOON + 1000)
    await store.consume(key, 10, window(10), NOON + MINUTE + 1000)
    await store.adjust(key, old.reservation!, -5, window(10), NOON + MINUTE + 2000)
    expect((await store.consume(key, 1, window(10), NOON + MINUTE + 3000)).allowed).toBe(false)

    const other = freshKey('fixed-stale-adjust-up')
    const earlier = await store.consume(other, 5, window(10), NOON + 1000)
    await store.adjust(other, earlier.reservation!, 100, window(10), NOON + MINUTE + 2000)
    expect(await store.consume(other, 10, window(10), NOON + MINUTE + 3000)).toMatchObject({ allowed: true })
  })
}

function slidingLimitCases(makeStore: () => MaybePromise<LimitStore>): void {
  const window = (limit: number): LimitWindow => ({ limit, windowMs: MINUTE, technique: 'sliding' })

  it('lets an adjusted admission age out with its adjusted amount', async () => {
    const store = await makeStore()
    const key = freshKey('sliding-adjusted-ageing')
    const first = await store.consume(key, 40, window(100), NOON)
    await store.adjust(key, first.reservation!, 30, window(100), NOON + 1000)
    await store.consume(key, 20, window(100), NOON + 30_000)
    expect((await store.consume(key, 11, window(100), NOON + 30_001)).allowed).toBe(false)
    // The first admission (now 70) has aged out; only the 20 remain in the window.
    expect(await store.consume(key, 80, window(100), NOON + MINUTE + 1)).toMatchObject({
      allowed: true,
      remaining: 0,
    })
  })

  it('reports resetMs as the time until the oldest admission ages out', async () => {
    const store = await makeStore()
    const key = freshKey('sliding-reset')
    expect((await store.consume(key, 1, window(3), NOON)).resetMs).toBe(MINUTE)
    expect((await store.consume(key, 1, window(3), NOON + 10_000)).resetMs).toBe(50_000)
  })

  it('when refusing, reports the time until enough has aged out for the amount to fit', async () => {
    const store = await makeStore()
    const key = freshKey('sliding-wait')
    for (const offset of [0, 10_000, 20_000]) await store.consume(key, 1, window(3), NOON + offset)
    const later = NOON + 30_000
    expect(await store.consume(key, 1, window(3), later)).toMatchObject({ allowed: false, resetMs: 30_000 })
    expect(await store.consume(key, 2, window(3), later)).toMatchObject({ allowed: false, resetMs: 40_000 })
    expect(await store.consume(key, 4, window(3), later)).toMatchObject({ allowed: false, resetMs: MINUTE })
    // The first admission ages out exactly one window after it was taken.
    expect((await store.consume(key, 1, window(3), NOON + MINUTE)).allowed).toBe(true)
    expect((await store.consume(key, 1, window(3), NOON + MINUTE)).allowed).toBe(false)
  })

  it('forgets an admission given back in full: the window then runs from the oldest that counts', async () => {
    const store = await makeStore()
    const key = freshKey('sliding-given-back')
    const given = await store.consume(key, 2, window(3), NOON)
    await store.adjust(key, given.reservation!, -2, window(3), NOON + 1000)
    expect(await store.consume(key, 1, window(3), NOON + 10_000)).toMatchObject({
      allowed: true,
      remaining: 2,
      resetMs: MINUTE,
    })
  })

  it('counts a trailing window rather than clock-aligned ones', async () => {
    const store = await makeStore()
    const key = freshKey('sliding-trailing')
    await store.consume(key, 2, window(2), NOON + 59_000)
    expect((await store.consume(key, 1, window(2), NOON + MINUTE + 1000)).allowed).toBe(false)
    expect((await store.consume(key, 1, window(2), NOON + MINUTE + 59_000)).allowed).toBe(true)
  })
}

/** The policy of most breaker cases: 3 failures within a minute open a breaker for a minute. */
const BREAKER: BreakerPolicy = { failures: 3, windowMs: MINUTE, openMs: MINUTE, probeMs: MINUTE }
/** An open period (or probe lease, or window) short enough for a case to see it end. */
const BRIEF_MS = 5
/** Bounds the waits for a brief period to end, so a store that never lets it end fails in seconds. */
const MAX_ROUNDS = 40
const MAX_PAUSE_MS = 250

/**
 * Calls `round` until `done` accepts what it answered, pausing `pauseMs(answer)` between calls, and returns
 * that answer. A store that counts time by the caller's `now` is given a `now` at which the period has
 * already ended, and answers on the first round; one that keeps its own clock (Redis's, read in its
 * scripts) gets there once that clock has moved on. Only a condition ends the wait, never a time, so a
 * slow machine just takes more rounds.
 */
async function waitUntil<T>(
  round: () => Promise<T>,
  done: (answer: T) => boolean,
  pauseMs: (answer: T) => number,
): Promise<T> {
  let answer = await round()
  for (let rounds = 1; !done(answer); rounds++) {
    if (rounds >= MAX_ROUNDS)
      throw new Error(`still waiting after ${rounds} rounds: ${JSON.stringify(answer)}`)
    await sleep(Math.min(MAX_PAUSE_MS, Math.max(1, Math.ceil(pauseMs(answer)) + 1)))
    answer = await round()
  }
  return answer
}

/**
 * Checks `key` with `count` calls at once, again and again until one of a round is not `open`, and returns
 * that round's answers: the round in which a half-open breaker hands out its probe. `at` is a `now` at which
 * the open period (or the probe's lease) has ended.
 */
function untilNotOpen(
  store: BreakerStore,
  key: string,
  policy: BreakerPolicy,
  at: number,
  count = 1,
): Promise<BreakerState[]> {
  return waitUntil(
    () => Promise.all(Array.from({ length: count }, () => store.check(key, policy, at))),
    (answers) => answers.some((answer) => answer.state !== 'open'),
    (answers) => Math.min(...answers.map((answer) => (answer.state === 'open' ? answer.retryInMs : 0))),
  )
}

function expectOpen(state: BreakerState, atLeastMs: number, atMostMs: number): void {
  expect(state.state, JSON.stringify(state)).toBe('open')
  const { retryInMs } = state as { retryInMs: number }
  expect(retryInMs).toBeGreaterThan(atLeastMs)
  expect(retryInMs).toBeLessThanOrEqual(atMostMs)
}

/**
 * Registers a vitest `describe` block with the tests every `BreakerStore` must pass: counting failures in a
 * window, opening at the threshold, one probe at a time once the open period is over (also among concurrent
 * checks), a probe's success closing and its failure re-opening, a probe that never reports, `openForMs`
 * (a provider's `Retry-After`), and keys kept apart. Call it at the top level of a vitest test file;
 * `makeStore` runs once per test and keys are random.
 *
 * Every case passes an explicit `now`, so a store that measures time by it never waits. A store may measure
 * time by a clock of its own instead (the Redis store uses the server's): the few cases that must see a
 * period end use one of a few milliseconds and check again, on the store's own `retryInMs`, until it has;
 * every other assertion holds however long the calls take.
 *
 * @example
 * // test/my-breakers.test.ts
 * import { breakerStoreConformance } from 'ai-gateway-middleware/testing/conformance'
 * breakerStoreConformance('my breakers', () => createMyBreakerStore(client), { afterAll: () => client.quit() })
 */
export function breakerStoreConformance(
  name: string,
  makeStore: () => MaybePromise<BreakerStore>,
  hooks: ConformanceHooks = {},
): void {
  describe(`${name}: BreakerStore conformance`, () => {
    if (hooks.afterAll !== undefined) afterAll(hooks.afterAll)

    /** Opens `key` for a brief period, as a provider's short `Retry-After` does. Returns when it ends. */
    async function openBriefly(store: BreakerStore, key: string, policy: BreakerPolicy): Promise<number> {
      expectOpen(await store.failure(key, policy, NOON, BRIEF_MS), 0, BRIEF_MS)
      return NOON + BRIEF_MS
    }

    it('is closed, with nothing failing, for a key it has never seen', async () => {
      const store = await makeStore()
      const key = freshKey('breaker-new')
      expect(await store.check(key, BREAKER, NOON)).toEqual({ state: 'closed', failing: false })
      await store.success(key, BREAKER, NOON)
      expect(await store.check(key, BREAKER, NOON)).toEqual({ state: 'closed', failing: false })
    })

    it('stays closed below the threshold, saying failures are counted', async () => {
      const store = await makeStore()
      const key = freshKey('breaker-below')
      expect(await store.failure(key, BREAKER, NOON)).toEqual({ state: 'closed', failing: true })
      expect(await store.failure(key, BREAKER, NOON + 1000)).toEqual({ state: 'closed', failing: true })
      expect(await store.check(key, BREAKER, NOON + 2000)).toEqual({ state: 'closed', failing: true })
    })

    it('forgets the counted failures on a success', async () => {
      const store = await makeStore()
      const key = freshKey('breaker-success')
      await store.failure(key, BREAKER, NOON)
      await store.failure(key, BREAKER, NOON + 1000)
      await store.success(key, BREAKER, NOON + 2000)
      expect(await store.check(key, BREAKER, NOON + 3000)).toEqual({ state: 'closed', failing: false })
      expect(await store.failure(key, BREAKER, NOON + 4000)).toEqual({ state: 'closed', failing: true })
      expect(await store.failure(key, BREAKER, NOON + 5000)).toEqual({ state: 'closed', failing: true })
      expect((await store.failure(key, BREAKER, NOON + 6000)).state).toBe('open')
    })

    it('opens when the failures reach the threshold, for openMs, and keeps every check out meanwhile', async () => {
      const store = await makeStore()
      const key = freshKey('breaker-open')
      await store.failure(key, BREAKER, NOON)
      await store.failure(key, BREAKER, NOON + 1000)
      expectOpen(await store.failure(key, BREAKER, NOON + 2000), 0, MINUTE)
      for (let i = 1; i <= 5; i++) expectOpen(await store.check(key, BREAKER, NOON + 2000 + i), 0, MINUTE)
    })

    it('counts failures within windowMs: older ones no longer count', async () => {
      const store = await makeStore()
      const key = freshKey('breaker-window')
      const policy: BreakerPolicy = { ...BREAKER, failures: 2, windowMs: BRIEF_MS }
      await store.failure(key, policy, NOON)
      // The window has ended once the failure is no longer counted.
      await waitUntil(
        () => Promise.resolve(store.check(key, policy, NOON + BRIEF_MS)),
        (state) => state.state === 'closed' && !state.failing,
        () => BRIEF_MS,
      )
      expect(await store.failure(key, policy, NOON + BRIEF_MS)).toEqual({ state: 'closed', failing: true })
    })

    it('gives one probe once openMs has passed, and keeps every other check out while it runs', async () => {
      const store = await makeStore()
      const key = freshKey('breaker-probe')
      const policy: BreakerPolicy = { ...BREAKER, openMs: BRIEF_MS }
      for (const offset of [0, 1, 2]) await store.failure(key, policy, NOON + offset)
      const at = NOON + 2 + BRIEF_MS
      expect(await untilNotOpen(store, key, policy, at)).toEqual([{ state: 'probe' }])
      for (let i = 1; i <= 5; i++) expectOpen(await store.check(key, policy, at + i), 0, policy.probeMs)
    })

    it('gives exactly one probe among 10 concurrent checks of a half-open breaker', async () => {
      const store = await makeStore()
      const key = freshKey('breaker-concurrent')
      const at = await openBriefly(store, key, BREAKER)
      const answers = await untilNotOpen(store, key, BREAKER, at, 10)
      expect(answers.filter((answer) => answer.state === 'probe')).toHaveLength(1)
      for (const answer of answers.filter((each) => each.state !== 'probe')) {
        expectOpen(answer, 0, BREAKER.probeMs)
      }
    })

    it('closes when the probe succeeds, forgetting the failures that opened it', async () => {
      const store = await makeStore()
      const key = freshKey('breaker-probe-success')
      const policy: BreakerPolicy = { ...BREAKER, openMs: BRIEF_MS }
      for (const offset of [0, 1, 2]) await store.failure(key, policy, NOON + offset)
      const at = NOON + 2 + BRIEF_MS
      expect(await untilNotOpen(store, key, policy, at)).toEqual([{ state: 'probe' }])
      await store.success(key, policy, at + 1)
      expect(await store.check(key, policy, at + 2)).toEqual({ state: 'closed', failing: false })
      // Counting starts again from nothing: two failures keep it closed, the third opens it.
      expect(await store.failure(key, policy, at + 3)).toEqual({ state: 'closed', failing: true })
      expect(await store.failure(key, policy, at + 4)).toEqual({ state: 'closed', failing: true })
      expect((await store.failure(key, policy, at + 5)).state).toBe('open')
    })

    it('opens again at once, for openMs, when the probe fails', async () => {
      const store = await makeStore()
      const key = freshKey('breaker-probe-failure')
      const at = await openBriefly(store, key, BREAKER)
      expect(await untilNotOpen(store, key, BREAKER, at)).toEqual([{ state: 'probe' }])
      expectOpen(await store.failure(key, BREAKER, at + 1), MINUTE / 2, MINUTE)
      expectOpen(await store.check(key, BREAKER, at + 2), MINUTE / 2, MINUTE)
      expectOpen(await store.check(key, BREAKER, at + 3), MINUTE / 2, MINUTE)
    })

    it('lets another caller probe when the probe reports nothing within probeMs', async () => {
      const store = await makeStore()
      const key = freshKey('breaker-probe-lost')
      const policy: BreakerPolicy = { ...BREAKER, probeMs: BRIEF_MS }
      const at = await openBriefly(store, key, policy)
      expect(await untilNotOpen(store, key, policy, at)).toEqual([{ state: 'probe' }])
      expect(await untilNotOpen(store, key, policy, at + BRIEF_MS)).toEqual([{ state: 'probe' }])
    })

    it('opens at once for openForMs, below the threshold and longer than openMs', async () => {
      const store = await makeStore()
      const key = freshKey('breaker-open-for')
      expectOpen(await store.failure(key, BREAKER, NOON, 10 * MINUTE), 9 * MINUTE, 10 * MINUTE)
      expectOpen(await store.check(key, BREAKER, NOON + 1000), 9 * MINUTE, 10 * MINUTE)
    })

    it('never shortens a longer open period, and lengthens a shorter one, for openForMs', async () => {
      const store = await makeStore()
      const key = freshKey('breaker-open-for-longer')
      await store.failure(key, BREAKER, NOON, 10 * MINUTE)
      expectOpen(await store.failure(key, BREAKER, NOON + 1000, 1000), 9 * MINUTE, 10 * MINUTE)
      expectOpen(await store.failure(key, BREAKER, NOON + 2000), 9 * MINUTE, 10 * MINUTE)
      expectOpen(await store.check(key, BREAKER, NOON + 3000), 9 * MINUTE, 10 * MINUTE)
      expectOpen(await store.failure(key, BREAKER, NOON + 4000, 20 * MINUTE), 19 * MINUTE, 20 * MINUTE)
      expectOpen(await store.check(key, BREAKER, NOON + 5000), 19 * MINUTE, 20 * MINUTE)
    })

    it('stays open when a success is reported during its open period (a call that began before)', async () => {
      const store = await makeStore()
      const key = freshKey('breaker-late-success')
      await store.failure(key, BREAKER, NOON, 10 * MINUTE)
      await store.success(key, BREAKER, NOON + 1000)
      expectOpen(await store.check(key, BREAKER, NOON + 2000), 9 * MINUTE, 10 * MINUTE)
    })

    it('keeps keys apart, including keys that share a prefix', async () => {
      const store = await makeStore()
      const key = freshKey('breaker-isolated')
      const other = `${key}0`
      for (const offset of [0, 1, 2]) await store.failure(key, BREAKER, NOON + offset)
      expect(await store.check(other, BREAKER, NOON + 3)).toEqual({ state: 'closed', failing: false })
      expect(await store.failure(other, BREAKER, NOON + 4)).toEqual({ state: 'closed', failing: true })
      await store.success(other, BREAKER, NOON + 5)
      expectOpen(await store.check(key, BREAKER, NOON + 6), 0, MINUTE)
      expect(await store.check(other, BREAKER, NOON + 7)).toEqual({ state: 'closed', failing: false })
    })
  })
}
