import { describe, expect, it } from 'vitest'
import { createMemoryCacheStore } from '../../src/stores/memory-cache.js'
import { createMemoryLimitStore } from '../../src/stores/memory-limits.js'
import type { CacheEntry, LimitWindow } from '../../src/stores/types.js'
import { cacheStoreConformance, limitStoreConformance } from '../../src/testing/conformance.js'

cacheStoreConformance('memory cache store', () => createMemoryCacheStore())
limitStoreConformance('memory limit store', () => createMemoryLimitStore())

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

  it('rejects an amount that is not a positive integer', () => {
    const store = createMemoryLimitStore()
    expect(() => store.consume('a', 0, window, 1000)).toThrow(RangeError)
    expect(() => store.consume('a', 1.5, window, 1000)).toThrow(RangeError)
  })
})
