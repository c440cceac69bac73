import { randomInt } from 'node:crypto'

// The memory store's ids, and the index from an id to its row, in typed arrays rather than a string per
// record in a `Map`. With the store full, every record written adds one id and drops the oldest: a `Map`
// of 10,000 string keys churned so cost about a microsecond a record in its lookups and deletions (perf,
// cpu-clock samples under the bench's load: the table is too large for the cache, and each probe also
// reads the key string), and each id string lived through young collections to die in the old space.
// Here an id is 36 bytes in a column and a slot is an `Int32Array` entry: no object per record at all.

/** A log id's length: a UUID, as `isLogId` accepts. */
const ID_BYTES = 36
const ID_WORDS = ID_BYTES / 4
const EMPTY = 0

/**
 * Ids of rows `0 .. capacity - 1`, found by an open-addressing table with linear probing, at most half full
 * (twice as many slots as rows). A slot holds its row + 1; 0 is empty. Deletion shifts the entries after
 * it back rather than leave tombstones, so a table churned forever never fills with them.
 */
export class IdIndex {
  readonly #bytes: Buffer
  /** The same memory as `#bytes`, a word at a time: ids are compared and hashed as 9 words. */
  readonly #words: Uint32Array
  /** Each row's hash, kept: a probe compares hashes before it reads ids, and a removal needs no rehashing. */
  readonly #hashes: Int32Array
  readonly #slots: Int32Array
  readonly #slotMask: number
  /** Row where an id looked for is written to be hashed and compared: the one past the last. */
  readonly #probe: number
  // A seed per index: a host that writes records with chosen ids cannot make them collide.
  readonly #seed = randomInt(2 ** 31)

  constructor(capacity: number) {
    this.#bytes = Buffer.alloc((capacity + 1) * ID_BYTES)
    this.#words = new Uint32Array(this.#bytes.buffer, this.#bytes.byteOffset, (capacity + 1) * ID_WORDS)
    this.#hashes = new Int32Array(capacity + 1)
    let slots = 2
    while (slots < capacity * 2) slots *= 2
    this.#slots = new Int32Array(slots)
    this.#slotMask = slots - 1
    this.#probe = capacity
  }

  /** The row holding `id` (a UUID, lower-case), or -1. */
  find(id: string): number {
    this.#write(this.#probe, id)
    const slot = this.#slotOf(this.#probe)
    return slot < 0 ? -1 : this.#slots[slot]! - 1
  }

  /**
   * Gives `row` (free) the id `id` (a UUID, lower-case); false, and the row left free, when another row
   * has that id.
   */
  add(row: number, id: string): boolean {
    this.#write(row, id)
    if (this.#slotOf(row) >= 0) return false
    this.#insert(row)
    return true
  }

  /** Gives `row` the id of `from`'s row `fromRow`, which `from` keeps: for a table moving its rows. */
  copy(from: IdIndex, fromRow: number, row: number): void {
    from.#bytes.copy(this.#bytes, row * ID_BYTES, fromRow * ID_BYTES, (fromRow + 1) * ID_BYTES)
    this.#hashes[row] = this.#hash(row)
    this.#insert(row)
  }

  /** Frees `row`, which must hold an id. */
  remove(row: number): void {
    const slots = this.#slots
    const mask = this.#slotMask
    const hashes = this.#hashes
    let hole = hashes[row]! & mask
    while (slots[hole] !== row + 1) hole = (hole + 1) & mask
    // Each entry after the hole, up to the next empty slot, moves into it unless its own place (where its
    // probe starts) lies cyclically after the hole, up to the entry's slot: it would no longer be found.
    let next = (hole + 1) & mask
    while (slots[next] !== EMPTY) {
      const place = hashes[slots[next]! - 1]! & mask
      if (((next - place) & mask) >= ((next - hole) & mask)) {
        slots[hole] = slots[next]!
        hole = next
      }
      next = (next + 1) & mask
    }
    slots[hole] = EMPTY
  }

  /** The id of `row`, which must hold one. */
  idOf(row: number): string {
    return this.#bytes.toString('latin1', row * ID_BYTES, (row + 1) * ID_BYTES)
  }

  /** The slot of the row other than `row` whose id equals the one written at `row`, or -1. */
  #slotOf(row: number): number {
    const slots = this.#slots
    const hashes = this.#hashes
    const mask = this.#slotMask
    const hash = hashes[row]!
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const held = slots[slot]!
      if (held === EMPTY) return -1
      const other = held - 1
      if (other !== row && hashes[other] === hash && this.#sameId(other, row)) return slot
    }
  }

  #insert(row: number): void {
    const slots = this.#slots
    const mask = this.#slotMask
    let slot = this.#hashes[row]! & mask
    while (slots[slot] !== EMPTY) slot = (slot + 1) & mask
    slots[slot] = row + 1
  }

  /** Writes `id` at `row` and keeps its hash. */
  #write(row: number, id: string): void {
    this.#bytes.write(id, row * ID_BYTES, ID_BYTES, 'latin1')
    this.#hashes[row] = this.#hash(row)
  }

  #sameId(a: number, b: number): boolean {
    const words = this.#words
    const x = a * ID_WORDS
    const y = b * ID_WORDS
    for (let i = 0; i < ID_WORDS; i++) if (words[x + i] !== words[y + i]) return false
    return true
  }

  /** FNV-1a over the id's words, seeded, then mixed so that the low bits the mask keeps depend on all. */
  #hash(row: number): number {
    const words = this.#words
    const at = row * ID_WORDS
    let hash = this.#seed ^ 0x811c9dc5
    for (let i = 0; i < ID_WORDS; i++) hash = Math.imul(hash ^ words[at + i]!, 0x01000193)
    hash ^= hash >>> 16
    hash = Math.imul(hash, 0x85ebca6b)
    return hash ^ (hash >>> 13)
  }
}
