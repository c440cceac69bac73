interface Link<V> {
  readonly key: string
  value: V
  older: Link<V> | undefined
  newer: Link<V> | undefined
}

/**
 * A map that forgets its least recently used key past `max` keys: reading or writing a key makes it the
 * most recent. Keys are kept in a list from the oldest to the newest beside the index, so that a read
 * moves a link and an eviction unlinks the oldest in constant time.
 *
 * Not `Map`'s own insertion order (delete and set again to move a key, the first key to evict): a `Map`
 * keeps a deleted key's slot until it next grows, and reading its first key steps over every such slot.
 * At 100 000 keys, with one eviction per write, that cost 20 to 37 µs per call. Nor an `LRUCache`, which
 * allocates its whole index up front: tens of milliseconds of the event loop for a store of that size
 * that may never hold more than a few keys.
 *
 * @example
 * const states = new RecentlyUsed<number>(2)
 * states.set('a', 1); states.set('b', 2); states.get('a'); states.set('c', 3)
 * states.get('b') // undefined: the least recently used, forgotten when 'c' came
 */
export class RecentlyUsed<V> {
  readonly #index = new Map<string, Link<V>>()
  #oldest: Link<V> | undefined
  #newest: Link<V> | undefined

  constructor(private readonly max: number) {}

  get size(): number {
    return this.#index.size
  }

  /** The key's value, made the most recently used. */
  get(key: string): V | undefined {
    const link = this.#index.get(key)
    if (link === undefined) return undefined
    this.#touch(link)
    return link.value
  }

  /** The key's value, leaving its place in the order as it is. */
  peek(key: string): V | undefined {
    return this.#index.get(key)?.value
  }

  /** Sets the key's value, made the most recently used; forgets the least recently used past `max`. */
  set(key: string, value: V): void {
    const link = this.#index.get(key)
    if (link !== undefined) {
      link.value = value
      this.#touch(link)
      return
    }
    const added: Link<V> = { key, value, older: this.#newest, newer: undefined }
    if (this.#newest === undefined) this.#oldest = added
    else this.#newest.newer = added
    this.#newest = added
    this.#index.set(key, added)
    if (this.#index.size > this.max) this.delete(this.#oldest!.key)
  }

  delete(key: string): void {
    const link = this.#index.get(key)
    if (link === undefined) return
    this.#index.delete(key)
    this.#unlink(link)
  }

  #touch(link: Link<V>): void {
    if (link === this.#newest) return
    this.#unlink(link)
    link.older = this.#newest
    link.newer = undefined
    this.#newest!.newer = link
    this.#newest = link
  }

  #unlink(link: Link<V>): void {
    if (link.older === undefined) this.#oldest = link.newer
    else link.older.newer = link.newer
    if (link.newer === undefined) this.#newest = link.older
    else link.newer.older = link.older
  }
}
