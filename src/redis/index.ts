/**
 * Redis-backed stores, for gateways that run as several instances. Pass your own ioredis client, created
 * with `enableOfflineQueue: false` and connected before the first request: a store call on a client that
 * is not ready fails at once, and the gateway applies the store's failure policy instead of waiting. Limit
 * commands also carry a deadline checked against the server's clock, so one that reaches Redis after the
 * gateway stopped waiting for it (a paused server, a resend after a reconnect) changes nothing. Breakers
 * measure their windows and open periods by the server's clock, so instances with skewed clocks agree.
 */
export { createRedisBreakerStore, type RedisBreakerStoreOptions } from './breaker-store.js'
export { createRedisCacheStore, type RedisCacheStoreOptions } from './cache-store.js'
export { createRedisSecretStore, type RedisSecretStoreOptions } from './key-store.js'
export { createRedisLimitStore, type RedisLimitStoreOptions } from './limit-store.js'
export type { RedisClientLike } from './redis-types.js'
export {
  createRedisRouteStore,
  type RedisRouteClient,
  type RedisRouteStoreOptions,
} from './route-store.js'
