import { describe, expect, it } from 'vitest'
import { balancedOrder, LatencyBook } from '../../src/upstream/balance.js'

/** A fixed sequence of uniform numbers (a linear congruential generator), so counts are exact. */
function seeded(seed: number): () => number {
  let state = seed
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31
    return state / 2 ** 31
  }
}

const pool = [
  { item: 'a', weight: 3, key: 'ka' },
  { item: 'b', weight: 1, key: 'kb' },
]

describe('balancedOrder', () => {
  it('puts each item first in proportion to its weight, and every item in every order', () => {
    const random = seeded(42)
    const weighted = { strategy: 'weighted', explore: 0 } as const
    let aFirst = 0
    for (let i = 0; i < 20_000; i++) {
      const order = balancedOrder(pool, weighted, new LatencyBook(), random)
      expect([...order].sort()).toEqual(['a', 'b'])
      if (order[0] === 'a') aFirst++
    }
    // 3 : 1 -> three quarters, within a percent over 20,000 draws.
    expect(aFirst / 20_000).toBeGreaterThan(0.74)
    expect(aFirst / 20_000).toBeLessThan(0.76)
  })

  it('by latency: the unmeasured first, then the fastest lately; explore takes the weighted order', () => {
    const book = new LatencyBook()
    const latency = { strategy: 'latency', explore: 0.1 } as const
    book.observe('ka', 50)
    expect(balancedOrder(pool, latency, book, () => 0.5)).toEqual(['b', 'a'])
    book.observe('kb', 200)
    expect(balancedOrder(pool, latency, book, () => 0.5)).toEqual(['a', 'b'])
    // The moving average follows a target that got slow, a few answers at a time.
    for (let i = 0; i < 10; i++) book.observe('ka', 400)
    expect(book.average('ka')).toBeGreaterThan(200)
    expect(balancedOrder(pool, latency, book, () => 0.5)).toEqual(['b', 'a'])
    // Below `explore`, the weighted order: with these draws 'a' ranks first (0.05^(1/3) > 0.05).
    expect(balancedOrder(pool, latency, book, () => 0.05)).toEqual(['a', 'b'])
  })

  it('by latency: a target whose last attempt failed goes after the measured, until it answers again', () => {
    const book = new LatencyBook()
    const latency = { strategy: 'latency', explore: 0 } as const
    book.observe('ka', 50)
    book.failed('kb')
    expect(balancedOrder(pool, latency, book, () => 0.5)).toEqual(['a', 'b'])
    book.failed('ka')
    book.observe('kb', 900)
    expect(balancedOrder(pool, latency, book, () => 0.5)).toEqual(['b', 'a'])
    // An answer after the failure starts its average afresh.
    book.observe('ka', 40)
    expect(book.average('ka')).toBe(40)
    expect(balancedOrder(pool, latency, book, () => 0.5)).toEqual(['a', 'b'])
  })

  it('leaves a single item alone', () => {
    expect(balancedOrder([pool[0]!], { strategy: 'weighted', explore: 0 }, new LatencyBook())).toEqual(['a'])
  })
})
