import { randomBytes } from 'node:crypto'
import type { LimitDecision, LimitStore, LimitWindow } from '../stores/types.js'
import { assertReady, type RedisClientLike } from './redis-types.js'

/** Where the Redis limit store keeps its counters. */
export interface RedisLimitStoreOptions {
  /** Put before every key. Default `'aigw:limit:'`. */
  prefix?: string
}

const DEFAULT_PREFIX = 'aigw:limit:'
/**
 * Keys outlive their window by this much, so an instance whose clock runs ahead cannot expire a counter
 * that another instance still counts in.
 */
const EXPIRY_MARGIN_MS = 10_000

/**
 * Fixed window. KEYS[1] the bucket's counter; ARGV amount, limit, expiry (ms).
 * Checks before it increments, so a refused amount takes nothing. Returns {admitted, count}.
 */
const CONSUME_FIXED = `
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
if count + amount > tonumber(ARGV[2]) then return {0, count} end
count = redis.call('INCRBY', KEYS[1], amount)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, count}
`

/** Fixed window. KEYS[1] the bucket's counter; ARGV delta. Never below 0; INCRBY keeps the key's expiry. */
const ADJUST_FIXED = `
local count = tonumber(redis.call('GET', KEYS[1]))
if not count then return 0 end
redis.call('INCRBY', KEYS[1], math.max(tonumber(ARGV[1]), -count))
return 1
`

/**
 * Sliding window: a sorted set of admissions scored by their time, members '<id>:<amount>'.
 * KEYS[1] the log; ARGV now, windowMs, limit, amount, id, expiry (ms). Returns {admitted, remaining, resetMs}.
 * An entry ages out once its time is <= now - windowMs, that is at its time + windowMs.
 */
const CONSUME_SLIDING = `
local now = tonumber(ARGV[1])
local windowMs = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local amount = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - windowMs)
local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local used = 0
for i = 1, #entries, 2 do
  used = used + tonumber(string.match(entries[i], ':(%d+)$'))
end
if used + amount <= limit then
  redis.call('ZADD', KEYS[1], now, ARGV[5] .. ':' .. ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  local oldest = now
  if #entries > 0 then oldest = math.min(oldest, tonumber(entries[2])) end
  return {1, limit - used - amount, oldest + windowMs - now}
end
if amount > limit then return {0, 0, windowMs} end
local excess = used + amount - limit
local freed = 0
for i = 1, #entries, 2 do
  freed = freed + tonumber(string.match(entries[i], ':(%d+)$'))
  if freed >= excess then return {0, 0, tonumber(entries[i + 1]) + windowMs - now} end
end
return {0, 0, windowMs}
`

/** Sliding window. KEYS[1] the log; ARGV now, windowMs, id, delta. Rewrites the entry's amount, never below 0. */
const ADJUST_SLIDING = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local prefix = ARGV[3] .. ':'
for i = 1, #entries, 2 do
  local member = entries[i]
  if string.sub(member, 1, #prefix) == prefix then
    local amount = math.max(0, tonumber(string.sub(member, #prefix + 1)) + tonumber(ARGV[4]))
    redis.call('ZREM', KEYS[1], member)
    redis.call('ZADD', KEYS[1], entries[i + 1], prefix .. string.format('%d', amount))
    return 1
  end
end
return 0
`

const SCRIPTS = {
  aigwLimitConsumeFixed: CONSUME_FIXED,
  aigwLimitAdjustFixed: ADJUST_FIXED,
  aigwLimitConsumeSliding: CONSUME_SLIDING,
  aigwLimitAdjustSliding: ADJUST_SLIDING,
} as const

type ScriptName = keyof typeof SCRIPTS
type ScriptCommand = (key: string, ...args: (string | number)[]) => Promise<unknown>

/** Clients that already carry the scripts; defining them again would only repeat the work. */
const clientsWithScripts = new WeakSet<RedisClientLike>()

/**
 * Rate-limit counters in Redis, shared by every instance using the same client target and prefix. Each
 * consume and adjust is one Lua script, so admission is atomic across instances. Time comes from the
 * caller's `now`, never the Redis clock. Keys: `{prefix}{key}:{bucket}` (a counter) for `fixed`,
 * `{prefix}{key}:log` (a sorted set) for `sliding`; each expires shortly after its window. When the client is
 * not connected every call rejects at once rather than waiting in ioredis's offline queue.
 *
 * @example
 * const limits = createRedisLimitStore(new Redis(process.env.REDIS_URL!), { prefix: 'myapp:limit:' })
 */
export function createRedisLimitStore(
  client: RedisClientLike,
  options: RedisLimitStoreOptions = {},
): LimitStore {
  const prefix = options.prefix ?? DEFAULT_PREFIX
  defineScripts(client)
  const run = (name: ScriptName, key: string, ...args: (string | number)[]): Promise<unknown> => {
    assertReady(client)
    const command = (client as unknown as Record<ScriptName, ScriptCommand>)[name]
    return command.call(client, key, ...args)
  }

  async function consumeFixed(key: string, amount: number, window: LimitWindow, now: number) {
    const bucket = Math.floor(now / window.windowMs)
    const resetMs = (bucket + 1) * window.windowMs - now
    const reply = await run(
      'aigwLimitConsumeFixed',
      `${prefix}${key}:${bucket}`,
      amount,
      window.limit,
      Math.ceil(resetMs) + EXPIRY_MARGIN_MS,
    )
    const [admitted, count] = reply as [number, number]
    if (admitted !== 1) return { allowed: false, remaining: 0, resetMs }
    return {
      allowed: true,
      remaining: Math.max(0, window.limit - count),
      resetMs,
      reservation: String(bucket),
    }
  }

  async function consumeSliding(key: string, amount: number, window: LimitWindow, now: number) {
    const id = randomBytes(9).toString('base64url')
    const reply = await run(
      'aigwLimitConsumeSliding',
      `${prefix}${key}:log`,
      now,
      window.windowMs,
      window.limit,
      amount,
      id,
      window.windowMs + EXPIRY_MARGIN_MS,
    )
    const [admitted, remaining, resetMs] = reply as [number, number, number]
    if (admitted !== 1) return { allowed: false, remaining: 0, resetMs }
    return { allowed: true, remaining, resetMs, reservation: id }
  }

  return {
    async consume(key, amount, window, now): Promise<LimitDecision> {
      assertAmount(amount)
      return window.technique === 'fixed'
        ? consumeFixed(key, amount, window, now)
        : consumeSliding(key, amount, window, now)
    },
    async adjust(key, reservation, delta, window, now) {
      const step = Math.round(delta)
      if (!Number.isSafeInteger(step) || step === 0) return
      if (window.technique === 'sliding') {
        await run('aigwLimitAdjustSliding', `${prefix}${key}:log`, now, window.windowMs, reservation, step)
        return
      }
      // A correction for a bucket that has ended would only distort the next one.
      if (reservation !== String(Math.floor(now / window.windowMs))) return
      await run('aigwLimitAdjustFixed', `${prefix}${key}:${reservation}`, step)
    },
  }
}

function defineScripts(client: RedisClientLike): void {
  if (clientsWithScripts.has(client)) return
  for (const [name, lua] of Object.entries(SCRIPTS)) client.defineCommand(name, { lua, numberOfKeys: 1 })
  clientsWithScripts.add(client)
}

function assertAmount(amount: number): void {
  if (!Number.isSafeInteger(amount) || amount < 1) {
    throw new RangeError(`A limit amount must be a positive integer, got ${amount}`)
  }
}
