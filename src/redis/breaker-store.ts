import { assertPolicy } from '../stores/memory-breaker.js'
import type { BreakerPolicy, BreakerState, BreakerStore } from '../stores/types.js'
import { assertReady, defineScripts, type RedisClientLike } from './redis-types.js'

/** Where the Redis breaker store keeps its breakers. */
export interface RedisBreakerStoreOptions {
  /** Put before every key. Default `'aigw:breaker:'`. */
  prefix?: string
}

const DEFAULT_PREFIX = 'aigw:breaker:'

/**
 * Every script starts here: the server's clock in ms since the epoch, as `now`. TIME makes a script
 * non-deterministic, so a Redis older than 5 must replicate its effects rather than the script itself.
 */
const CLOCK = `
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
`

/**
 * A breaker is one hash: `n` failures counted in a window ending at `w` while closed; `o` the end of the
 * open period once tripped, and `p` the end of the lease of the probe handed out last. A closed breaker
 * with nothing counted has no key. A counting key expires with its window; a tripped one
 * `max(openMs, probeMs)` after the later of `o` and `p`. Replies are {0, failing} (closed), {1, 0} (probe)
 * or {2, retryInMs} (open).
 */

/** KEYS[1] the breaker; ARGV openMs, probeMs. Hands out the probe of a half-open breaker to one caller. */
const CHECK = `${CLOCK}
local state = redis.call('HMGET', KEYS[1], 'n', 'w', 'o', 'p')
local open = tonumber(state[3])
if not open then
  local windowEnd = tonumber(state[2])
  if windowEnd and now < windowEnd then return {0, 1} end
  return {0, 0}
end
if now < open then return {2, open - now} end
local probe = tonumber(state[4]) or 0
if now < probe then return {2, probe - now} end
probe = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'p', string.format('%d', probe))
redis.call('PEXPIRE', KEYS[1], probe + math.max(tonumber(ARGV[1]), tonumber(ARGV[2])) - now)
return {1, 0}
`

/**
 * KEYS[1] the breaker; ARGV failures, windowMs, openMs, probeMs, openForMs (0 for none). Counts the failure
 * or opens the breaker: at the threshold for openMs, when half-open for openMs again, and for openForMs
 * when given, whichever ends last; an open period is never shortened.
 */
const FAILURE = `${CLOCK}
local failures = tonumber(ARGV[1])
local openMs = tonumber(ARGV[3])
local openFor = tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'n', 'w', 'o', 'p')
local open = tonumber(state[3])
local openUntil
if open then
  openUntil = open
  if now >= open then openUntil = now + openMs end
else
  local count = 1
  local windowEnd = tonumber(state[2])
  if windowEnd and now < windowEnd then
    count = (tonumber(state[1]) or 0) + 1
  else
    windowEnd = now + tonumber(ARGV[2])
  end
  if count < failures and openFor == 0 then
    redis.call('HSET', KEYS[1], 'n', count, 'w', string.format('%d', windowEnd))
    redis.call('PEXPIRE', KEYS[1], windowEnd - now)
    return {0, 1}
  end
  openUntil = now
  if count >= failures then openUntil = now + openMs end
end
if openFor > 0 then openUntil = math.max(openUntil, now + openFor) end
if openUntil ~= open then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'o', string.format('%d', openUntil))
  redis.call('PEXPIRE', KEYS[1], openUntil + math.max(openMs, tonumber(ARGV[4])) - now)
end
return {2, openUntil - now}
`

/**
 * KEYS[1] the breaker. Forgets it (closed, or half-open) unless it is still open: the success of a call
 * that began before it opened says nothing of the target now.
 */
const SUCCESS = `${CLOCK}
local open = tonumber(redis.call('HGET', KEYS[1], 'o'))
if open and now < open then return 0 end
return redis.call('DEL', KEYS[1])
`

