// Bodies are kept as bytes in shared off-heap slabs rather than as strings: a kept string is one more object
// every young collection copies and promotes (with logs on, those copies were half the pause: 2.2 ms against
// 1.1 ms off), where bytes in a slab are one memcpy and no object. Slabs whose bodies have all gone are used
// again rather than let go, so a full store writes without asking for new memory: new off-heap memory counts
// towards V8's next full collection, which a store that allocated a slab every few dozen records ran into.
export const SLAB_BYTES = 64 * 1024
// A pair of bodies larger than this gets a slab of its own, let go with its record: a few of them would
// otherwise leave most of a shared slab empty.
const OWN_SLAB_BYTES = 16 * 1024
// Emptied slabs kept for the next writes; beyond them (after a deletion, say) an emptied slab is let go.
const MAX_FREE_SLABS = 8

/** Where a record's bodies are kept; `slab` is `undefined` when both are null. */
export interface BodyPlace {
  slab: Slab | undefined
  /** The request body runs from `start` to `middle`, the response body from there to `end`. */
  start: number
  middle: number
  end: number
  /** `REQUEST_NULL` and `RESPONSE_NULL`: which body was null rather than empty. */
  nulls: number
}

const REQUEST_NULL = 1
const RESPONSE_NULL = 2

/** The bodies' bytes, as views on their slab; `undefined` for one that was null. */
export function bodiesAt(place: BodyPlace): { request: Buffer | undefined; response: Buffer | undefined } {
  const { slab, start, middle, end, nulls } = place
  if (slab === undefined) return { request: undefined, response: undefined }
  return {
    request: nulls & REQUEST_NULL ? undefined : slab.bytes.subarray(start, middle),
    response: nulls & RESPONSE_NULL ? undefined : slab.bytes.subarray(middle, end),
  }
}

/** A body as a record has it (text or null), or as captured (bytes, or `undefined` for none). */
export type Body = string | null | Buffer | undefined

export function byteLength(body: Body): number {
  if (body === null || body === undefined) return 0
  return typeof body === 'string' ? Buffer.byteLength(body) : body.length
}

/** Writes the body at `at`; the bytes written. */
function put(slab: Buffer, body: Body, at: number): number {
  if (body === null || body === undefined) return 0
  return typeof body === 'string' ? slab.write(body, at) : body.copy(slab, at)
}

interface Slab {
  readonly bytes: Buffer
  /** Kept records with their bodies here: at 0 the slab is free again. */
  live: number
  /** Where the next bodies go; only the slab being filled grows. */
  used: number
}

/**
 * The slabs that hold the store's bodies. A slab is free again once none of the kept records has bodies in
 * it, so a few records left among many deleted can keep whole slabs: `heldBytes`, the memory of every slab
 * in use, is what the store bounds besides the bodies' own bytes.
 */
export class BodySlabs {
  heldBytes = 0
  #filling: Slab | undefined
  #free: Slab[] = []

  /** Writes the bodies (`bytes` long in all, as UTF-8) and sets where they are. */
  write(place: BodyPlace, request: Body, response: Body, bytes: number): void {
    const slab = bytes > OWN_SLAB_BYTES ? this.#own(bytes) : this.#room(bytes)
    const start = slab.used
    const middle = start + put(slab.bytes, request, start)
    const end = middle + put(slab.bytes, response, middle)
    slab.used = end
    slab.live++
    place.slab = slab
    place.start = start
    place.middle = middle
    place.end = end
    place.nulls = (request == null ? REQUEST_NULL : 0) | (response == null ? RESPONSE_NULL : 0)
  }

  /**
   * Lets go of the bodies, their slab freed when they were its last; `erase` zeroes their bytes now rather
   * than when the slab is next written over (a record deleted, not merely dropped for space).
   */
  release(place: BodyPlace, erase: boolean): void {
    const slab = place.slab
    if (slab === undefined) return
    place.slab = undefined
    if (erase) slab.bytes.fill(0, place.start, place.end)
    if (--slab.live > 0) return
    if (slab === this.#filling) {
      slab.used = 0
      return
    }
    this.heldBytes -= slab.bytes.length
    if (slab.bytes.length === SLAB_BYTES && this.#free.length < MAX_FREE_SLABS) {
      slab.used = 0
      this.#free.push(slab)
    }
  }

  #own(bytes: number): Slab {
    this.heldBytes += bytes
    return { bytes: Buffer.allocUnsafeSlow(bytes), live: 0, used: 0 }
  }

  /** The slab being filled, or the next one when these bytes do not fit in what is left of it. */
  #room(bytes: number): Slab {
    const filling = this.#filling
    if (filling !== undefined && filling.used + bytes <= SLAB_BYTES) return filling
    // The slab it leaves stays held until its last record goes.
    const next = this.#free.pop() ?? { bytes: Buffer.allocUnsafeSlow(SLAB_BYTES), live: 0, used: 0 }
    this.heldBytes += SLAB_BYTES
    this.#filling = next
    return next
  }
}
