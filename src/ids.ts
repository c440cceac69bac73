import { randomFillSync } from 'node:crypto'

// Random bytes are drawn in batches: one syscall per 256 ids instead of one per id.
const pool = Buffer.allocUnsafe(16 * 256)
let poolOffset = pool.length
const hex = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

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
  const b = pool.subarray(poolOffset, poolOffset + 16)
  poolOffset += 16
  const high = Math.floor(now / 0x1000000)
  b[0] = (high >>> 16) & 0xff
  b[1] = (high >>> 8) & 0xff
  b[2] = high & 0xff
  b[3] = (now >>> 16) & 0xff
  b[4] = (now >>> 8) & 0xff
  b[5] = now & 0xff
  b[6] = 0x70 | (b[6]! & 0x0f)
  b[8] = 0x80 | (b[8]! & 0x3f)
  let id = ''
  for (let i = 0; i < 16; i++) {
    id += hex[b[i]!]
    if (i === 3 || i === 5 || i === 7 || i === 9) id += '-'
  }
  return id
}
