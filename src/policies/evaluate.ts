/**
 * The reference's evaluation of identity policies, and the spend counters behind their caps.
 *
 * Counters live in a `LimitStore` as `fixed` windows, counting micro-dollars. A fixed window is
 * `floor(now / windowMs)`, which cannot describe a calendar month or an ISO week (the epoch was a
 * Thursday), so each counter's key carries its period's start (`...:daily:2026-12-31T00:00:00.000Z`) and
 * the store is handed the time since that start, with the period's length as `windowMs`: the whole period
 * is then the store's window 0, `resetMs` is the time left in the period, and a store that expires keys
 * (Redis) expires each counter shortly after its period ends. The stores only ever use `now` for that
 * arithmetic, never as a wall-clock date.
 *
 * A request reserves one micro-dollar in each bucket that caps it (refused when the bucket is at or over
 * its cap), and the reservation is corrected to the answer's cost once it is known. Requests in flight are
 * not counted at their cost yet, so a burst can overshoot a cap by what it spends, as the reference warns.
 */
import { callStore } from '../stores/call.js'
import type { LimitDecision, LimitStore, LimitWindow } from '../stores/types.js'
import { type ConditionContext, conditionContext } from './condition.js'
import { matchResource, resolveActor } from './match.js'
import { costMicros, MICROS_PER_DOLLAR } from './micros.js'
import { type Period, periodWindow } from './periods.js'
import type {
  CompiledPolicies,
  CompiledPolicy,
  PolicyCallOptions,
  PolicyCharge,
  PolicyDecision,
  PolicyFailure,
  PolicyRequest,
  SettlePolicyOptions,
} from './types.js'

const DEFAULT_STORE_TIMEOUT_MS = 250
/** Lets a recording through whatever the bucket holds: a cost already spent is counted, never refused. */
const UNBOUNDED = Number.MAX_SAFE_INTEGER

const DENIED = { success: false, error: { message: 'Access denied by policy' } } as const

/** A policy that covers the request, with the bucket it counts in (none for a `block` with `except`). */
interface Matched {
  readonly compiled: CompiledPolicy
  readonly actor: string | undefined
}

/** One cap to check: the highest of a bucket's caps over one period. */
interface Cap {
  readonly compiled: CompiledPolicy
  readonly bucket: string
  readonly counter: string
  readonly period: Period
  readonly limit: number
}

type Admission =
  | { readonly kind: 'admitted'; readonly charge: PolicyCharge }
  | {
      readonly kind: 'refused'
      readonly cap: Cap
      readonly decision: LimitDecision
      readonly charge: PolicyCharge
    }
  | { readonly kind: 'unavailable' }

/**
 * Decides a request, in the reference's order: no policies allow everything; a matching `block` refuses
 * (403); a request no policy matches is refused (403); the matching policies are grouped into buckets by
 * resolved actor and resource, a `no-limit` exempts its bucket, the highest cap of each period counts, and
 * a bucket at or over its cap refuses (429, `retryAfterSeconds` until its period ends).
 *
 * Failures never refuse: a policy whose condition fails to evaluate (a missing key, a wrong type) is
 * skipped on its own, and the others still decide and charge (a request that only such a policy could have
 * covered is let through); a counter the store cannot reach in time is skipped. Each failure goes to
 * `onError`.
 *
 * @example
 * const decision = await evaluatePolicies(policies, { principal, metadata, provider: 'openai', model: 'gpt-4o', path, method: 'POST', now: Date.now() }, store)
 * if (!decision.allowed) return respond(decision.status, decision.body)
 */