// Names are versioned: a client that loaded an older script under the same name would run the old one.
const SCRIPTS = {
  aigwBreakerCheck1: { lua: CHECK, numberOfKeys: 1 },
  aigwBreakerFailure1: { lua: FAILURE, numberOfKeys: 1 },
  aigwBreakerSuccess1: { lua: SUCCESS, numberOfKeys: 1 },
} as const

type ScriptName = keyof typeof SCRIPTS
type ScriptCommand = (...keysAndArgs: (string | number)[]) => Promise<unknown>

const PROBE: BreakerState = { state: 'probe' }

/**
 * Circuit breakers in Redis, shared by every instance using the same client target and prefix. Each call
 * is one Lua script, so it is atomic across instances: of callers checking a half-open breaker at once,
 * exactly one gets `probe`. Each breaker is one hash, `prefix + key`, and every write sets its expiry, so
 * no key outlives its use: a closed breaker's counted failures expire with their window, and a tripped
 * breaker is kept `max(openMs, probeMs)` past the later of its open period and its last probe lease (long
 * enough for the one-probe rule to hold for callers that come a while after the open period, after which
 * an idle target is tried as closed again). When the client is not connected every call rejects at once
 * rather than waiting in ioredis's offline queue.
 *
 * Windows, open periods and probe leases are measured by the Redis server's clock (`TIME`, read inside the
 * scripts); the `now` the caller passes is not used. Every instance then measures them by the same clock,
 * so instances whose clocks are skewed still agree on when a breaker opened and when it may be probed,
 * and an instance with a slow clock cannot hand out a probe that another has already been given. The
 * durations (`retryInMs`) it answers are differences on that clock, valid on any instance's.
 *
 * @example
 * const breakers = createRedisBreakerStore(new Redis(process.env.REDIS_URL!), { prefix: 'myapp:breaker:' })
 */
export function createRedisBreakerStore(
  client: RedisClientLike,
  options: RedisBreakerStoreOptions = {},
): BreakerStore {
  const prefix = options.prefix ?? DEFAULT_PREFIX
  defineScripts(client, SCRIPTS)

  async function run(name: ScriptName, key: string, ...args: number[]): Promise<[number, number]> {
    assertReady(client)
    const command = (client as unknown as Record<ScriptName, ScriptCommand>)[name]
    return (await command.call(client, prefix + key, ...args)) as [number, number]
  }

  return {
    async check(key, policy) {
      const { openMs, probeMs } = durations(policy)
      return toState(await run('aigwBreakerCheck1', key, openMs, probeMs))
    },
    async failure(key, policy, _now, openForMs) {
      const { failures, windowMs, openMs, probeMs } = durations(policy)
      const openFor = openPeriod(openForMs)
      return toState(await run('aigwBreakerFailure1', key, failures, windowMs, openMs, probeMs, openFor))
    },
    async success(key, policy) {
      durations(policy)
      await run('aigwBreakerSuccess1', key)
    },
  }
}

function toState([code, value]: [number, number]): BreakerState {
  if (code === 2) return { state: 'open', retryInMs: value }
  if (code === 1) return PROBE
  return { state: 'closed', failing: value === 1 }
}

/** The policy in whole milliseconds, as the scripts and PEXPIRE take them; rejects one that cannot work. */
function durations(policy: BreakerPolicy): BreakerPolicy {
  assertPolicy(policy)
  const whole = { failures: policy.failures, windowMs: 0, openMs: 0, probeMs: 0 }
  for (const name of ['windowMs', 'openMs', 'probeMs'] as const) {
    const value = policy[name]
    // Past this the scripts' arithmetic on the server's clock would lose whole milliseconds.
    if (value > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`A breaker's ${name} must be a positive number of milliseconds, got ${value}`)
    }
    whole[name] = Math.ceil(value)
  }
  return whole
}

/**
 * A provider's `Retry-After` as a whole open period; anything but a positive finite number asks for none
 * (0 to the script).
 */
function openPeriod(openForMs: number | undefined): number {
  if (openForMs === undefined || !Number.isFinite(openForMs) || openForMs <= 0) return 0
  return Math.min(Math.ceil(openForMs), Number.MAX_SAFE_INTEGER)
}
