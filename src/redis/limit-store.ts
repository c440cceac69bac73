import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { StoreTimeoutError } from '../stores/call.js'
import type { LimitDecision, LimitStore, LimitWindow } from '../stores/types.js'
import { assertReady, defineScripts, type RedisClientLike } from './redis-types.js'

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
 * Every script starts here. ARGV[1] is the call's deadline in the server's clock (ms since the epoch; 0 for
 * none): a command that reaches Redis at or after it (it sat in a socket while the server was paused, or was
 * resent after a reconnect) changes nothing and answers -1, since its caller has already decided without
 * it. Every reply starts with {status, seconds, microseconds} of the server's clock, from which the store
 * learns how far that clock is from its own.
 */
const DEADLINE = `
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local deadline = tonumber(ARGV[1])
if deadline > 0 and tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000) >= deadline then
  return {-1, clock[1], clock[2]}
end
`

/**
 * Fixed window. KEYS[1] the bucket's counter; ARGV deadline, amount, limit, expiry (ms). Checks before it
 * increments, so a refused amount takes nothing. Returns {admitted, clock, count}.
 */
const CONSUME_FIXED = `${DEADLINE}
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[2])
if count + amount > tonumber(ARGV[3]) then return {0, clock[1], clock[2], count} end
count = redis.call('INCRBY', KEYS[1], amount)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {1, clock[1], clock[2], count}
`

/**
 * Fixed window. KEYS[1] the bucket's counter; ARGV deadline, delta. Never below 0; INCRBY keeps the key's
 * expiry. A counter given back to 0 is deleted, so requests that a later rule refuses leave no keys behind.
 */
const ADJUST_FIXED = `${DEADLINE}
local count = tonumber(redis.call('GET', KEYS[1]))
if not count then return {0, clock[1], clock[2]} end
local step = math.max(tonumber(ARGV[2]), -count)
if count + step == 0 then redis.call('DEL', KEYS[1]) else redis.call('INCRBY', KEYS[1], step) end
return {1, clock[1], clock[2]}
`

/**
 * Sliding window: a sorted set of admissions scored by their time, members '<id>:<amount>', and beside it
 * the sum of their amounts. KEYS[1] the log, KEYS[2] the sum; ARGV deadline, now, windowMs, limit, amount,
 * member, expiry (ms). Returns {admitted, clock, remaining, resetMs}. An entry ages out once its time is
 * <= now - windowMs; each one is subtracted from the sum once, as it leaves, so a decision costs O(log n),
 * not a pass over the window. Only a refusal walks the oldest entries, and only until enough of them
 * would free room.
 */
const CONSUME_SLIDING = `${DEADLINE}
local now = tonumber(ARGV[2])
local windowMs = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local amount = tonumber(ARGV[5])
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
  redis.call('ZADD', KEYS[1], now, ARGV[6])
  used = used + amount
  redis.call('SET', KEYS[2], used, 'PX', ARGV[7])
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {1, clock[1], clock[2], limit - used, tonumber(oldest[2]) + windowMs - now}
end
if #expired > 0 then redis.call('SET', KEYS[2], used, 'KEEPTTL') end
if amount > limit then return {0, clock[1], clock[2], 0, windowMs} end
local excess = used + amount - limit
local freed = 0
local start = 0
while true do
  local page = redis.call('ZRANGE', KEYS[1], start, start + 99, 'WITHSCORES')
  if #page == 0 then return {0, clock[1], clock[2], 0, windowMs} end
  for i = 1, #page, 2 do
    freed = freed + tonumber(string.match(page[i], ':(%d+)$'))
    if freed >= excess then return {0, clock[1], clock[2], 0, tonumber(page[i + 1]) + windowMs - now} end
  end
  start = start + 100
end
`

/**
 * Sliding window. KEYS[1] the log, KEYS[2] the sum; ARGV deadline, the admitted member '<id>:<amount>',
 * delta. Rewrites the entry's amount at its own time and moves the sum by the same difference. An entry
 * given back in full leaves the log (and the sum goes with the last one), so a log holds at most about
 * `limit` entries whatever is given back.
 */
const ADJUST_SLIDING = `${DEADLINE}
local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not score then return {0, clock[1], clock[2]} end
local id, amount = string.match(ARGV[2], '^(.*):(%d+)$')
local before = tonumber(amount)
local after = math.max(0, before + tonumber(ARGV[3]))
redis.call('ZREM', KEYS[1], ARGV[2])
if after > 0 then
  redis.call('ZADD', KEYS[1], score, id .. ':' .. string.format('%d', after))
elseif redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  return {1, clock[1], clock[2]}
end
local used = math.max(0, tonumber(redis.call('GET', KEYS[2]) or '0') + after - before)
redis.call('SET', KEYS[2], used, 'KEEPTTL')
return {1, clock[1], clock[2]}
`

