import { ExpiryQueue } from './expiry-queue.js'
import { RecentlyUsed } from './recently-used.js'
import type { LimitDecision, LimitStore, LimitWindow } from './types.js'

/** Bounds of the in-memory limit store. */
export interface MemoryLimitStoreOptions {
  /**
   * At most this many keys are tracked. Past it, a key whose window has passed goes first; only when every
   * key still counts is the least recently used one forgotten (and so starts afresh). Default 100 000.
   */
  maxKeys?: number
  /**
   * The store's own clock (ms), read only to tell which windows have passed once it is full: callers' `now`
   * need not share an origin (a policy counts from the start of its period), so each key's expiry is the
   * time its window had left, counted from this clock. Default `Date.now`; the gateway gives its `now`.
   */
  now?: () => number
}

/** What every key's state carries: which life of the key it is, and when, by the store's clock, it expires. */
interface Lifetime {
  readonly serial: number
  expiresAt: number
}

interface FixedState extends Lifetime {
  readonly bucket: number
  count: number
}

interface LogEntry {
  at: number
  amount: number
  id: string
}

/** A sliding window's admissions, oldest first, with their running sum and an index by id. */
interface SlidingState extends Lifetime {
  entries: LogEntry[]
  used: number
  byId: Map<string, LogEntry>
}

type State = FixedState | SlidingState

const DEFAULT_MAX_KEYS = 100_000
/** Stale expiries the queue may hold beyond two per key before they are cleared. */
const EXPIRY_SLACK = 1024

/**
 * Rate-limit counters kept in this process, answering synchronously. `fixed` windows are clock-aligned
 * buckets; `sliding` windows keep an exact log of admissions, at most about `limit` entries a key: an
 * admission given back in full (refused by a later rule, a failed call's reservation) leaves the log, and a
 * key that holds nothing (all given back, or aged out) is forgotten. Only right for a single instance:
 * every instance counts on its own. Past `maxKeys`, a key whose window has passed makes room first; when
 * every key still counts, the least recently used is forgotten (and so starts afresh), which keeps memory
 * bounded under many distinct keys.
 *
 * @example
 * const limits = createMemoryLimitStore()
 * limits.consume('user-1', 1, { limit: 10, windowMs: 60_000, technique: 'fixed' }, Date.now())
 */
