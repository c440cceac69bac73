/**
 * The part of an ioredis client the Redis stores use. Written structurally rather than importing ioredis's
 * `Redis` class, so a host's client is accepted whichever ioredis copy or major version (5 or 6) created it:
 * a class type with private members only matches instances of that exact copy.
 *
 * @example
 * import { Redis } from 'ioredis'
 * const client: RedisClientLike = new Redis(process.env.REDIS_URL!)
 */
export interface RedisClientLike {
  /** `'ready'` once connected; the stores refuse to queue commands in any other state. */
  readonly status: string
  getBuffer(key: string): Promise<Buffer | null>
  set(key: string, value: Buffer, expiryMode: 'PX', milliseconds: number): Promise<unknown>
  del(key: string): Promise<number>
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number }): void
}

/**
 * Fails a call when the client is reconnecting or closed. ioredis would otherwise queue the command until
 * the connection returns, and the request would hang on it.
 */
export function assertReady(client: { readonly status: string }): void {
  if (client.status !== 'ready') {
    throw new Error(`Redis client is not ready (status '${client.status}'); not queueing the command`)
  }
}

/** Script tables each client already carries; defining them again would only repeat the work. */
const definedScripts = new WeakMap<RedisClientLike, WeakSet<object>>()

/** Registers a store's Lua scripts on `client` as commands, once per client and table. */
export function defineScripts(
  client: RedisClientLike,
  scripts: Readonly<Record<string, { readonly lua: string; readonly numberOfKeys: number }>>,
): void {
  let defined = definedScripts.get(client)
  if (defined === undefined) {
    defined = new WeakSet()
    definedScripts.set(client, defined)
  }
  if (defined.has(scripts)) return
  for (const [name, script] of Object.entries(scripts)) client.defineCommand(name, script)
  defined.add(scripts)
}
