import { describe, expect, it } from 'vitest'
import { createMemoryBreakerStore } from '../../src/stores/memory-breaker.js'
import { createMemoryCacheStore } from '../../src/stores/memory-cache.js'
import { createMemoryLimitStore } from '../../src/stores/memory-limits.js'
import type { BreakerPolicy, CacheEntry, LimitDecision, LimitWindow } from '../../src/stores/types.js'
import {
  breakerStoreConformance,
  cacheStoreConformance,
  limitStoreConformance,
} from '../../src/testing/conformance.js'

cacheStoreConformance('memory cache store', () => createMemoryCacheStore())
limitStoreConformance('memory limit store', () => createMemoryLimitStore())
breakerStoreConformance('memory breaker store', () => createMemoryBreakerStore())

function entryOf(bytes: number): CacheEntry {
  return {
    status: 200,
    headers: { 'content-type': 'application/json' },
    body: new Uint8Array(bytes),
    storedAt: 0,
  }
}

describe('memory cache store bounds', () => {
  it('answers synchronously', () => {
    const store = createMemoryCacheStore()
    expect(store.set('a', entryOf(1), 60)).toBeUndefined()
    expect(store.get('a')).toMatchObject({ status: 200 })
    expect(store.delete('a')).toBeUndefined()
  })

  it('evicts the least recently used entry past maxEntries', () => {
    const store = createMemoryCacheStore({ maxEntries: 2 })
    store.set('a', entryOf(1), 60)
    store.set('b', entryOf(1), 60)
    store.get('a')
    store.set('c', entryOf(1), 60)
    expect(store.get('a')).toBeDefined()
    expect(store.get('b')).toBeUndefined()
    expect(store.get('c')).toBeDefined()
  })

  it('evicts by total size past maxBytes', () => {
    const store = createMemoryCacheStore({ maxBytes: 3600 })
    for (const key of ['a', 'b', 'c', 'd']) store.set(key, entryOf(1000), 60)
    expect(store.get('a')).toBeUndefined()
    expect(['b', 'c', 'd'].every((key) => store.get(key) !== undefined)).toBe(true)
  })

  it('counts headers toward the size', () => {
    const store = createMemoryCacheStore({ maxBytes: 2000 })
    store.set('a', { ...entryOf(500), headers: { 'x-large': 'x'.repeat(1000) } }, 60)
    store.set('b', { ...entryOf(500), headers: { 'x-large': 'x'.repeat(1000) } }, 60)
    expect(store.get('a')).toBeUndefined()
    expect(store.get('b')).toBeDefined()
  })

  it('does not store an entry larger than maxBytes, and drops the value it would have replaced', () => {
    const store = createMemoryCacheStore({ maxBytes: 1000 })
    store.set('small', entryOf(10), 60)
    store.set('huge', entryOf(5000), 60)
    expect(store.get('huge')).toBeUndefined()
    expect(store.get('small')).toBeDefined()
    store.set('small', entryOf(5000), 60)
    expect(store.get('small')).toBeUndefined()
  })

  it('does not keep an entry whose TTL is not positive', () => {
    const store = createMemoryCacheStore()
    store.set('a', entryOf(1), 60)
    store.set('a', entryOf(1), 0)
    expect(store.get('a')).toBeUndefined()
  })
})

describe('memory limit store bounds', () => {
  const window: LimitWindow = { limit: 1, windowMs: 60_000, technique: 'fixed' }

  it('answers synchronously', () => {
    const store = createMemoryLimitStore()
    const decision = store.consume('a', 1, window, 1000)
    expect(decision).toMatchObject({ allowed: true, remaining: 0 })
    expect(store.adjust('a', '0', -1, window, 1000)).toBeUndefined()
  })

  it('forgets the least recently used key past maxKeys', () => {
    const store = createMemoryLimitStore({ maxKeys: 2 })
    for (const key of ['a', 'b', 'c']) store.consume(key, 1, window, 1000)
    // 'a' was evicted, so it starts afresh; 'b' and 'c' are still counted.
    expect(store.consume('a', 1, window, 1000)).toMatchObject({ allowed: true })
    expect(store.consume('c', 1, window, 1000)).toMatchObject({ allowed: false })
  })

  it('keeps no key for a count given back in full, so it pushes no live counter out', () => {
    for (const technique of ['fixed', 'sliding'] as const) {
      const given: LimitWindow = { limit: 5, windowMs: 60_000, technique }
      const store = createMemoryLimitStore({ maxKeys: 2 })
      store.consume('live', 1, window, 1000)
      for (const key of ['b', 'c', 'd']) {
        const decision = store.consume(key, 2, given, 1000) as LimitDecision
        store.adjust(key, decision.reservation!, -2, given, 1000)
      }
      expect(store.consume('live', 1, window, 1000), technique).toMatchObject({ allowed: false })
    }
  })

  it('forgets a key whose window has passed before the least recently used live one', () => {
    let time = 0
    const store = createMemoryLimitStore({ maxKeys: 2, now: () => time })
    const day: LimitWindow = { limit: 1, windowMs: 86_400_000, technique: 'fixed' }
    // Callers' `now` need not be the store's clock: the day counts from its start, as a policy's cap does.
    store.consume('day', 1, day, 5000)
    store.consume('minute', 1, window, 1_000_000)
    time = 120_000
    store.consume('new', 1, window, 1_120_000)
    expect(store.consume('day', 1, day, 125_000)).toMatchObject({ allowed: false })
  })

  it('rejects an amount that is not a positive integer', () => {
    const store = createMemoryLimitStore()
    expect(() => store.consume('a', 0, window, 1000)).toThrow(RangeError)
    expect(() => store.consume('a', 1.5, window, 1000)).toThrow(RangeError)
  })
})

