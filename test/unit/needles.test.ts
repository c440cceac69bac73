import { describe, expect, it } from 'vitest'
import { NeedleSearch } from '../../src/needles.js'

/** Every occurrence of every needle, found the slow way: one indexOf per needle and position. */
function naive(text: string, needles: readonly string[]): [number, number][] {
  const found: [number, number][] = []
  needles.forEach((needle, i) => {
    for (let at = text.indexOf(needle); at !== -1; at = text.indexOf(needle, at + 1)) found.push([i, at])
  })
  return found
}

function all(search: NeedleSearch, text: string): [number, number][] {
  const found: [number, number][] = []
  search.forEach(text, (needle, at) => found.push([needle, at]))
  return found
}

const sorted = (pairs: [number, number][]) => [...pairs].sort((a, b) => a[0] - b[0] || a[1] - b[1])

describe('NeedleSearch', () => {
  it('finds overlapping occurrences, needles that are prefixes of others, and regex characters literally', () => {
    const needles = ['aa', 'aaa', 'a.b', '[DONE]', '"finishReason"', '"finishReason"']
    const text = 'aaaa a.b axb data: [DONE] {"finishReason":"STOP"}'
    const search = new NeedleSearch(needles)
    expect(sorted(all(search, text))).toEqual(sorted(naive(text, needles)))
    // Both copies of a repeated needle are reported, each by its own index.
    expect(search.present(text)).toBe(0b111111)
    expect(search.present('no markers here')).toBe(0)
    expect(search.some(text)).toBe(true)
    expect(search.some('no markers here')).toBe(false)
  })

  it('agrees with a search per needle on random texts over a small alphabet', () => {
    // A seeded generator: the same texts every run.
    let seed = 42
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed % n
    }
    const word = (length: number) => Array.from({ length }, () => 'ab\n"'[random(4)]).join('')
    for (let round = 0; round < 300; round++) {
      const needles = Array.from({ length: 1 + random(5) }, () => word(1 + random(4)))
      const text = word(random(60))
      expect(sorted(all(new NeedleSearch(needles), text))).toEqual(sorted(naive(text, needles)))
    }
  })

  it('refuses an empty needle, and present() past 31 needles', () => {
    expect(() => new NeedleSearch([])).toThrow(RangeError)
    expect(() => new NeedleSearch(['a', ''])).toThrow(RangeError)
    const many = new NeedleSearch(Array.from({ length: 40 }, (_, i) => `n${i}`))
    expect(() => many.present('n1')).toThrow(RangeError)
    expect(all(many, 'n39')).toContainEqual([39, 0])
  })
})
