import { describe, expect, it } from 'vitest'
import { RecordTable } from '../../src/logs/record-table.js'
import type { LogRecord } from '../../src/logs/types.js'
import { sampleRecord } from '../helpers/log-store.js'
import { seededRandom } from '../helpers/random.js'

function idOf(n: number): string {
  return `00000000-0000-7000-8000-${n.toString(16).padStart(12, '0')}`
}

function sequential(n: number): LogRecord {
  return sampleRecord({ id: idOf(n), createdAt: n })
}

describe('RecordTable', () => {
  it('keeps ids lower-case and finds them in any case', () => {
    const table = new RecordTable()
    const id = '019ABC12-3def-7A01-8b2c-3D4E5F607182'
    table.add(sampleRecord({ id }), undefined)
    expect(table.record(table.find(id)).id).toBe(id.toLowerCase())
    expect(table.find(id.toLowerCase())).toBe(table.find(id))
    expect(table.find('not-an-id')).toBe(-1)
  })

  it('gives back every field as written, null and absent ones too', () => {
    const table = new RecordTable()
    const record = sampleRecord({
      ttfbMs: null,
      tokensIn: 0,
      tokensOut: null,
      cost: -0.5,
      step: 2,
      eventId: 'event-1',
      errorCode: 2003,
      principal: 'user-1',
      feedback: -1,
      score: 0,
      metadata: { team: 'a', n: 1, on: true },
      route: { name: 'r', version: 1, path: ['a', 'b'], variants: { split: '50%' } },
    })
    table.add(record, undefined)
    const read = table.record(table.find(record.id))
    expect(read).toEqual(record)
    expect(Object.keys(read)).toEqual(Object.keys(record))
    expect('attemptLog' in read).toBe(false)
    // A copy: changing it changes nothing held.
    read.metadata.team = 'b'
    read.route!.path.push('c')
    expect(table.record(table.find(record.id))).toEqual(record)
  })

  it('refuses a second record with the same id', () => {
    const table = new RecordTable()
    expect(table.add(sequential(1), undefined)).toBe(true)
    expect(table.add({ ...sequential(1), createdAt: 99 }, undefined)).toBe(false)
    expect(table.size).toBe(1)
    expect(table.record(table.find(idOf(1))).createdAt).toBe(1)
  })

  it('keeps write order when a ring that deletions emptied is rebuilt', () => {
    const table = new RecordTable()
    for (let n = 0; n < 1500; n++) table.add(sequential(n), undefined)
    // Every record but each tenth goes, the oldest staying: the ring's rows stay taken up to the newest.
    for (let n = 1; n < 1500; n++) if (n % 10 !== 0) table.remove(table.find(idOf(n)), false)
    // Enough writes to come round to the oldest: the ring is rebuilt without the empty rows.
    for (let n = 1500; n < 3500; n++) table.add(sequential(n), undefined)
    const expected = [
      ...Array.from({ length: 150 }, (_, i) => i * 10),
      ...Array.from({ length: 2000 }, (_, i) => 1500 + i),
    ]
    expect([...table.rows()].map((row) => table.record(row).createdAt)).toEqual(expected)
    for (const n of expected) expect(table.record(table.find(idOf(n))).createdAt).toBe(n)
    expect(table.find(idOf(1))).toBe(-1)
  })

  // Against a Map and an array in write order: random adds and removals, through rebuilds of the ring
  // (grown, and compacted when removals leave it mostly empty) and shifts in the index after removals.
  it.each([1, 2, 3])(
    'finds and orders records as a Map would, through removals and rebuilds (seed %i)',
    (seed) => {
      const random = seededRandom(seed)
      const table = new RecordTable()
      const held: number[] = []
      let next = 0
      for (let step = 0; step < 20_000; step++) {
        const removing = held.length > 0 && random(100) < (held.length > 3000 ? 60 : 40)
        if (removing) {
          // The oldest mostly, as the store evicts; anywhere now and then, as a deletion does.
          const at = random(10) < 7 ? 0 : random(held.length)
          const [n] = held.splice(at, 1)
          const row = at === 0 ? table.oldest() : table.find(idOf(n!))
          expect(table.record(row).createdAt).toBe(n)
          table.remove(row, false)
        } else {
          table.add(sequential(next), undefined)
          held.push(next++)
        }
        if (step % 997 === 0) {
          expect([...table.rows()].map((row) => table.record(row).createdAt)).toEqual(held)
          for (const n of held.slice(0, 50)) expect(table.find(idOf(n))).toBeGreaterThanOrEqual(0)
        }
      }
      expect(table.size).toBe(held.length)
      const kept = new Set(held)
      for (let n = 0; n < next; n++) expect(table.find(idOf(n)) >= 0).toBe(kept.has(n))
    },
  )
})
