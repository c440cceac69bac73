/**
 * The storage interfaces. Each may answer synchronously or with a promise, so an in-memory store costs no
 * microtask and a networked one fits the same shape. The gateway bounds every call with its own timeout and
 * decides what a failure means; a store only has to answer or throw.
 */

export type MaybePromise<T> = T | Promise<T>

/** A complete successful response as the cache keeps it. */
export interface CacheEntry {
  status: number
  /** The response headers worth replaying (no hop-by-hop, no length, no per-request `cf-aig-*` ids). */
  headers: Record<string, string>
  /** The whole body as the client received it; for streams, every SSE byte up to the terminal event. */
  body: Uint8Array
  /** Milliseconds since the epoch when it was stored. */
  storedAt: number
}

/**
 * Where cached responses live. Keys are opaque hex strings the gateway derives (already scoped to the
 * gateway, the principal and the credential); a store may prefix them but must not interpret them.
 */
export interface CacheStore {
  get(key: string): MaybePromise<CacheEntry | undefined>
  /** Stores the entry for `ttlSeconds`; replaces an existing one. */
  set(key: string, entry: CacheEntry, ttlSeconds: number): MaybePromise<void>
  delete(key: string): MaybePromise<void>
  /**
   * Releases what the store holds (connections, timers). Optional. The gateway calls it from `close()` only
   * on stores it made itself; a store the host passed in is the host's to close.
   */
  close?(): MaybePromise<void>
}

/** One limit's window: how much may be taken per window, and how the window moves. */
export interface LimitWindow {
  /** Requests or tokens allowed per window. */
  readonly limit: number
  readonly windowMs: number
  /**
   * `fixed`: windows aligned to the clock (`floor(now / windowMs)`), as the reference counts them.
   * `sliding`: at most `limit` in the trailing `windowMs` at any instant (an exact log, not an estimate).
   */
  readonly technique: 'fixed' | 'sliding'
}

export interface LimitDecision {
  readonly allowed: boolean
  /** What is left in the window after this call (0 when refused). */
  readonly remaining: number
  /** Milliseconds until the window has room again: for `fixed`, the window's end; for `sliding`, until enough of the log has aged out to admit this amount. */
  readonly resetMs: number
  /** Present when allowed: what `adjust` needs to correct this admission later. Opaque to the gateway. */
  readonly reservation?: string | undefined
}

/** What the caller of a `LimitStore` method says about that one call. */
export interface LimitCallOptions {
  /**
   * How long the caller waits for this call, in ms from the moment it makes it. Past that the caller has
   * decided without the store (by the rule's `onStoreError` policy), so the call must no longer change
   * anything: a store that can tell when a command reaches it too late refuses it (rejects, changing
   * nothing) rather than counting a request that was already decided elsewhere. The Redis store checks it
   * against the server's clock inside its script. Absent: no deadline.
   */
  readonly timeoutMs?: number | undefined
}

/**
 * Counters for rate limits. `consume` must be atomic across every instance sharing the store: an amount is
 * admitted only if it fits, and a refused amount takes nothing.
 */
export interface LimitStore {
  /** Takes `amount` (at least 1) from `key`'s window at time `now` (ms since the epoch) if it fits. */
  consume(
    key: string,
    amount: number,
    window: LimitWindow,
    now: number,
    options?: LimitCallOptions,
  ): MaybePromise<LimitDecision>
  /**
   * Corrects an admitted amount by `delta` (positive or negative) once the real figure is known, e.g. the
   * tokens a response actually used against the estimate reserved. Never fails a request; a window that has
   * since ended may ignore it.
   */
  adjust(
    key: string,
    reservation: string,
    delta: number,
    window: LimitWindow,
    now: number,
    options?: LimitCallOptions,
  ): MaybePromise<void>
  /** Releases what the store holds. Optional; called by the gateway only on stores it made (see `CacheStore.close`). */
  close?(): MaybePromise<void>
}

/** How a circuit breaker trips and recovers: the same for every target, passed with every call. */
export interface BreakerPolicy {
  /** Failures within `windowMs` that open the breaker. */
  readonly failures: number
  readonly windowMs: number
  /** How long an open breaker keeps its target skipped before one probe may test it. */
  readonly openMs: number
  /** How long the one probe of a half-open breaker has to report before another caller may probe. */
  readonly probeMs: number
}

/**
 * What a breaker says of its target:
 * - `closed`: call it. `failing` says failures are counted in the current window, so a success should
 *   be reported to clear them (a store may answer false when it cannot tell cheaply: then successes are
 *   not reported, and the count simply ages out with its window).
 * - `probe`: the breaker was open and its time is up: this caller, and no other, may test the target.
 * - `open`: skip the target; it may be tried again in `retryInMs`.
 */
export type BreakerState =
  | { readonly state: 'closed'; readonly failing: boolean }
  | { readonly state: 'probe' }
  | { readonly state: 'open'; readonly retryInMs: number }

/**
 * Circuit breakers per target (a provider, model and credential, as an opaque key), shared by every
 * instance that shares the store. Calls must be atomic across instances: two callers of a half-open
 * breaker never both get `probe` (until `probeMs` passed without a report).
 */
export interface BreakerStore {
  /** Whether `key`'s target may be called at `now` (ms since the epoch). */
  check(key: string, policy: BreakerPolicy, now: number): MaybePromise<BreakerState>
  /**
   * A call to `key` failed. Counts it in the window, opening the breaker at `policy.failures`; a failed
   * probe opens it again at once; `openForMs` (from a provider's `Retry-After`) opens it at once for at
   * least that long. Answers the state after the call.
   */
  failure(key: string, policy: BreakerPolicy, now: number, openForMs?: number): MaybePromise<BreakerState>
  /** A call to `key` succeeded: its counted failures are forgotten, and a half-open breaker closes. */
  success(key: string, policy: BreakerPolicy, now: number): MaybePromise<void>
  /** Releases what the store holds. Optional; called by the gateway only on stores it made (see `CacheStore.close`). */
  close?(): MaybePromise<void>
}
