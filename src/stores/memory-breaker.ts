import { RecentlyUsed } from './recently-used.js'
import type { BreakerPolicy, BreakerState, BreakerStore } from './types.js'

/** Bounds of the in-memory breaker store. */
export interface MemoryBreakerStoreOptions {
  /**
   * At most this many keys are kept; past it the least recently used is forgotten first (and so reads as
   * closed). Default 10 000.
   */
  maxKeys?: number
}

/** A closed breaker with failures counted in its window, which the first of them started. */
interface Counting {
  readonly kind: 'counting'
  failures: number
  readonly windowEnds: number
}

/** An open breaker, or a half-open one once `openUntil` has passed. */
interface Tripped {
  readonly kind: 'tripped'
  readonly openUntil: number
  /** When the lease of the probe handed out last runs out; 0 while none has been. */
  probeUntil: number
  /** When the whole record is forgotten, and the breaker reads as closed again. */
  forgetAt: number
}

type Breaker = Counting | Tripped

const DEFAULT_MAX_KEYS = 10_000

const CLOSED: BreakerState = { state: 'closed', failing: false }
const FAILING: BreakerState = { state: 'closed', failing: true }
const PROBE: BreakerState = { state: 'probe' }

/**
 * Circuit breakers kept in this process, answering synchronously; every time comes from the caller's `now`.
 * Only right for a single instance: each instance trips its own breakers. A closed breaker with nothing
 * counted holds no entry at all, so only targets that are failing take memory, and past `maxKeys` the
 * least recently used one is forgotten.
 *
 * A tripped breaker is remembered until `max(openMs, probeMs)` after the later of the end of its open
 * period and the end of the last probe lease it handed out. Kept past the open period, the half-open rule
 * (one probe at a time) holds for a caller that comes a while later; forgotten after that, an abandoned
 * record does not stay forever. A target left alone that long is tried again as closed: its next failures
 * trip it again if it is still down.
 *
 * @example
 * const breakers = createMemoryBreakerStore()
 * const policy = { failures: 5, windowMs: 30_000, openMs: 30_000, probeMs: 10_000 }
 * if (breakers.check('openai|gpt-4o|-', policy, Date.now()).state !== 'open') {
 *   // call the target, then report breakers.success(...) or breakers.failure(...)
 * }
 */
export function createMemoryBreakerStore(options: MemoryBreakerStoreOptions = {}): BreakerStore {
  const breakers = new RecentlyUsed<Breaker>(options.maxKeys ?? DEFAULT_MAX_KEYS)

  /** The key's record unless it has run out at `now` (then it is dropped), made the most recently used. */
  function live(key: string, now: number): Breaker | undefined {
    const breaker = breakers.get(key)
    if (breaker === undefined) return undefined
    const endsAt = breaker.kind === 'counting' ? breaker.windowEnds : breaker.forgetAt
    if (now >= endsAt) {
      breakers.delete(key)
      return undefined
    }
    return breaker
  }

  function trip(key: string, openUntil: number, policy: BreakerPolicy, now: number): BreakerState {
    breakers.set(key, { kind: 'tripped', openUntil, probeUntil: 0, forgetAt: openUntil + retention(policy) })
    return { state: 'open', retryInMs: openUntil - now }
  }

  return {
    check(key, policy, now) {
      assertPolicy(policy)
      const breaker = live(key, now)
      if (breaker === undefined) return CLOSED
      if (breaker.kind === 'counting') return FAILING
      if (now < breaker.openUntil) return { state: 'open', retryInMs: breaker.openUntil - now }
      if (now < breaker.probeUntil) return { state: 'open', retryInMs: breaker.probeUntil - now }
      breaker.probeUntil = now + policy.probeMs
      breaker.forgetAt = Math.max(breaker.forgetAt, breaker.probeUntil + retention(policy))
      return PROBE
    },

    failure(key, policy, now, openForMs) {
      assertPolicy(policy)
      const openFor = openPeriod(openForMs)
      const breaker = live(key, now)
      if (breaker?.kind === 'tripped') {
        // Half-open: whoever reports, the target still fails, so it is skipped for a whole period again.
        // Still open: a call that began before it opened adds nothing, unless it asks for a longer period.
        let openUntil = now < breaker.openUntil ? breaker.openUntil : now + policy.openMs
        if (openFor > 0) openUntil = Math.max(openUntil, now + openFor)
        if (openUntil === breaker.openUntil) return { state: 'open', retryInMs: openUntil - now }
        return trip(key, openUntil, policy, now)
      }
      const failures = (breaker?.failures ?? 0) + 1
      const reached = failures >= policy.failures
      if (reached || openFor > 0) {
        return trip(key, Math.max(reached ? now + policy.openMs : now, now + openFor), policy, now)
      }
      if (breaker === undefined) {
        breakers.set(key, { kind: 'counting', failures, windowEnds: now + policy.windowMs })
      } else {
        breaker.failures = failures
      }
      return FAILING
    },

    success(key, policy, now) {
      assertPolicy(policy)
      const breaker = live(key, now)
      if (breaker === undefined) return
      // An open breaker stays open: the success is of a call that began before it opened.
      if (breaker.kind === 'tripped' && now < breaker.openUntil) return
      breakers.delete(key)
    },
  }
}

/** How long a tripped breaker is remembered past its open period or its last probe lease. */
function retention(policy: BreakerPolicy): number {
  return Math.max(policy.openMs, policy.probeMs)
}

/** A provider's `Retry-After` as an open period; anything but a positive finite number asks for none. */
function openPeriod(openForMs: number | undefined): number {
  return openForMs !== undefined && Number.isFinite(openForMs) && openForMs > 0 ? openForMs : 0
}

/** Refuses a policy no breaker can follow; every breaker store checks it on each call. */
export function assertPolicy(policy: BreakerPolicy): void {
  if (!Number.isSafeInteger(policy.failures) || policy.failures < 1) {
    throw new RangeError(`A breaker's failures must be a positive integer, got ${policy.failures}`)
  }
  for (const name of ['windowMs', 'openMs', 'probeMs'] as const) {
    const value = policy[name]
    if (!Number.isFinite(value) || value <= 0) {
      throw new RangeError(`A breaker's ${name} must be a positive number of milliseconds, got ${value}`)
    }
  }
}