/** The server's clock alone, for a store's first call with a deadline. ARGV deadline (0). */
const CLOCK = `${DEADLINE}
return {1, clock[1], clock[2]}
`

// Names are versioned: a client that loaded an older script under the same name would run the old one.
const SCRIPTS = {
  aigwLimitConsumeFixed3: { lua: CONSUME_FIXED, numberOfKeys: 1 },
  aigwLimitAdjustFixed4: { lua: ADJUST_FIXED, numberOfKeys: 1 },
  aigwLimitConsumeSliding3: { lua: CONSUME_SLIDING, numberOfKeys: 2 },
  aigwLimitAdjustSliding4: { lua: ADJUST_SLIDING, numberOfKeys: 2 },
  aigwLimitClock3: { lua: CLOCK, numberOfKeys: 0 },
} as const

type ScriptName = keyof typeof SCRIPTS
type ScriptCommand = (...keysAndArgs: (string | number)[]) => Promise<unknown>
/** {status, server seconds, server microseconds, ...what the script answers}. */
type Reply = [number, string, string, ...number[]]

/** This process's clock in ms since the epoch, steady: it does not jump when the system clock is set. */
const localNow = () => performance.timeOrigin + performance.now()

/** How long one period of clock samples counts; the best of the last one to two periods is used. */
const CLOCK_PERIOD_MS = 10_000

/**
 * How far the Redis server's clock is ahead of this process's, learnt from the server time every reply
 * carries. A reply read at local time `readAt` was run before it, so `serverTime - readAt` is a lower bound
 * of the offset, short of it by the time the reply took to come back and be read. The largest bound seen in
 * the last 10 to 20 seconds is used: the reply least delayed by the network and by this event loop. A
 * server clock stepped forward is followed at the next reply; one stepped back, within 20 seconds.
 */
class ServerClock {
  #current = Number.NEGATIVE_INFINITY
  #previous = Number.NEGATIVE_INFINITY
  #periodEnds = Number.NEGATIVE_INFINITY

  observe(reply: Reply, readAt: number): void {
    const serverMs = Number(reply[1]) * 1000 + Math.floor(Number(reply[2]) / 1000)
    if (!Number.isFinite(serverMs)) return
    if (readAt >= this.#periodEnds) {
      this.#previous = readAt >= this.#periodEnds + CLOCK_PERIOD_MS ? Number.NEGATIVE_INFINITY : this.#current
      this.#current = Number.NEGATIVE_INFINITY
      this.#periodEnds = readAt + CLOCK_PERIOD_MS
    }
    this.#current = Math.max(this.#current, serverMs - readAt)
  }

