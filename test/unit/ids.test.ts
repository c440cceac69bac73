import { describe, expect, it } from 'vitest'
import { uuidv7 } from '../../src/ids.js'

describe('uuidv7()', () => {
  it('has the version 7 layout and the timestamp in its first 48 bits', () => {
    const now = Date.UTC(2026, 10, 25, 12, 0, 0, 123)
    const id = uuidv7(now)
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16)).toBe(now)
  })

  it('sorts by time and does not repeat', () => {
    const ids = Array.from({ length: 2000 }, (_, i) => uuidv7(1_700_000_000_000 + i))
    expect([...ids].sort()).toEqual(ids)
    expect(new Set(ids).size).toBe(ids.length)
  })
})