describe('memory breaker store', () => {
  const policy: BreakerPolicy = { failures: 2, windowMs: 1000, openMs: 5000, probeMs: 2000 }
  const closed = { state: 'closed', failing: false }
  const failing = { state: 'closed', failing: true }

  /** Opens `key` at `now` through its failures; it may be probed from `now + openMs`. */
  function trip(store: ReturnType<typeof createMemoryBreakerStore>, key: string, now: number): void {
    store.failure(key, policy, now)
    expect(store.failure(key, policy, now)).toEqual({ state: 'open', retryInMs: 5000 })
  }

  it('answers synchronously', () => {
    const store = createMemoryBreakerStore()
    expect(store.check('a', policy, 1000)).toEqual(closed)
    expect(store.failure('a', policy, 1000)).toEqual(failing)
    expect(store.success('a', policy, 1000)).toBeUndefined()
  })

  it('counts a failure until its window ends, to the millisecond', () => {
    const store = createMemoryBreakerStore()
    store.failure('a', policy, 1000)
    expect(store.check('a', policy, 1999)).toEqual(failing)
    expect(store.check('a', policy, 2000)).toEqual(closed)
    // The window started by the first failure is over: this one starts another rather than opening.
    expect(store.failure('a', policy, 2000)).toEqual(failing)
    expect(store.failure('a', policy, 2999)).toEqual({ state: 'open', retryInMs: 5000 })
  })

  it('is open until openMs has passed, then leases one probe for probeMs', () => {
    const store = createMemoryBreakerStore()
    trip(store, 'a', 1000)
    expect(store.check('a', policy, 5999)).toEqual({ state: 'open', retryInMs: 1 })
    expect(store.check('a', policy, 6000)).toEqual({ state: 'probe' })
    expect(store.check('a', policy, 6001)).toEqual({ state: 'open', retryInMs: 1999 })
    expect(store.check('a', policy, 7999)).toEqual({ state: 'open', retryInMs: 1 })
    expect(store.check('a', policy, 8000)).toEqual({ state: 'probe' })
    expect(store.check('a', policy, 8000)).toEqual({ state: 'open', retryInMs: 2000 })
  })

  it('opens for exactly openForMs, even when shorter than openMs', () => {
    const store = createMemoryBreakerStore()
    expect(store.failure('a', policy, 1000, 300)).toEqual({ state: 'open', retryInMs: 300 })
    expect(store.check('a', policy, 1299)).toEqual({ state: 'open', retryInMs: 1 })
    expect(store.check('a', policy, 1300)).toEqual({ state: 'probe' })
    // A half-open breaker that fails opens for openMs, or longer when the provider asks for it.
    expect(store.failure('a', policy, 1400, 9000)).toEqual({ state: 'open', retryInMs: 9000 })
  })

  it('ignores an openForMs that is not a positive number', () => {
    const store = createMemoryBreakerStore()
    for (const openForMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(store.failure(String(openForMs), policy, 1000, openForMs)).toEqual(failing)
    }
  })

  it('forgets a tripped breaker max(openMs, probeMs) after its open period and its last probe lease', () => {
    const store = createMemoryBreakerStore()
    trip(store, 'idle', 1000)
    // Open until 6000, then remembered for another 5000.
    expect(store.check('idle', policy, 10_999)).toEqual({ state: 'probe' })
    expect(store.check('idle', policy, 12_998)).toEqual({ state: 'open', retryInMs: 1 })
    // The probe lease (until 12 999) pushed the end out to 17 999.
    expect(store.check('idle', policy, 17_998)).toEqual({ state: 'probe' })
    trip(store, 'abandoned', 1000)
    expect(store.check('abandoned', policy, 11_000)).toEqual(closed)
    expect(store.failure('abandoned', policy, 11_000)).toEqual(failing)
  })

  it('forgets the least recently used key past maxKeys', () => {
    const store = createMemoryBreakerStore({ maxKeys: 2 })
    trip(store, 'a', 1000)
    trip(store, 'b', 1000)
    store.check('a', policy, 1001)
    trip(store, 'c', 1001)
    expect(store.check('b', policy, 1002)).toEqual(closed)
    expect(store.check('a', policy, 1002)).toMatchObject({ state: 'open' })
    expect(store.check('c', policy, 1002)).toMatchObject({ state: 'open' })
  })

  it('keeps no entry for a closed breaker with nothing counted', () => {
    const store = createMemoryBreakerStore({ maxKeys: 2 })
    trip(store, 'a', 1000)
    store.check('b', policy, 1001)
    store.success('c', policy, 1001)
    store.failure('d', policy, 1001)
    store.success('d', policy, 1002)
    // Had any of b, c or d kept an entry, this third one would push 'a' out.
    trip(store, 'e', 1003)
    expect(store.check('a', policy, 1004)).toMatchObject({ state: 'open' })
  })

  it('rejects a policy that cannot work', () => {
    const store = createMemoryBreakerStore()
    for (const bad of [
      { failures: 0 },
      { failures: 1.5 },
      { windowMs: 0 },
      { openMs: -1 },
      { probeMs: Number.NaN },
    ]) {
      expect(() => store.check('a', { ...policy, ...bad }, 1000), JSON.stringify(bad)).toThrow(RangeError)
    }
  })
})
