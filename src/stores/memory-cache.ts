import { LRUCache } from 'lru-cache'
import type { CacheEntry, CacheStore } from './types.js'

/** Bounds of the in-memory cache. */
export interface MemoryCacheStoreOptions {
  /** Total size of the kept entries (bodies, headers and a small per-entry overhead). Default 256 MiB. */
  maxBytes?: number
  /** At most this many entries. Default 10 000. */
  maxEntries?: number
}

const DEFAULT_MAX_BYTES = 256 * 1024 * 1024
const DEFAULT_MAX_ENTRIES = 10_000
/** Rough cost of the entry object, its key and the LRU bookkeeping, so tiny entries are not counted as free. */
const ENTRY_OVERHEAD_BYTES = 128

/**
 * A bounded, process-local cache store: least recently used entries are evicted first once either bound is
 * reached, and each entry expires after its own TTL. It answers synchronously. Entries are kept by
 * reference, so a body must not be changed after it is stored.
 *
 * @example
 * const gateway = createGateway({ cache: { store: createMemoryCacheStore({ maxBytes: 64 * 1024 * 1024 }) } })
 */
export function createMemoryCacheStore(options: MemoryCacheStoreOptions = {}): CacheStore {
  // lru-cache refuses an entry larger than maxSize (and drops any older value under that key), so an
  // oversized response is simply not cached.
  const entries = new LRUCache<string, CacheEntry>({
    max: options.maxEntries ?? DEFAULT_MAX_ENTRIES,
    maxSize: options.maxBytes ?? DEFAULT_MAX_BYTES,
    sizeCalculation: entrySize,
  })
  return {
    get(key) {
      return entries.get(key)
    },
    set(key, entry, ttlSeconds) {
      // lru-cache reads a ttl of 0 as "never expires"; a non-positive TTL means "do not keep".
      if (!(ttlSeconds > 0)) {
        entries.delete(key)
        return
      }
      entries.set(key, entry, { ttl: ttlSeconds * 1000 })
    },
    delete(key) {
      entries.delete(key)
    },
  }
}

function entrySize(entry: CacheEntry): number {
  let size = ENTRY_OVERHEAD_BYTES + entry.body.byteLength
  for (const [name, value] of Object.entries(entry.headers)) size += name.length + value.length
  return size
}
