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
 * Sliding window: a sorted set of admissions scored by their time, members '<id>:<amount>', and beside it
 * the sum of their amounts. KEYS[1] the log, KEYS[2] the sum; ARGV now, windowMs, limit, amount, member,
 * expiry (ms). Returns {admitted, remaining, resetMs}. An entry ages out once its time is <= now - windowMs;
 * each one is subtracted from the sum once, as it leaves, so a decision costs O(log n), not a pass over the
 * window. Only a refusal walks the oldest entries, and only until enough of them would free room.
 */
const CONSUME_SLIDING = `
local now = tonumber(ARGV[1])
local windowMs = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local amount = tonumber(ARGV[4])
local cutoff = now - windowMs
local used = 0
if redis.call('EXISTS', KEYS[1]) == 1 then used = tonumber(redis.call('GET', KEYS[2]) or '0') end
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)
if #expired > 0 then
  for i = 1, #expired do used = used - tonumber(string.match(expired[i], ':(%d+)$')) end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  if used < 0 then used = 0 end
end
if used + amount <= limit then
  redis.call('ZADD', KEYS[1], now, ARGV[5])
  used = used + amount
  redis.call('SET', KEYS[2], used, 'PX', ARGV[6])
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {1, limit - used, tonumber(oldest[2]) + windowMs - now}
end
if #expired > 0 then redis.call('SET', KEYS[2], used, 'KEEPTTL') end
if amount > limit then return {0, 0, windowMs} end
local excess = used + amount - limit
local freed = 0
local start = 0
while true do
  local page = redis.call('ZRANGE', KEYS[1], start, start + 99, 'WITHSCORES')
  if #page == 0 then return {0, 0, windowMs} end
  for i = 1, #page, 2 do
    freed = freed + tonumber(string.match(page[i], ':(%d+)$'))
    if freed >= excess then return {0, 0, tonumber(page[i + 1]) + windowMs - now} end
  end
  start = start + 100
end
`

/**
 * Sliding window. KEYS[1] the log, KEYS[2] the sum; ARGV the admitted member '<id>:<amount>', delta.
 * Rewrites the entry's amount (never below 0) at its own time and moves the sum by the same difference.
 */
const ADJUST_SLIDING = `
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return 0 end
local id, amount = string.match(ARGV[1], '^(.*):(%d+)$')
local before = tonumber(amount)
local after = math.max(0, before + tonumber(ARGV[2]))
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], score, id .. ':' .. string.format('%d', after))
local used = math.max(0, tonumber(redis.call('GET', KEYS[2]) or '0') + after - before)
redis.call('SET', KEYS[2], used, 'KEEPTTL')
return 1
`

// Names are versioned: a client that loaded an older script under the same name would run the old one.
const SCRIPTS = {
  aigwLimitConsumeFixed: { lua: CONSUME_FIXED, numberOfKeys: 1 },
  aigwLimitAdjustFixed: { lua: ADJUST_FIXED, numberOfKeys: 1 },
  aigwLimitConsumeSliding2: { lua: CONSUME_SLIDING, numberOfKeys: 2 },
  aigwLimitAdjustSliding2: { lua: ADJUST_SLIDING, numberOfKeys: 2 },
} as const

type ScriptName = keyof typeof SCRIPTS
type ScriptCommand = (...keysAndArgs: (string | number)[]) => Promise<unknown>

/** Clients that already carry the scripts; defining them again would only repeat the work. */
const clientsWithScripts = new WeakSet<RedisClientLike>()

/**
 * Rate-limit counters in Redis, shared by every instance using the same client target and prefix. Each
 * consume and adjust is one Lua script, so admission is atomic across instances. Time comes from the
 * caller's `now`, never the Redis clock. Keys: `{prefix}{key}:{bucket}` (a counter) for `fixed`,
 * `{prefix}{<key>}:log` (a sorted set) with `{prefix}{<key>}:sum` for `sliding`; each expires shortly after
 * its window. When the client is not connected every call rejects at once rather than waiting in ioredis's
 * offline queue. A reservation is corrected once: `adjust` with it again changes nothing.
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
  const run = (name: ScriptName, ...keysAndArgs: (string | number)[]): Promise<unknown> => {
    assertReady(client)
    const command = (client as unknown as Record<ScriptName, ScriptCommand>)[name]
    return command.call(client, ...keysAndArgs)
  }
  // One hash tag for both keys of a sliding window, so a Redis Cluster keeps them on one node.
  const slidingKeys = (key: string) => [`${prefix}{${key}}:log`, `${prefix}{${key}}:sum`] as const

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
    // The member carries its amount, so an entry ageing out tells the script how much to take off the sum.
    const member = `${randomBytes(9).toString('base64url')}:${amount}`
    const reply = await run(
      'aigwLimitConsumeSliding2',
      ...slidingKeys(key),
      now,
      window.windowMs,
      window.limit,
      amount,
      member,
      window.windowMs + EXPIRY_MARGIN_MS,
    )
    const [admitted, remaining, resetMs] = reply as [number, number, number]
    if (admitted !== 1) return { allowed: false, remaining: 0, resetMs }
    return { allowed: true, remaining, resetMs, reservation: member }
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
        await run('aigwLimitAdjustSliding2', ...slidingKeys(key), reservation, step)
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
  for (const [name, script] of Object.entries(SCRIPTS)) client.defineCommand(name, script)
  clientsWithScripts.add(client)
}

function assertAmount(amount: number): void {
  if (!Number.isSafeInteger(amount) || amount < 1) {
    throw new RangeError(`A limit amount must be a positive integer, got ${amount}`)
  }
}
