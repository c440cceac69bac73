import { EventEmitter } from 'eventemitter3'
import type { FailureClass } from './upstream/failure.js'

export interface RequestStartEvent {
  id: string
  method: string
  path: string
  /** `provider`, `compat` or `universal`. */
  surface: string
}
export interface UpstreamRequestEvent {
  id: string
  provider: string
  /** Index of the universal step (0 otherwise). */
  step: number
  /** Origin and path, without the query string (it may carry a provider key). */
  url: string
  method: string
  attempt: number
}
export interface UpstreamResponseEvent {
  id: string
  provider: string
  step: number
  status: number
  attempt: number
  /** Milliseconds from sending the request to the response headers. */
  durationMs: number
}
/** An attempt failed and another one (same target or the next) follows. */
export interface UpstreamRetryEvent {
  id: string
  provider: string
  step: number
  attempt: number
  /** The provider's status, or the gateway error code when no response came. */
  status: number | undefined
  reason: string
  /** What kind of failure it was (`timeout`, `rate_limited`, ...); see `FailureClass`. */
  failureClass: FailureClass | undefined
  /** Wait before the next attempt; 0 when falling back to the next target. */
  delayMs: number
  /**
   * `retry` (same target again), `fallback` (next target), `skip` (its circuit breaker is open) or
   * `resume` (its stream failed after part of it was sent: the next target goes on from there).
   */
  action: 'retry' | 'fallback' | 'skip' | 'resume'
}
export interface RequestEndEvent {
  id: string
  status: number
  provider: string | undefined
  /** Milliseconds from entering the gateway to the last byte (or the abort). */
  durationMs: number
  bytesIn: number
  bytesOut: number
  /** `completed`: every byte delivered; `aborted`: the client left; `error`: the stream failed. */
  outcome: 'completed' | 'aborted' | 'error'
  /** `HIT` or `MISS` when the request was cacheable. */
  cacheStatus?: 'HIT' | 'MISS' | undefined
  error?: { code: number; message: string } | undefined
}

/**
 * A store failed or timed out; the request went on by the store's failure policy. A stored key that could
 * not be read (`keys`: the store failed, or the record is under a master key the ring lacks) refuses the
 * request (503, 2117); `error` is the `KeyStoreError` or `StoreTimeoutError`, which never holds a key.
 */
export interface StoreErrorEvent {
  /** The request whose call failed; none for a call no request made (an admin call, a route refresh). */
  id?: string | undefined
  store: 'cache' | 'limit' | 'logs' | 'breaker' | 'routes' | 'keys'
  operation: string
  error: unknown
}

/** A policy's condition could not be evaluated for a request; that policy was skipped, the others still applied. */
export interface PolicyErrorEvent {
  id: string
  policyId: string
  error: unknown
}

/**
 * Log records were lost: the queue was full, the store refused a batch or did not finish it in time, or a
 * record could not be built.
 */
export interface LogDroppedEvent {
  count: number
  /** Dropped since the gateway started. */
  total: number
  /**
   * `write-failed`: the store refused the batch or took longer than `logs.writeTimeoutMs`; `store-stalled`:
   * still queued when a flush met such a write, and not written.
   */
  reason: 'queue-full' | 'write-failed' | 'build-failed' | 'store-stalled'
}

/** A WebSocket the gateway took: a realtime session once its provider accepted it, or a universal socket. */
export interface WebSocketOpenEvent {
  /** The session's request id (its log record's id); a universal socket's own id. */
  id: string
  kind: 'realtime' | 'universal'
  /** Path relative to the mount point. */
  path: string
  /** The realtime session's provider; `undefined` for a universal socket. */
  provider: string | undefined
}

/** A WebSocket ended. For a realtime session it comes once the session's log record is queued. */
export interface WebSocketCloseEvent {
  id: string
  kind: 'realtime' | 'universal'
  /** The close code the connection ended with, as the client was told it (1006 when it just went away). */
  code: number
  reason: string
  /** Which side ended it: the client, the provider, or the gateway (a limit, a timeout, `close()`). */
  closedBy: 'client' | 'provider' | 'gateway'
  durationMs: number
  /** Frames and bytes from the client (on to the provider), and back to it. */
  framesIn: number
  framesOut: number
  bytesIn: number
  bytesOut: number
}

