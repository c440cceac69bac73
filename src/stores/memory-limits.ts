import { RecentlyUsed } from './recently-used.js'
import type { LimitDecision, LimitStore, LimitWindow } from './types.js'

/** Bounds of the in-memory limit store. */
export interface MemoryLimitStoreOptions {
  /** At most this many keys are tracked; the least recently used is forgotten first. Default 100 000. */
  maxKeys?: number
}

interface FixedState {
  bucket: number
  count: number
}

interface LogEntry {
  at: number
  amount: number
  id: string
}

/** A sliding window's admissions, oldest first, with their running sum and an index by id. */
interface SlidingState {
  entries: LogEntry[]
  used: number
  byId: Map<string, LogEntry>
}

type State = FixedState | SlidingState

const DEFAULT_MAX_KEYS = 100_000

/**
 * Rate-limit counters kept in this process, answering synchronously. `fixed` windows are clock-aligned
 * buckets; `sliding` windows keep an exact log of admissions. Only right for a single instance: every
 * instance counts on its own. Past `maxKeys`, the least recently used key is forgotten (and so starts
 * afresh), which keeps memory bounded under many distinct keys. A key whose window has passed holds
 * nothing that counts (the window's own `now` arithmetic ignores it), so it simply waits to be reused or
 * forgotten.
 *
 * @example
 * const limits = createMemoryLimitStore()
 * limits.consume('user-1', 1, { limit: 10, windowMs: 60_000, technique: 'fixed' }, Date.now())
 */
export function createMemoryLimitStore(options: MemoryLimitStoreOptions = {}): LimitStore {
  const states = new RecentlyUsed<State>(options.maxKeys ?? DEFAULT_MAX_KEYS)
  let nextId = 0

  function consumeFixed(key: string, amount: number, window: LimitWindow, now: number): LimitDecision {
    const bucket = Math.floor(now / window.windowMs)
    const resetMs = (bucket + 1) * window.windowMs - now
    const stored = states.get(`f:${key}`) as FixedState | undefined
    const count = stored?.bucket === bucket ? stored.count : 0
    if (count + amount > window.limit) return { allowed: false, remaining: 0, resetMs }
    states.set(`f:${key}`, { bucket, count: count + amount })
    return {
      allowed: true,
      remaining: window.limit - count - amount,
      resetMs,
      reservation: String(bucket),
    }
  }

  function consumeSliding(key: string, amount: number, window: LimitWindow, now: number): LimitDecision {
    const log = liveLog(`s:${key}`, window, now)
    if (log.used + amount > window.limit) {
      return { allowed: false, remaining: 0, resetMs: slidingWait(log, amount, window, now) }
    }
    const entry = { at: now, amount, id: String(++nextId) }
    insertByTime(log.entries, entry)
    log.byId.set(entry.id, entry)
    log.used += amount
    states.set(`s:${key}`, log)
    return {
      allowed: true,
      remaining: window.limit - log.used,
      resetMs: log.entries[0]!.at + window.windowMs - now,
      reservation: entry.id,
    }
  }

  /**
   * The key's log without the entries that have aged out of the window at `now`. Each entry leaves the sum
   * once, as it ages out, so a decision never sums the whole window.
   */
  function liveLog(stateKey: string, window: LimitWindow, now: number): SlidingState {
    const log = (states.get(stateKey) as SlidingState | undefined) ?? {
      entries: [],
      used: 0,
      byId: new Map(),
    }
    const cutoff = now - window.windowMs
    let expired = 0
    while (expired < log.entries.length && log.entries[expired]!.at <= cutoff) {
      const entry = log.entries[expired++]!
      log.used -= entry.amount
      log.byId.delete(entry.id)
    }
    if (expired > 0) log.entries.splice(0, expired)
    return log
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
      if (window.technique === 'fixed') {
        const stored = states.get(`f:${key}`) as FixedState | undefined
        // A correction for a bucket that has ended would only distort the next one.
        const bucket = Math.floor(now / window.windowMs)
        if (stored === undefined || String(bucket) !== reservation || stored.bucket !== bucket) return
        stored.count = Math.max(0, stored.count + step)
        return
      }
      const log = liveLog(`s:${key}`, window, now)
      const entry = log.byId.get(reservation)
      if (entry === undefined) return
      const amount = Math.max(0, entry.amount + step)
      log.used += amount - entry.amount
      entry.amount = amount
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

function assertAmount(amount: number): void {
  if (!Number.isSafeInteger(amount) || amount < 1) {
    throw new RangeError(`A limit amount must be a positive integer, got ${amount}`)
  }
}
