/** One key's expiry as it was when pushed; `serial` tells this life of the key from a later one. */
export interface Expiry {
  readonly at: number
  readonly key: string
  readonly serial: number
}

/**
 * Keys by the time they expire, earliest first: a binary heap. A key whose expiry moves, or that is
 * forgotten, is not searched for: it is pushed again (or not at all) and its old entries stay until they
 * come to the top, where `isCurrent` tells them apart and they are dropped. So that they cannot pile up,
 * `prune` drops them all at once, for the owner to call when the queue has grown well past its keys.
 *
 * @example
 * const expiries = new ExpiryQueue((entry) => states.peek(entry.key)?.serial === entry.serial)
 * expiries.push({ at: 60_000, key: 'a', serial: 1 })
 * expiries.takeExpired(60_000) // 'a'
 */
export class ExpiryQueue {
  #heap: Expiry[] = []

  constructor(private readonly isCurrent: (entry: Expiry) => boolean) {}

  /** Entries held, stale ones included. */
  get size(): number {
    return this.#heap.length
  }

  push(entry: Expiry): void {
    this.#heap.push(entry)
    this.#siftUp(this.#heap.length - 1)
  }

  /** Takes out and answers the key that expired first, if one has by `now`. */
  takeExpired(now: number): string | undefined {
    while (this.#heap.length > 0) {
      const top = this.#heap[0]!
      const current = this.isCurrent(top)
      if (current && top.at > now) return undefined
      this.#removeTop()
      if (current) return top.key
    }
    return undefined
  }

  /** Drops every stale entry. */
  prune(): void {
    this.#heap = this.#heap.filter(this.isCurrent)
    for (let index = (this.#heap.length >> 1) - 1; index >= 0; index--) this.#siftDown(index)
  }

  #removeTop(): void {
    const last = this.#heap.pop()!
    if (this.#heap.length === 0) return
    this.#heap[0] = last
    this.#siftDown(0)
  }

  #siftUp(index: number): void {
    const heap = this.#heap
    while (index > 0) {
      const parent = (index - 1) >> 1
      if (heap[parent]!.at <= heap[index]!.at) return
      this.#swap(index, parent)
      index = parent
    }
  }

  #siftDown(index: number): void {
    const heap = this.#heap
    for (;;) {
      const left = 2 * index + 1
      const right = left + 1
      let smallest = index
      if (left < heap.length && heap[left]!.at < heap[smallest]!.at) smallest = left
      if (right < heap.length && heap[right]!.at < heap[smallest]!.at) smallest = right
      if (smallest === index) return
      this.#swap(index, smallest)
      index = smallest
    }
  }

  #swap(a: number, b: number): void {
    const heap = this.#heap
    const held = heap[a]!
    heap[a] = heap[b]!
    heap[b] = held
  }
}