/**
 * A reader fell behind and the side feeding it was paused (`paused`), or it caught up and that side was
 * resumed (`resumed`). `source` is what stopped being read: a provider's socket, the client's socket, or a
 * universal stream's body; `bufferedAmount` is what was queued towards the slow reader at that moment.
 */
export interface WebSocketBackpressureEvent {
  id: string
  source: 'provider' | 'client' | 'stream'
  state: 'paused' | 'resumed'
  bufferedAmount: number
}

/** The typed events a gateway emits. Listeners observe; they cannot change a request. */
export interface GatewayEvents {
  'request:start': (event: RequestStartEvent) => void
  'upstream:request': (event: UpstreamRequestEvent) => void
  'upstream:response': (event: UpstreamResponseEvent) => void
  'upstream:retry': (event: UpstreamRetryEvent) => void
  'request:end': (event: RequestEndEvent) => void
  'store:error': (event: StoreErrorEvent) => void
  'policy:error': (event: PolicyErrorEvent) => void
  'log:dropped': (event: LogDroppedEvent) => void
  'websocket:open': (event: WebSocketOpenEvent) => void
  'websocket:close': (event: WebSocketCloseEvent) => void
  'websocket:backpressure': (event: WebSocketBackpressureEvent) => void
  /** Bugs in steps and exceptions thrown by listeners. */
  error: (error: unknown) => void
}

export type GatewayEmitter = EventEmitter<GatewayEvents>

/**
 * Emits without letting a listener break the request: each listener runs in its own try/catch and a throw
 * is re-emitted as `error` (and dropped if an `error` listener throws too). Otherwise as `emit`: a `once`
 * listener is removed before it runs, and each is called with the context it was registered with.
 */
export function notify<E extends Exclude<keyof GatewayEvents, 'error'>>(
  events: GatewayEmitter,
  name: E,
  payload: Parameters<GatewayEvents[E]>[0],
): void {
  if (events.listenerCount(name) === 0) return
  for (const listener of registeredListeners(events, name)) {
    try {
      callListener(events, name, listener, payload)
    } catch (error) {
      reportError(events, error)
    }
  }
}

/** True when someone listens, so callers can skip building a payload nobody reads. */
export function isObserved(events: GatewayEmitter, name: keyof GatewayEvents): boolean {
  return events.listenerCount(name) > 0
}

export function reportError(events: GatewayEmitter, error: unknown): void {
  for (const listener of registeredListeners(events, 'error')) {
    try {
      callListener(events, 'error', listener, error)
    } catch {
      // An error listener that throws has nowhere left to report to.
    }
  }
}

/** How eventemitter3 keeps a listener: the function, its `this`, and whether it is removed once called. */
interface RegisteredListener {
  readonly fn: (payload: unknown) => void
  readonly context: unknown
  readonly once: boolean
}

/**
 * The listeners of an event with their `once` flag and context, which the public `listeners()` drops; the
 * one public method that honours them, `emit`, stops at the first listener that throws. So this reads
 * eventemitter3's own record (`_events`, keyed by the event name behind `EventEmitter.prefixed`). A copy:
 * listeners added or removed while they run take effect from the next event, as with `emit`.
 */
function registeredListeners(events: GatewayEmitter, name: keyof GatewayEvents): RegisteredListener[] {
  const store = (events as unknown as { _events: Record<string, RegisteredListener | RegisteredListener[]> })
    ._events
  const entry = store[EventEmitter.prefixed ? `${EventEmitter.prefixed}${name}` : name]
  if (entry === undefined) return []
  return Array.isArray(entry) ? entry.slice() : [entry]
}

function callListener(
  events: GatewayEmitter,
  name: keyof GatewayEvents,
  listener: RegisteredListener,
  payload: unknown,
): void {
  if (listener.once) events.removeListener(name, listener.fn as never, undefined, true)
  listener.fn.call(listener.context, payload)
}

/** Reports a failed store call without failing the request. */
export function reportStoreError(
  ctx: { readonly id: string; readonly gateway: { readonly events: GatewayEmitter } },
  store: StoreErrorEvent['store'],
  operation: string,
  error: unknown,
): void {
  notify(ctx.gateway.events, 'store:error', { id: ctx.id, store, operation, error })
}
