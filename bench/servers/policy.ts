import { readFileSync } from 'node:fs'
import {
  createGateway,
  createMemoryCacheStore,
  createMemoryLimitStore,
  type GatewayOptions,
} from 'ai-gateway-middleware'
import { aiGateway } from 'ai-gateway-middleware/fastify'
import { createRedisCacheStore, createRedisLimitStore } from 'ai-gateway-middleware/redis'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { benchRoute } from './route.js'
import { count, gatewayOptions, onShutdown, reportListening } from './shared.js'

// The Fastify gateway of `gateway-fastify.ts` with one policy added, a response cache or a rate limit, on the
// memory store or on Redis, or a dynamic route in memory. Each `gateway-fastify-*` server is one call to
// `startPolicyGateway`.

/**
 * Every answer after the first comes from the cache: the bench repeats one identical request. A day, so that
 * the entry the answer check stored outlives the run, even one of several rounds on servers kept running.
 */
const CACHE_TTL_SECONDS = 86_400
/** A limit no run comes near, so that every request passes through the whole limit step and none is refused. */
const NEVER_REACHED = 1e9
const LIMIT_WINDOW_SECONDS = 60
const REDIS_CONNECT_MS = 5_000
const SCAN_BATCH = 500

export type Policy = 'cache' | 'limit' | 'route'
export type StoreKind = 'memory' | 'redis'

export async function startPolicyGateway(policy: Policy, storeKind: StoreKind): Promise<void> {
  if (policy === 'route' && storeKind !== 'memory') throw new Error('the route row keeps its route in memory')
  const redis = storeKind === 'redis' ? await connectRedis() : undefined
  // Per process, so that neither a concurrent run nor a previous one shares entries or counters with this one.
  const prefix = `aigw-bench:${process.pid}:`
  if (redis) onShutdown(() => removeKeys(redis.client, prefix))
  const gateway = createGateway({ ...gatewayOptions(), ...policyOptions(policy, redis?.client, prefix) })
  // A store that fails is ridden over silently (a cache miss, the limit's in-process insurance): the runner
  // reads this count so that such a row is flagged instead of passing for a store round trip.
  gateway.events.on('store:error', () => count('storeErrors'))

  const app = Fastify()
  await app.register(aiGateway, { prefix: '/ai', gateway })
  await app.listen({ host: '127.0.0.1', port: 0 })
  reportListening(app.server, redis?.localPid === undefined ? [] : [redis.localPid])
}

function policyOptions(policy: Policy, redis: Redis | undefined, prefix: string): Partial<GatewayOptions> {
  // The route and its rate element's counters in the gateway's default stores, both in memory.
  if (policy === 'route') return { routes: { definitions: [benchRoute(limitTechnique())] } }
  if (policy === 'cache') {
    const store = redis
      ? createRedisCacheStore(redis, { prefix: `${prefix}cache:` })
      : createMemoryCacheStore()
    return { cache: { ttl: CACHE_TTL_SECONDS, store } }
  }
  const store = redis ? createRedisLimitStore(redis, { prefix: `${prefix}limit:` }) : createMemoryLimitStore()
  return {
    rateLimit: { limit: NEVER_REACHED, window: LIMIT_WINDOW_SECONDS, technique: limitTechnique(), store },
  }
}

/**
 * `fixed` by default: one counter per window, so every request costs the same and the figure is the limit
 * step's own. A `sliding` window keeps a log of every admission in the window, so at bench rates its cost
 * grows with the requests already sent; `BENCH_LIMIT_TECHNIQUE=sliding` measures that instead.
 */
function limitTechnique(): 'fixed' | 'sliding' {
  const technique = process.env.BENCH_LIMIT_TECHNIQUE ?? 'fixed'
  if (technique !== 'fixed' && technique !== 'sliding') {
    throw new Error(`BENCH_LIMIT_TECHNIQUE must be 'fixed' or 'sliding', got '${technique}'`)
  }
  return technique
}

interface RedisConnection {
  readonly client: Redis
  /** The Redis server's process when it runs on this machine, so its CPU counts as the bench's own. */
  readonly localPid: number | undefined
}

/**
 * Connects as the Redis stores require (no offline queue, ready before the first request) and fails at once
 * when Redis cannot be reached, rather than leaving the runner waiting for a port.
 */
async function connectRedis(): Promise<RedisConnection> {
  const url = process.env.REDIS_URL || 'redis://127.0.0.1:6379'
  const client = new Redis(url, {
    enableOfflineQueue: false,
    lazyConnect: true,
    connectTimeout: REDIS_CONNECT_MS,
    // A connection lost mid-run must show up as store errors, not be hidden by reconnect attempts.
    retryStrategy: () => null,
  })
  client.on('error', () => {})
  try {
    await client.connect()
  } catch (error) {
    throw new Error(`Redis at ${url} is not reachable: ${(error as Error).message}`)
  }
  return { client, localPid: localRedisPid(await client.info('server')) }
}

/** Redis's `process_id`, if a process of that id on this machine is a Redis server (not one in a container). */
function localRedisPid(info: string): number | undefined {
  const pid = Number(/^process_id:(\d+)/m.exec(info)?.[1])
  if (!Number.isInteger(pid)) return undefined
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('redis') ? pid : undefined
  } catch {
    return undefined
  }
}

/** Cached answers would outlive the run by their TTL in a Redis others use too. */
async function removeKeys(client: Redis, prefix: string): Promise<void> {
  if (client.status !== 'ready') return
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', SCAN_BATCH)
    if (keys.length > 0) await client.unlink(...keys)
    cursor = next
  } while (cursor !== '0')
  await client.quit()
}
