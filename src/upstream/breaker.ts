import { createHash } from 'node:crypto'
import { reportStoreError } from '../events.js'
import { callStore } from '../stores/call.js'
import type { BreakerPolicy, BreakerState, BreakerStore, MaybePromise } from '../stores/types.js'
import type { UpstreamTarget } from '../target.js'
import type { GatewayContext } from '../types.js'
import type { FailureClass } from './failure.js'

/** A `forward()` step's circuit breakers: where their state lives, and what trips them. */
export interface Breakers {
  readonly store: BreakerStore
  readonly policy: BreakerPolicy
  /** Failure classes that count against a target (a bad request or a refusal says nothing of its health). */
  readonly counts: ReadonlySet<FailureClass>
  /** When every target of a request is open: `try` the last one anyway, or `refuse` at once (503, 2125). */
  readonly whenAllOpen: 'try' | 'refuse'
  readonly storeTimeoutMs: number
}

const CLOSED: BreakerState = { state: 'closed', failing: false }

/**
 * Asks the store whether `target` may be called. A store that fails or is slow costs nothing but its
 * timeout: the breaker is taken as closed (traffic is never refused for want of a store), and the failure
 * is reported as `store:error`. A store that answers synchronously (the memory store) is answered
 * synchronously, with no promise on the request's path.
 */
export function checkBreaker(
  ctx: GatewayContext,
  breakers: Breakers,
  target: UpstreamTarget,
): MaybePromise<BreakerState> {
  const key = breakerKey(target)
  const closedOnError = (error: unknown): BreakerState => {
    reportStoreError(ctx, 'breaker', 'check', error)
    return CLOSED
  }
  try {
    const state = callStore(
      () => breakers.store.check(key, breakers.policy, ctx.gateway.now()),
      breakers.storeTimeoutMs,
    )
    return state instanceof Promise ? state.catch(closedOnError) : state
  } catch (error) {
    return closedOnError(error)
  }
}

/**
 * Tells the store how an attempt on `target` went, without waiting for it: a success is reported only
 * where the breaker had something to forget (counted failures, a probe), and a failure only for the classes
 * that count. A provider's `Retry-After` on a 429 or 503 opens the breaker for that long.
 */
export function reportAttempt(
  ctx: GatewayContext,
  breakers: Breakers,
  target: UpstreamTarget,
  checked: BreakerState,
  result:
    | { ok: true }
    | { ok: false; failureClass: FailureClass | undefined; retryAfterMs: number | undefined },
): void {
  const { store, policy } = breakers
  const now = ctx.gateway.now()
  let call: () => unknown
  if (result.ok) {
    if (checked.state === 'open' || (checked.state === 'closed' && !checked.failing)) return
    call = () => store.success(breakerKey(target), policy, now)
  } else {
    if (result.failureClass === undefined || !breakers.counts.has(result.failureClass)) return
    const openForMs =
      result.retryAfterMs === undefined ? undefined : Math.min(result.retryAfterMs, MAX_RETRY_AFTER_OPEN_MS)
    call = () => store.failure(breakerKey(target), policy, now, openForMs)
  }
  Promise.resolve(callStore(call, breakers.storeTimeoutMs)).catch((error: unknown) => {
    reportStoreError(ctx, 'breaker', result.ok ? 'success' : 'failure', error)
  })
}

/**
 * The longest a provider's `Retry-After` opens a breaker for. A provider may ask for days (or send a number
 * no clock reaches); past this, one request an hour probes the target, and an answer asking again reopens it.
 */
const MAX_RETRY_AFTER_OPEN_MS = 60 * 60 * 1000

// Digests of the credentials seen last, so a breaker per key costs no SHA-256 per request.
const recentTags = new Map<string, string>()
const RECENT_TAGS = 256

// The last key made and what it was made of. Most gateways send every request with one key to one model,
// and comparing strings costs far less than hashing them: a 171-character OpenAI key took some 3k
// instructions to hash for `recentTags`, and a key made anew for every request 1k more in the store's map.
let last = { credential: '', providerId: '', model: undefined as string | undefined, key: '' }

/**
 * The breaker a target belongs to: its provider, model and credential. The credential is kept as a short
 * digest, never as itself: breaker keys live in shared stores and show up in events.
 */
export function breakerKey(target: UpstreamTarget): string {
  const { provider, model } = target
  const credential = carriedCredential(target)
  const providerId = provider.spec.id
  if (credential === last.credential && providerId === last.providerId && model === last.model)
    return last.key
  let tag = recentTags.get(credential)
  if (tag === undefined) {
    tag = credential === '' ? '-' : createHash('sha256').update(credential).digest('base64url').slice(0, 16)
    if (recentTags.size >= RECENT_TAGS) recentTags.delete(recentTags.keys().next().value!)
    recentTags.set(credential, tag)
  }
  const key = `${providerId}|${model ?? ''}|${tag}`
  last = { credential, providerId, model, key }
  return key
}

/**
 * Every credential the target carries, as one string: each key header it has (Anthropic's `x-api-key`, and
 * `authorization` where the provider takes a key there too) and Google's `?key=`. Callers with keys of
 * their own then never share a breaker, however they pass them; with one header, as most requests have,
 * it is that header's value, with no string made.
 */
function carriedCredential(target: UpstreamTarget): string {
  const { provider, headers, path } = target
  let credential = ''
  for (const name of provider.keyHeaders) {
    const value = headers[name]
    if (value !== undefined) credential = credential === '' ? value : `${credential}\n${value}`
  }
  const query = provider.spec.credentialQuery
  if (query === undefined) return credential
  const search = path.indexOf('?')
  if (search === -1) return credential
  const values = new URLSearchParams(path.slice(search)).getAll(query)
  return values.length === 0 ? credential : `${credential}\n?${values.join('&')}`
}
