import { describe, expect, it } from 'vitest'
import { RecentlyUsed } from '../../src/stores/recently-used.js'

/** The plain model: a Map re-inserted on every use, its first key the least recently used. */
class ModelRecentlyUsed {
  readonly map = new Map<string, number>()
  constructor(private readonly max: number) {}
  get(key: string): number | undefined {
    const value = this.map.get(key)
    if (value !== undefined) {
      this.map.delete(key)
      this.map.set(key, value)
    }
    return value
  }
  set(key: string, value: number): void {
    this.map.delete(key)
    this.map.set(key, value)
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!)
  }
}

describe('RecentlyUsed', () => {
  it('forgets the least recently used key, a read counting as a use', () => {
    const states = new RecentlyUsed<number>(2)
    states.set('a', 1)
    states.set('b', 2)
    expect(states.get('a')).toBe(1)
    states.set('c', 3)
    expect(states.get('b')).toBeUndefined()
    expect([states.get('a'), states.get('c'), states.size]).toEqual([1, 3, 2])
    states.set('a', 4)
    states.set('d', 5)
    expect([states.get('a'), states.get('c'), states.get('d')]).toEqual([4, undefined, 5])
  })

  it('keeps to the model through many reads, writes and deletions', () => {
    const max = 50
    const states = new RecentlyUsed<number>(max)
    const model = new ModelRecentlyUsed(max)
    // A fixed linear congruential sequence: the same operations on every run.
    let seed = 12345
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n
    }
    for (let i = 0; i < 20_000; i++) {
      const key = `k${next(120)}`
      const op = next(10)
      if (op < 4) expect(states.get(key)).toBe(model.get(key))
      else if (op < 9) {
        states.set(key, i)
        model.set(key, i)
      } else {
        states.delete(key)
        model.map.delete(key)
      }
      expect(states.size).toBe(model.map.size)
    }
    // Every key the model holds, the store holds with the same value, and no other.
    for (let k = 0; k < 120; k++) expect(states.get(`k${k}`)).toBe(model.map.get(`k${k}`))
  })

  it('holds one key and forgets it for the next at a bound of one', () => {
    const states = new RecentlyUsed<string>(1)
    states.set('a', 'x')
    states.set('a', 'y')
    expect(states.get('a')).toBe('y')
    states.set('b', 'z')
    expect([states.get('a'), states.get('b'), states.size]).toEqual([undefined, 'z', 1])
    states.delete('b')
    expect(states.size).toBe(0)
    states.set('c', 'w')
    expect(states.get('c')).toBe('w')
  })
})
