import { randomUUID } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { IdIndex } from '../../src/logs/id-index.js'
import { seededRandom } from '../helpers/random.js'

type Random = (n: number) => number

/** A UUID-shaped id of seeded random hex digits. */
function randomId(random: Random): string {
  let hex = ''
  for (let i = 0; i < 32; i++) hex += random(16).toString(16)
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** Ids that differ in one character only, where sequential ids (UUIDv7's time, a counter) differ. */
function nearId(n: number): string {
  return `00000000-0000-7000-8000-${n.toString(16).padStart(12, '0')}`
}

describe('IdIndex', () => {
  it('finds what it was given and nothing else', () => {
    const index = new IdIndex(8)
    const id = randomUUID()
    expect(index.find(id)).toBe(-1)
    expect(index.add(3, id)).toBe(true)
    expect(index.find(id)).toBe(3)
    expect(index.idOf(3)).toBe(id)
    expect(index.find(randomUUID())).toBe(-1)
  })

  it('refuses an id another row holds, and leaves that row as it was', () => {
    const index = new IdIndex(8)
    const id = nearId(1)
    expect(index.add(0, id)).toBe(true)
    expect(index.add(1, id)).toBe(false)
    expect(index.find(id)).toBe(0)
    index.remove(0)
    expect(index.find(id)).toBe(-1)
    expect(index.add(1, id)).toBe(true)
    expect(index.find(id)).toBe(1)
  })

  // Small tables collide all the time: runs of occupied slots that wrap around the end, removals from the
  // middle of a run. Every step is checked against a Map.
  it.each([
    [1, 'random ids', randomId],
    [2, 'ids that differ in their last characters', (random: Random) => nearId(random(64))],
  ])('agrees with a Map over 20,000 random adds and removals (case %i: %s)', (seed, _, idFrom) => {
    const random = seededRandom(seed * 7919)
    for (const capacity of [1, 2, 3, 8, 50]) {
      const index = new IdIndex(capacity)
      const byId = new Map<string, number>()
      const rowIds = new Map<number, string>()
      for (let step = 0; step < 20_000 / 5; step++) {
        const row = random(capacity)
        const held = rowIds.get(row)
        if (held !== undefined) {
          index.remove(row)
          byId.delete(held)
          rowIds.delete(row)
        } else {
          const id = idFrom(random)
          const added = index.add(row, id)
          expect(added).toBe(!byId.has(id))
          if (added) {
            byId.set(id, row)
            rowIds.set(row, id)
          }
        }
        for (const [id, at] of byId) expect(index.find(id)).toBe(at)
        for (const [at, id] of rowIds) expect(index.idOf(at)).toBe(id)
        const other = idFrom(random)
        expect(index.find(other)).toBe(byId.get(other) ?? -1)
      }
    }
  })

  it('gives a copy the rows of another index, under new numbers', () => {
    const from = new IdIndex(4)
    const ids = [randomUUID(), randomUUID(), randomUUID()]
    for (const [row, id] of ids.entries()) expect(from.add(row, id)).toBe(true)
    from.remove(1)
    const to = new IdIndex(8)
    to.copy(from, 0, 5)
    to.copy(from, 2, 6)
    expect(to.find(ids[0]!)).toBe(5)
    expect(to.find(ids[2]!)).toBe(6)
    expect(to.find(ids[1]!)).toBe(-1)
    expect(from.find(ids[0]!)).toBe(0)
  })
})