export function createMemoryLimitStore(options: MemoryLimitStoreOptions = {}): LimitStore {
  const maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS
  const clock = options.now ?? Date.now
  const states = new RecentlyUsed<State>(maxKeys)
  const expiries = new ExpiryQueue((expiry) => {
    const state = states.peek(expiry.key)
    return state?.serial === expiry.serial && state.expiresAt === expiry.at
  })
  let nextId = 0

  /**
   * Stores `state` under `stateKey` (if it is not there already) until `untilMs` after the caller's `now`.
   * A new key in a full store takes the place of one whose window has passed, if there is one.
   */
  function keep(stateKey: string, state: State, untilMs: number): void {
    const stored = states.peek(stateKey)
    if (stored !== state) {
      if (stored === undefined && states.size >= maxKeys) forgetOneExpired()
      states.set(stateKey, state)
    }
    const expiresAt = clock() + untilMs
    if (expiresAt === state.expiresAt) return
    state.expiresAt = expiresAt
    expiries.push({ at: expiresAt, key: stateKey, serial: state.serial })
    // Each moved expiry leaves its old entry behind.
    if (expiries.size > 2 * states.size + EXPIRY_SLACK) expiries.prune()
  }

  function forgetOneExpired(): void {
    const stateKey = expiries.takeExpired(clock())
    if (stateKey !== undefined) states.delete(stateKey)
  }

  function consumeFixed(key: string, amount: number, window: LimitWindow, now: number): LimitDecision {
    const stateKey = `f:${key}`
    const bucket = Math.floor(now / window.windowMs)
    const resetMs = (bucket + 1) * window.windowMs - now
    const stored = states.get(stateKey) as FixedState | undefined
    const current = stored?.bucket === bucket ? stored : undefined
    const count = current?.count ?? 0
    if (count + amount > window.limit) return { allowed: false, remaining: 0, resetMs }
    if (current !== undefined) current.count += amount
    else keep(stateKey, { serial: ++nextId, expiresAt: Number.NaN, bucket, count: amount }, resetMs)
    return {
      allowed: true,
      remaining: window.limit - count - amount,
      resetMs,
      reservation: String(bucket),
    }
  }

  function consumeSliding(key: string, amount: number, window: LimitWindow, now: number): LimitDecision {
    const stateKey = `s:${key}`
    const log = liveLog(stateKey, window, now)
    if (log.used + amount > window.limit) {
      return { allowed: false, remaining: 0, resetMs: slidingWait(log, amount, window, now) }
    }
    const entry = { at: now, amount, id: String(++nextId) }
    insertByTime(log.entries, entry)
    log.byId.set(entry.id, entry)
    log.used += amount
    // The latest admission is the last to age out.
    keep(stateKey, log, log.entries.at(-1)!.at + window.windowMs - now)
    return {
      allowed: true,
      remaining: window.limit - log.used,
      resetMs: log.entries[0]!.at + window.windowMs - now,
      reservation: entry.id,
    }
  }

  /**
   * The key's log without the entries that have aged out of the window at `now`. Each entry leaves the sum
   * once, as it ages out, so a decision never sums the whole window. A log left empty is forgotten; a new
   * one (not stored until something is admitted) takes its place.
   */
  function liveLog(stateKey: string, window: LimitWindow, now: number): SlidingState {
    const log = states.get(stateKey) as SlidingState | undefined
    if (log === undefined) return newLog()
    const cutoff = now - window.windowMs
    let expired = 0
    while (expired < log.entries.length && log.entries[expired]!.at <= cutoff) {
      const entry = log.entries[expired++]!
      log.used -= entry.amount
      log.byId.delete(entry.id)
    }
    if (expired > 0) log.entries.splice(0, expired)
    if (log.entries.length > 0) return log
    states.delete(stateKey)
    return newLog()
  }

  function newLog(): SlidingState {
    return { serial: ++nextId, expiresAt: Number.NaN, entries: [], used: 0, byId: new Map() }
  }

  function adjustFixed(
    key: string,
    reservation: string,
    step: number,
    window: LimitWindow,
    now: number,
  ): void {
    const stateKey = `f:${key}`
    const stored = states.get(stateKey) as FixedState | undefined
    // A correction for a bucket that has ended would only distort the next one.
    const bucket = Math.floor(now / window.windowMs)
    if (stored === undefined || String(bucket) !== reservation || stored.bucket !== bucket) return
    stored.count = Math.max(0, stored.count + step)
    // All given back: the key goes, so requests that a later rule refuses leave no keys behind.
    if (stored.count === 0) states.delete(stateKey)
  }

  function adjustSliding(
    key: string,
    reservation: string,
    step: number,
    window: LimitWindow,
    now: number,
  ): void {
    const stateKey = `s:${key}`
    const log = liveLog(stateKey, window, now)
    const entry = log.byId.get(reservation)
    if (entry === undefined) return
    const amount = Math.max(0, entry.amount + step)
    log.used += amount - entry.amount
    entry.amount = amount
    if (amount > 0) return
    // All given back: the entry goes, so the log holds only what counts (at most about `limit` entries).
    removeEntry(log, entry)
    if (log.entries.length === 0) states.delete(stateKey)
  }

  return {
    consume(key, amount, window, now) {
      assertAmount(amount)
      return window.technique === 'fixed'
        ? consumeFixed(key, amount, window, now)
        : consumeSliding(key, amount, window, now)
    },
    adjust(key, reservation, delta, window, now) {
      const step = Math.round(delta)
      if (!Number.isSafeInteger(step) || step === 0) return
      if (window.technique === 'fixed') adjustFixed(key, reservation, step, window, now)
      else adjustSliding(key, reservation, step, window, now)
    },
  }
}

/**
 * How long until enough of the oldest entries age out for `amount` to fit; a full window when it never can.
 * An entry ages out once `now - windowMs >= at`, so at `at + windowMs`.
 */
function slidingWait(log: SlidingState, amount: number, window: LimitWindow, now: number): number {
  if (amount > window.limit) return window.windowMs
  const excess = log.used + amount - window.limit
  let freed = 0
  for (const entry of log.entries) {
    freed += entry.amount
    if (freed >= excess) return entry.at + window.windowMs - now
  }
  return window.windowMs
}

/** Keeps the log ordered by time even when a caller passes a `now` it took a moment before another's. */
function insertByTime(log: LogEntry[], entry: LogEntry): void {
  let index = log.length
  while (index > 0 && log[index - 1]!.at > entry.at) index--
  log.splice(index, 0, entry)
}

/** Takes `entry` out of the log, found by its time: the log is ordered by it. */
function removeEntry(log: SlidingState, entry: LogEntry): void {
  let low = 0
  let high = log.entries.length
  while (low < high) {
    const middle = (low + high) >> 1
    if (log.entries[middle]!.at < entry.at) low = middle + 1
    else high = middle
  }
  while (low < log.entries.length && log.entries[low] !== entry) low++
  log.entries.splice(low, 1)
  log.byId.delete(entry.id)
}

function assertAmount(amount: number): void {
  if (!Number.isSafeInteger(amount) || amount < 1) {
    throw new RangeError(`A limit amount must be a positive integer, got ${amount}`)
  }
}
