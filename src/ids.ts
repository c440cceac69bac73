import { randomFillSync } from 'node:crypto'

// Random bytes are drawn in batches: one syscall per 256 ids instead of one per id.
const pool = Buffer.allocUnsafe(16 * 256)
let poolOffset = pool.length
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1')
// The id is written here as text (its dashes in place already) and read out as one string: a string built by
// concatenation is a rope of 20 pieces, which every later read of the id (its checks, its header, the log
// store's index) walks or first copies flat.
const text = Buffer.alloc(36, '-')
// Where each of the 16 bytes' two digits go: 8-4-4-4-12.
const DIGIT_AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34]

/**
 * A lowercase UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits, so ids sort by time.
 *
 * @example
 * uuidv7() // '019abc12-3def-7a01-8b2c-3d4e5f607182'
 */
export function uuidv7(now = Date.now()): string {
  if (poolOffset + 16 > pool.length) {
    randomFillSync(pool)
    poolOffset = 0
  }
  // Read and written in place in the pool: a view of it would be a new typed array per id.
  const o = poolOffset
  poolOffset += 16
  const high = Math.floor(now / 0x1000000)
  pool[o] = (high >>> 16) & 0xff
  pool[o + 1] = (high >>> 8) & 0xff
  pool[o + 2] = high & 0xff
  pool[o + 3] = (now >>> 16) & 0xff
  pool[o + 4] = (now >>> 8) & 0xff
  pool[o + 5] = now & 0xff
  pool[o + 6] = 0x70 | (pool[o + 6]! & 0x0f)
  pool[o + 8] = 0x80 | (pool[o + 8]! & 0x3f)
  for (let i = 0; i < 16; i++) {
    const at = DIGIT_AT[i]!
    const byte = pool[o + i]!
    text[at] = HEX_DIGITS[byte >> 4]!
    text[at + 1] = HEX_DIGITS[byte & 15]!
  }
  return text.toString('latin1')
}