  /** Add to a local time to get the server's; `undefined` until a reply has been read. */
  offset(): number | undefined {
    const best = Math.max(this.#current, this.#previous)
    return Number.isFinite(best) ? best : undefined
  }
}

/**
 * Rate-limit counters in Redis, shared by every instance using the same client target and prefix. Each
 * consume and adjust is one Lua script, so admission is atomic across instances. Counting uses the caller's
 * `now`, never the Redis clock. Keys: `{prefix}{key}:{bucket}` (a counter) for `fixed`,
 * `{prefix}{<key>}:log` (a sorted set) with `{prefix}{<key>}:sum` for `sliding`; each expires shortly after
 * its window. When the client is not connected every call rejects at once rather than waiting in ioredis's
 * offline queue. A reservation is corrected once: `adjust` with it again changes nothing.
 *
 * A call given `timeoutMs` (the gateway always gives its rule's `storeTimeoutMs`) carries a deadline, and
 * the script changes nothing when the server's clock has passed it: a command that waited in a socket
 * while Redis was paused or stalled, or that ioredis resent after a reconnect, would otherwise count a
 * request the gateway had already decided by its fallback. The deadline is expressed in the server's
 * clock, so instances whose clocks differ from Redis's (or from each other's) need no synchronisation:
 * each reply carries the server time, from which the store keeps a conservative estimate of the offset
 * (it errs towards an earlier deadline, by at most the delay of the fastest recent reply). A store's first
 * call with a deadline first reads the server's clock (one extra round trip, once). A call that reaches
 * Redis too late rejects with a `StoreTimeoutError`; nothing was changed.
 *
 * @example
 * const limits = createRedisLimitStore(new Redis(process.env.REDIS_URL!), { prefix: 'myapp:limit:' })
 */
export function createRedisLimitStore(
  client: RedisClientLike,
  options: RedisLimitStoreOptions = {},
): LimitStore {
  const prefix = options.prefix ?? DEFAULT_PREFIX
  defineScripts(client, SCRIPTS)
  const clock = new ServerClock()
  let learning: Promise<void> | undefined

  /** Reads the server's clock once, shared by the calls that need it at the same time. */
  function learnClock(): Promise<void> {
    learning ??= send('aigwLimitClock3', 0).then(
      () => {
        learning = undefined
      },
      (error: unknown) => {
        learning = undefined
        throw error
      },
    )
    return learning
  }

  async function send(name: ScriptName, ...keysAndArgs: (string | number)[]): Promise<Reply> {
    assertReady(client)
    const command = (client as unknown as Record<ScriptName, ScriptCommand>)[name]
    const reply = (await command.call(client, ...keysAndArgs)) as Reply
    clock.observe(reply, localNow())
    return reply
  }

  /**
   * Runs a script with the call's deadline (ARGV[1]) in front of its arguments. Rejects, having changed
   * nothing, when the command would reach Redis after it.
   */
  async function run(
    name: ScriptName,
    keys: readonly string[],
    args: readonly (string | number)[],
    timeoutMs: number | undefined,
  ): Promise<Reply> {
    assertReady(client)
    let deadline = 0
    if (timeoutMs !== undefined) {
      const startedAt = localNow()
      if (clock.offset() === undefined) {
        await learnClock()
        if (localNow() > startedAt + timeoutMs) throw tooLate(timeoutMs, 'was not sent')
      }
      deadline = Math.floor(startedAt + timeoutMs + clock.offset()!)
    }
    const reply = await send(name, ...keys, deadline, ...args)
    if (reply[0] === -1) throw tooLate(timeoutMs!, 'reached Redis after it and changed nothing')
    return reply
  }

  // One hash tag for both keys of a sliding window, so a Redis Cluster keeps them on one node.
  const slidingKeys = (key: string) => [`${prefix}{${key}}:log`, `${prefix}{${key}}:sum`] as const

  async function consumeFixed(
    key: string,
    amount: number,
    window: LimitWindow,
    now: number,
    timeoutMs: number | undefined,
  ): Promise<LimitDecision> {
    const bucket = Math.floor(now / window.windowMs)
    const resetMs = (bucket + 1) * window.windowMs - now
    const reply = await run(
      'aigwLimitConsumeFixed3',
      [`${prefix}${key}:${bucket}`],
      [amount, window.limit, Math.ceil(resetMs) + EXPIRY_MARGIN_MS],
      timeoutMs,
    )
    const [admitted, , , count] = reply as [number, string, string, number]
    if (admitted !== 1) return { allowed: false, remaining: 0, resetMs }
    return {
      allowed: true,
      remaining: Math.max(0, window.limit - count),
      resetMs,
      reservation: String(bucket),
    }
  }

  async function consumeSliding(
    key: string,
    amount: number,
    window: LimitWindow,
    now: number,
    timeoutMs: number | undefined,
  ): Promise<LimitDecision> {
    // The member carries its amount, so an entry ageing out tells the script how much to take off the sum.
    const member = `${randomBytes(9).toString('base64url')}:${amount}`
    const reply = await run(
      'aigwLimitConsumeSliding3',
      slidingKeys(key),
      [now, window.windowMs, window.limit, amount, member, window.windowMs + EXPIRY_MARGIN_MS],
      timeoutMs,
    )
    const [admitted, , , remaining, resetMs] = reply as [number, string, string, number, number]
    if (admitted !== 1) return { allowed: false, remaining: 0, resetMs }
    return { allowed: true, remaining, resetMs, reservation: member }
  }

  return {
    async consume(key, amount, window, now, call): Promise<LimitDecision> {
      assertAmount(amount)
      return window.technique === 'fixed'
        ? consumeFixed(key, amount, window, now, call?.timeoutMs)
        : consumeSliding(key, amount, window, now, call?.timeoutMs)
    },
    async adjust(key, reservation, delta, window, now, call) {
      const step = Math.round(delta)
      if (!Number.isSafeInteger(step) || step === 0) return
      if (window.technique === 'sliding') {
        await run('aigwLimitAdjustSliding4', slidingKeys(key), [reservation, step], call?.timeoutMs)
        return
      }
      // A correction for a bucket that has ended would only distort the next one.
      if (reservation !== String(Math.floor(now / window.windowMs))) return
      await run('aigwLimitAdjustFixed4', [`${prefix}${key}:${reservation}`], [step], call?.timeoutMs)
    },
  }
}

function tooLate(timeoutMs: number, what: string): StoreTimeoutError {
  return new StoreTimeoutError(timeoutMs, `a Redis limit command with a ${timeoutMs} ms deadline ${what}`)
}

function assertAmount(amount: number): void {
  if (!Number.isSafeInteger(amount) || amount < 1) {
    throw new RangeError(`A limit amount must be a positive integer, got ${amount}`)
  }
}