export async function evaluatePolicies(
  compiled: CompiledPolicies,
  request: PolicyRequest,
  store: LimitStore,
  options: PolicyCallOptions = {},
): Promise<PolicyDecision> {
  if (compiled.policies.length === 0) return { allowed: true, charges: [], matched: [] }
  const report = reporter(options)
  const actorInput = { principal: request.principal, metadata: request.metadata }
  let context: ConditionContext | undefined
  let failed = false
  const matched: Matched[] = []
  for (const policy of compiled.policies) {
    if (!matchResource(policy.resource, request.provider, request.model)) continue
    const actor = resolveActor(policy.actor, actorInput)
    const { action } = policy.policy
    const except = action.type === 'block' && action.except === true
    // An `except` block concerns the callers its actor does not cover, so those still need its condition.
    if (actor === undefined && !except) continue
    if (policy.condition !== undefined) {
      context ??= conditionContext(request)
      let holds: boolean
      try {
        holds = policy.condition.evaluate(context)
      } catch (error) {
        report({ kind: 'condition', policyId: policy.policy.id, error })
        // Skipped on its own: the caller can make a condition fail (leave a key out), so a failure must not
        // lift the other policies' caps and charges.
        failed = true
        continue
      }
      if (!holds) continue
    }
    if (action.type === 'block' && (!except || actor === undefined)) {
      // Whatever the other policies say, a block refuses: no need to evaluate them.
      return { allowed: false, status: 403, reason: 'blocked', policyId: policy.policy.id, body: DENIED }
    }
    // An `except` block's own actor is let through by it: matched, in no bucket.
    matched.push({ compiled: policy, actor: except ? undefined : actor })
  }
  if (matched.length === 0) {
    // The reference lets traffic through when a policy cannot be evaluated: that one may have covered it.
    if (failed) return { allowed: true, charges: [], matched: [] }
    return { allowed: false, status: 403, reason: 'unmatched', body: DENIED }
  }
  const ids = matched.map((match) => match.compiled.policy.id)
  const caps = capsOf(matched, compiled.keyPrefix)
  if (caps.length === 0) return { allowed: true, charges: [], matched: ids }
  const timeoutMs = options.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS
  const admissions = await Promise.all(caps.map((cap) => admit(store, cap, request.now, timeoutMs, report)))
  const charges = admissions.flatMap((admission) => (admission.kind === 'admitted' ? [admission.charge] : []))
  const refused = admissions.find((admission) => admission.kind === 'refused')
  if (refused === undefined) return { allowed: true, charges, matched: ids }
  await Promise.all(charges.map((charge) => correct(store, charge, -1, request.now, timeoutMs, report)))
  const spent =
    (await spentMicros(store, refused.charge, request.now, timeoutMs, report)) ?? refused.cap.limit
  return {
    allowed: false,
    status: 429,
    policyId: refused.cap.compiled.policy.id,
    retryAfterSeconds: Math.max(1, Math.ceil(refused.decision.resetMs / 1000)),
    body: {
      success: false,
      error: {
        message: 'Spending limit exceeded',
        bucket: refused.cap.bucket,
        period: refused.cap.period,
        spent: spent / MICROS_PER_DOLLAR,
        limit: refused.cap.limit / MICROS_PER_DOLLAR,
      },
    },
  }
}

/**
 * Buckets by (resolved actor, resource), in the order their first policy comes; a bucket with a `no-limit`
 * has no caps, and of several caps over the same period the highest counts.
 */
function capsOf(matched: readonly Matched[], keyPrefix: string): Cap[] {
  const buckets = new Map<string, { actor: string; resource: string; policies: CompiledPolicy[] }>()
  for (const { compiled, actor } of matched) {
    if (actor === undefined) continue
    const resource = compiled.policy.resource
    const id = `${encodeURIComponent(actor)}:${encodeURIComponent(resource)}`
    let bucket = buckets.get(id)
    if (bucket === undefined) {
      bucket = { actor, resource, policies: [] }
      buckets.set(id, bucket)
    }
    bucket.policies.push(compiled)
  }
  const caps: Cap[] = []
  for (const [id, bucket] of buckets) {
    if (bucket.policies.some((policy) => policy.policy.action.type === 'no-limit')) continue
    const highest = new Map<Period, CompiledPolicy>()
    for (const policy of bucket.policies) {
      const { action } = policy.policy
      if (action.type !== 'limit') continue
      const current = highest.get(action.period)
      if (current === undefined || policy.limitMicros! > current.limitMicros!)
        highest.set(action.period, policy)
    }
    for (const [period, policy] of highest) {
      caps.push({
        compiled: policy,
        bucket: `${bucket.actor}:${bucket.resource}`,
        counter: `${keyPrefix}${id}:${period}`,
        period,
        limit: policy.limitMicros!,
      })
    }
  }
  return caps
}

/** Reserves one micro-dollar in a cap's counter for the period containing `now`. */
async function admit(
  store: LimitStore,
  cap: Cap,
  now: number,
  timeoutMs: number,
  report: (failure: PolicyFailure) => void,
): Promise<Admission> {
  const { start, end } = periodWindow(cap.period, now)
  const window: LimitWindow = { limit: cap.limit, windowMs: end - start, technique: 'fixed' }
  const key = counterKey(cap.counter, start)
  const chargeOf = (reservation: string): PolicyCharge => ({
    bucket: cap.bucket,
    counter: cap.counter,
    period: cap.period,
    start,
    end,
    key,
    reservation,
    window,
  })
  let decision: LimitDecision
  try {
    decision = await callStore(
      () => store.consume(key, 1, window, now - start, { timeoutMs }),
      timeoutMs,
      // Counted after the request went on without it: given back, so the counter holds only what counts.
      (late) => {
        if (late.allowed && late.reservation !== undefined) {
          void correct(store, chargeOf(late.reservation), -1, now, timeoutMs, report)
        }
      },
    )
  } catch (error) {
    report({ kind: 'store', operation: 'consume', key, error })
    return { kind: 'unavailable' }
  }
  if (!decision.allowed) return { kind: 'refused', cap, decision, charge: chargeOf('') }
  if (decision.reservation === undefined) return { kind: 'unavailable' }
  return { kind: 'admitted', charge: chargeOf(decision.reservation) }
}

