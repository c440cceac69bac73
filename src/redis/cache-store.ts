import type { CacheEntry, CacheStore } from '../stores/types.js'
import { assertReady, type RedisClientLike } from './redis-types.js'

/** Where the Redis cache store keeps its entries. */
export interface RedisCacheStoreOptions {
  /** Put before every key. Default `'aigw:cache:'`. */
  prefix?: string
}

const DEFAULT_PREFIX = 'aigw:cache:'
/** Bumped when the stored layout changes, so instances on an older layout read newer values as misses. */
const FORMAT_VERSION = 1
const LENGTH_BYTES = 4

interface StoredHead {
  v: number
  status: number
  headers: Record<string, string>
  storedAt: number
}

/**
 * A cache store on a host-created ioredis client. Each entry is one binary value written with `SET … PX`:
 * a 4-byte big-endian length, that many bytes of JSON `{ v: 1, status, headers, storedAt }`, then the raw
 * body. A value that does not parse reads as a miss. When the client is not connected every call rejects at
 * once rather than waiting in ioredis's offline queue, so the gateway can fall back without delay.
 *
 * @example
 * const cache = createRedisCacheStore(new Redis(process.env.REDIS_URL!), { prefix: 'myapp:cache:' })
 */
export function createRedisCacheStore(
  client: RedisClientLike,
  options: RedisCacheStoreOptions = {},
): CacheStore {
  const prefix = options.prefix ?? DEFAULT_PREFIX
  return {
    async get(key) {
      assertReady(client)
      const value = await client.getBuffer(prefix + key)
      return value === null ? undefined : decodeEntry(value)
    },
    async set(key, entry, ttlSeconds) {
      assertReady(client)
      const ttlMs = Math.ceil(ttlSeconds * 1000)
      // SET rejects a non-positive PX; a TTL that has already run out means "do not keep".
      if (!(ttlMs > 0)) {
        await client.del(prefix + key)
        return
      }
      await client.set(prefix + key, encodeEntry(entry), 'PX', ttlMs)
    },
    async delete(key) {
      assertReady(client)
      await client.del(prefix + key)
    },
  }
}

function encodeEntry(entry: CacheEntry): Buffer {
  const head: StoredHead = {
    v: FORMAT_VERSION,
    status: entry.status,
    headers: entry.headers,
    storedAt: entry.storedAt,
  }
  const headBytes = Buffer.from(JSON.stringify(head))
  const length = Buffer.alloc(LENGTH_BYTES)
  length.writeUInt32BE(headBytes.byteLength)
  return Buffer.concat([length, headBytes, entry.body])
}

function decodeEntry(value: Buffer): CacheEntry | undefined {
  if (value.byteLength < LENGTH_BYTES) return undefined
  const headLength = value.readUInt32BE(0)
  const bodyStart = LENGTH_BYTES + headLength
  if (bodyStart > value.byteLength) return undefined
  const head = parseHead(value.subarray(LENGTH_BYTES, bodyStart))
  if (head === undefined) return undefined
  return {
    status: head.status,
    headers: head.headers,
    // A plain view over the same bytes: no copy, and callers see a Uint8Array rather than a Buffer.
    body: new Uint8Array(value.buffer, value.byteOffset + bodyStart, value.byteLength - bodyStart),
    storedAt: head.storedAt,
  }
}

function parseHead(bytes: Buffer): StoredHead | undefined {
  let head: unknown
  try {
    head = JSON.parse(bytes.toString('utf8'))
  } catch {
    return undefined
  }
  if (typeof head !== 'object' || head === null) return undefined
  const { v, status, headers, storedAt } = head as Partial<StoredHead>
  if (v !== FORMAT_VERSION || !Number.isInteger(status) || typeof storedAt !== 'number') return undefined
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) return undefined
  if (!Object.values(headers).every((value) => typeof value === 'string')) return undefined
  return head as StoredHead
}
