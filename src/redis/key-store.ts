import {
  assertSlugs,
  assertStoredSecret,
  KeyStoreError,
  type SecretStore,
  type StoredSecret,
} from '../keys/types.js'

/**
 * The part of an ioredis client the secret store uses, written structurally so a client from any ioredis
 * copy (major 5 or 6) is accepted.
 *
 * @example
 * import { Redis } from 'ioredis'
 * const client: RedisSecretClient = new Redis(process.env.REDIS_URL!)
 */
export interface RedisSecretClient {
  /** `'ready'` once connected; the store refuses to queue commands in any other state. */
  readonly status: string
  hget(key: string, field: string): Promise<string | null>
  hgetall(key: string): Promise<Record<string, string>>
  smembers(key: string): Promise<string[]>
  eval(script: string, numberOfKeys: number, ...args: string[]): Promise<unknown>
}

export interface RedisSecretStoreOptions {
  /**
   * Put before every key. Default `'aigw:keys:'`. On Redis Cluster include a hash tag (`'{aigw}:keys:'`):
   * writes update a provider's hash and the provider index in one script, which needs one slot.
   */
  prefix?: string
}

const DEFAULT_PREFIX = 'aigw:keys:'
const FORMAT_VERSION = 1

// Both writes run as one script so the provider index never misses a provider that has keys.
const PUT_SCRIPT = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
return 1`

const DELETE_SCRIPT = `
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
return removed`

/**
 * A {@link SecretStore} on a host-created ioredis client: one hash per provider (`<prefix>p:<provider>`,
 * field = alias, value = JSON of the record) plus a set of providers (`<prefix>index`) for listing
 * everything without SCAN. When the client is not connected every call rejects at once with
 * `store-unavailable` instead of waiting in ioredis's offline queue.
 *
 * @example
 * const keys = createKeyRing({
 *   store: createRedisSecretStore(new Redis(process.env.REDIS_URL!), { prefix: 'myapp:keys:' }),
 *   masterKey: process.env.MASTER_KEY!,
 * })
 */
export function createRedisSecretStore(
  client: RedisSecretClient,
  options: RedisSecretStoreOptions = {},
): SecretStore {
  const prefix = options.prefix ?? DEFAULT_PREFIX
  if (typeof prefix !== 'string') throw new KeyStoreError('invalid-options', 'prefix must be a string')
  const indexKey = `${prefix}index`
  // Slugs never contain ':', so a provider's hash can never be the index key.
  const hashKey = (provider: string) => `${prefix}p:${provider}`

  return {
    async get(provider, alias) {
      assertSlugs(provider, alias)
      const value = await call(client, () => client.hget(hashKey(provider), alias))
      return value === null ? undefined : decode(provider, alias, value)
    },

    async put(record) {
      assertSlugs(record.provider, record.alias)
      const args = [record.alias, encode(record), record.provider]
      await call(client, () => client.eval(PUT_SCRIPT, 2, hashKey(record.provider), indexKey, ...args))
    },

    async delete(provider, alias) {
      assertSlugs(provider, alias)
      const removed = await call(client, () =>
        client.eval(DELETE_SCRIPT, 2, hashKey(provider), indexKey, alias, provider),
      )
      return removed === 1
    },

    async list(provider) {
      if (provider !== undefined) assertSlugs(provider)
      const providers =
        provider === undefined ? (await call(client, () => client.smembers(indexKey))).sort() : [provider]
      const lists = await Promise.all(providers.map((p) => listProvider(p)))
      return lists.flat()
    },
  }

  async function listProvider(provider: string): Promise<StoredSecret[]> {
    const fields = await call(client, () => client.hgetall(hashKey(provider)))
    return Object.keys(fields)
      .sort()
      .map((alias) => decode(provider, alias, fields[alias]!))
  }
}

async function call<T>(client: RedisSecretClient, command: () => Promise<T>): Promise<T> {
  // ioredis would otherwise queue the command until the connection returns, and the request would hang.
  if (client.status !== 'ready') {
    throw new KeyStoreError(
      'store-unavailable',
      `Redis client is not ready (status '${client.status}'); not queueing the command`,
    )
  }
  try {
    return await command()
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause)
    throw new KeyStoreError('store-unavailable', `Redis secret store call failed: ${detail}`, { cause })
  }
}

function encode(record: StoredSecret): string {
  const { ciphertext, keyId, hint, createdAt, updatedAt } = record
  return JSON.stringify({ v: FORMAT_VERSION, ciphertext, keyId, hint, createdAt, updatedAt })
}

function decode(provider: string, alias: string, value: string): StoredSecret {
  let parsed: unknown
  try {
    parsed = JSON.parse(value)
  } catch {
    parsed = undefined
  }
  const fields = typeof parsed === 'object' && parsed !== null ? parsed : {}
  return assertStoredSecret({ ...fields, provider, alias }, `Redis (${provider}/${alias})`)
}
