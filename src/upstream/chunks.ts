/** Chunks kept as they came, before small ones are copied together. */
const LOOSE_CHUNKS = 16
/** The blocks small chunks are copied into. */
const BLOCK_BYTES = 16 * 1024
/** Larger chunks are kept as they came: a Buffer's own cost is small beside their bytes. */
const SMALL_CHUNK_BYTES = BLOCK_BYTES / 4

/**
 * Bytes kept in the order they came, in memory that follows their number however they were cut: each Buffer
 * costs some hundred bytes of its own, so a body read one byte at a time, kept as it came, would cost a
 * hundred times its size. The first chunks are kept as they are (most bodies come in a few, and are never
 * copied); past those, small chunks are copied into blocks, each byte once. A block is closed only for a chunk
 * that does not fit in it: the room it leaves is less than that chunk, so the bytes take at most about twice
 * their size.
 */
export class ChunkList {
  readonly #pieces: Buffer[] = []
  #size = 0
  // The block small chunks are being copied into, and how much of it is in use; not yet in `#pieces`.
  #block: Buffer | undefined
  #used = 0

  get size(): number {
    return this.#size
  }

  /** How many Buffers hold the bytes. */
  get count(): number {
    return this.#pieces.length + (this.#block === undefined ? 0 : 1)
  }

  /** Keeps `chunk` as it is or a copy of it: neither it nor what `pieces` gives may be changed afterwards. */
  push(chunk: Buffer): void {
    this.#size += chunk.length
    const block = this.#block
    if (block !== undefined && chunk.length <= block.length - this.#used) {
      chunk.copy(block, this.#used)
      this.#used += chunk.length
      return
    }
    this.#closeBlock()
    if (this.#pieces.length < LOOSE_CHUNKS || chunk.length > SMALL_CHUNK_BYTES) {
      this.#pieces.push(chunk)
      return
    }
    // Never read past `#used`: the rest of the block is not initialised.
    this.#block = Buffer.allocUnsafeSlow(BLOCK_BYTES)
    chunk.copy(this.#block)
    this.#used = chunk.length
  }

  /** The last `n` bytes kept, or all of them when fewer were: across the Buffers that hold them if need be. */
  tail(n: number): Buffer {
    const parts: Buffer[] = []
    let needed = n
    if (this.#block !== undefined) {
      parts.push(this.#block.subarray(Math.max(0, this.#used - needed), this.#used))
      needed -= this.#used
    }
    for (let at = this.#pieces.length - 1; at >= 0 && needed > 0; at--) {
      const piece = this.#pieces[at]!
      parts.push(piece.subarray(Math.max(0, piece.length - needed)))
      needed -= piece.length
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts.reverse())
  }

  /** The bytes kept, as the Buffers that hold them, in order. */
  pieces(): readonly Buffer[] {
    this.#closeBlock()
    return this.#pieces
  }

  /** The bytes kept, in one Buffer: the only one as it is, else a copy of them all. */
  bytes(): Buffer {
    const pieces = this.pieces()
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, this.#size)
  }

  #closeBlock(): void {
    if (this.#block === undefined) return
    this.#pieces.push(this.#block.subarray(0, this.#used))
    this.#block = undefined
  }
}