/**
 * What a refused bucket holds, for the 429 body. The store interface has no read, so this takes one more
 * micro-dollar with no cap (its `remaining` tells the count) and gives it back. `undefined` when the store
 * cannot say.
 */
async function spentMicros(
  store: LimitStore,
  charge: PolicyCharge,
  now: number,
  timeoutMs: number,
  report: (failure: PolicyFailure) => void,
): Promise<number | undefined> {
  const window: LimitWindow = { ...charge.window, limit: UNBOUNDED }
  let decision: LimitDecision
  try {
    decision = await callStore(
      () => store.consume(charge.key, 1, window, now - charge.start, { timeoutMs }),
      timeoutMs,
      (late) => {
        if (late.reservation !== undefined) {
          void correct(
            store,
            { ...charge, reservation: late.reservation, window },
            -1,
            now,
            timeoutMs,
            report,
          )
        }
      },
    )
  } catch (error) {
    report({ kind: 'store', operation: 'consume', key: charge.key, error })
    return undefined
  }
  if (!decision.allowed || decision.reservation === undefined) return undefined
  await correct(store, { ...charge, reservation: decision.reservation, window }, -1, now, timeoutMs, report)
  return UNBOUNDED - decision.remaining - 1
}

/**
 * Settles an admitted request's reservations with what its answer cost, in USD: each bucket is charged
 * `costUsd` in place of the micro-dollar it reserved. `costUsd` 0 (the provider failed or refused, a cache
 * hit) gives the reservations back; `undefined` (no price for the model, no usage report) leaves them, so a
 * budget is never charged less than it was. An answer that ends after its period did is charged to the
 * period it ended in, as the reference records cost at completion. Never throws; store failures go to
 * `onError`.
 *
 * @example
 * await settlePolicies(decision.charges, 0.0042, store)
 */
export async function settlePolicies(
  charges: readonly PolicyCharge[],
  costUsd: number | undefined,
  store: LimitStore,
  options: SettlePolicyOptions = {},
): Promise<void> {
  if (costUsd === undefined || charges.length === 0) return
  const micros = costMicros(costUsd)
  if (micros === undefined) return
  const now = options.now ?? Date.now()
  const timeoutMs = options.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS
  const report = reporter(options)
  await Promise.all(
    charges.map((charge) =>
      now < charge.end
        ? correct(store, charge, micros - 1, now, timeoutMs, report)
        : record(store, charge, micros, now, timeoutMs, report),
    ),
  )
}

/** Charges a cost to the period containing `now` (a later one than the reservation's), whatever it holds. */
async function record(
  store: LimitStore,
  charge: PolicyCharge,
  micros: number,
  now: number,
  timeoutMs: number,
  report: (failure: PolicyFailure) => void,
): Promise<void> {
  if (micros <= 0) return
  const { start, end } = periodWindow(charge.period, now)
  const key = counterKey(charge.counter, start)
  const window: LimitWindow = { limit: UNBOUNDED, windowMs: end - start, technique: 'fixed' }
  try {
    await callStore(() => store.consume(key, micros, window, now - start, { timeoutMs }), timeoutMs)
  } catch (error) {
    report({ kind: 'store', operation: 'consume', key, error })
  }
}

/** Moves a reservation by `delta` micro-dollars, within its period; failures are reported, never thrown. */
async function correct(
  store: LimitStore,
  charge: PolicyCharge,
  delta: number,
  now: number,
  timeoutMs: number,
  report: (failure: PolicyFailure) => void,
): Promise<void> {
  if (delta === 0) return
  try {
    await callStore(
      () =>
        store.adjust(charge.key, charge.reservation, delta, charge.window, now - charge.start, { timeoutMs }),
      timeoutMs,
    )
  } catch (error) {
    report({ kind: 'store', operation: 'adjust', key: charge.key, error })
  }
}

function counterKey(counter: string, start: number): string {
  return `${counter}:${new Date(start).toISOString()}`
}

/** `onError`, shielded: a listener that throws must not turn a failure that allows into one that refuses. */
function reporter(options: PolicyCallOptions): (failure: PolicyFailure) => void {
  const { onError } = options
  if (onError === undefined) return () => {}
  return (failure) => {
    try {
      onError(failure)
    } catch {
      // The listener's own failure has nowhere better to go.
    }
  }
}
