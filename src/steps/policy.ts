import type { z } from 'zod'
import { chargedCost } from '../cost/answer-cost.js'
import { GatewayError } from '../errors.js'
import { notify, reportStoreError } from '../events.js'
import { type PoliciesOption, parseWith, policiesOption } from '../options.js'
import {
  compilePolicies,
  evaluatePolicies,
  type PolicyCallOptions,
  type PolicyCharge,
  type PolicyDecision,
  type PolicyRequest,
  settlePolicies,
} from '../policies/index.js'
import { createMemoryLimitStore } from '../stores/memory-limits.js'
import type { LimitStore } from '../stores/types.js'
import type { UpstreamTarget } from '../target.js'
import type { GatewayContext, Step } from '../types.js'

/** The reservations one target's evaluation took, settled with that target's cost. */
interface TargetCharges {
  readonly target: UpstreamTarget
  readonly charges: PolicyCharge[]
}

/**
 * Identity policies (see `src/policies`), evaluated for each model the request may reach: the first target's
 * decision answers the request (403 with 2130, 429 with 2131), and a fallback target that a policy refuses
 * is taken off the list, so neither a fallback nor a dynamic route's other branch can reach a model the
 * caller may not use, or one whose bucket is spent. Once the request is answered, the buckets of the model
 * that answered are charged its cost; every other reservation is given back.
 *
 * The policies are validated and compiled here, once: a wrong policy throws `GatewayOptionsError` naming it.
 * Caps count in the options' `store`, else `defaults.store` (the gateway passes a policy store of its own,
 * apart from the rate limits'), else in memory, per step.
 *
 * @example
 * policy({ rules: [{ id: 'per-user', actor: '{principal.id}', resource: '*', action: { type: 'limit', amount: 5, period: 'daily', technique: 'named-interval' } }] })
 */
export function policy(options: PoliciesOption, defaults: { store?: LimitStore | undefined } = {}): Step {
  const parsed = normalize(parseWith(policiesOption, options, 'policies'))
  const { rules, storeTimeoutMs, keyPrefix, maxConditionBytes } = parsed
  const compiled = compilePolicies(rules, { keyPrefix, maxConditionBytes })
  const store = parsed.store ?? defaults.store ?? createMemoryLimitStore()
  const step: Step = async function policy(ctx, next) {
    const targets = ctx.state.targets
    if (compiled.policies.length === 0 || targets === undefined || targets.length === 0) return next()
    const call = callOptions(ctx, storeTimeoutMs)
    const [first, ...others] = targets
    const decide = (target: UpstreamTarget) => evaluatePolicies(compiled, requestOf(ctx, target), store, call)
    const decision = await decide(first!)
    if (!decision.allowed) throw refusal(decision)
    const admitted: TargetCharges[] = [{ target: first!, charges: decision.charges }]
    if (others.length > 0) {
      const decisions = await Promise.all(others.map(decide))
      ctx.state.targets = [first!]
      for (const [index, other] of decisions.entries()) {
        if (!other.allowed) continue
        ctx.state.targets.push(others[index]!)
        admitted.push({ target: others[index]!, charges: other.charges })
      }
    }
    try {
      await next()
    } finally {
      settle(ctx, store, admitted, call)
    }
  }
  if (compiled.policies.some((entry) => entry.policy.action.type === 'limit')) step.watchesUsage = true
  return step
}

/** The option's two forms as one: a bare list is the rules with every default. */
function normalize(
  option: z.output<typeof policiesOption>,
): Exclude<z.output<typeof policiesOption>, unknown[]> {
  return Array.isArray(option) ? { rules: option } : option
}

function requestOf(ctx: GatewayContext, target: UpstreamTarget): PolicyRequest {
  return {
    principal: ctx.state.principal,
    metadata: ctx.state.metadata ?? {},
    provider: target.provider.spec.id,
    model: target.model,
    path: ctx.request.path,
    method: ctx.request.method,
    now: ctx.gateway.now(),
  }
}

/** Failures allow the request (the reference's rule); they are reported so operators see them. */
function callOptions(ctx: GatewayContext, storeTimeoutMs: number | undefined): PolicyCallOptions {
  return {
    storeTimeoutMs,
    onError: (failure) => {
      if (failure.kind === 'store')
        reportStoreError(ctx, 'limit', `policy.${failure.operation}`, failure.error)
      else
        notify(ctx.gateway.events, 'policy:error', {
          id: ctx.id,
          policyId: failure.policyId,
          error: failure.error,
        })
    },
  }
}

function refusal(decision: Exclude<PolicyDecision, { allowed: true }>): GatewayError {
  if (decision.status === 403) {
    const detail =
      decision.reason === 'blocked' ? `policy '${decision.policyId}' blocks it` : 'no policy covers it'
    return new GatewayError('POLICY_DENIED', detail, {
      body: { success: false, error: { ...decision.body.error, code: 2130 } },
    })
  }
  const { bucket, period } = decision.body.error
  return new GatewayError(
    'POLICY_SPEND_LIMITED',
    `policy '${decision.policyId}', bucket '${bucket}' (${period})`,
    {
      headers: { 'retry-after': String(decision.retryAfterSeconds) },
      body: { success: false, error: { ...decision.body.error, code: 2131 } },
    },
  )
}

/**
 * Charges the answering model's buckets its cost, once the answer is read, and gives every other
 * reservation back (a fallback that was not needed, a provider that failed, a cache hit).
 */
function settle(
  ctx: GatewayContext,
  store: LimitStore,
  admitted: readonly TargetCharges[],
  call: PolicyCallOptions,
): void {
  const response = ctx.response
  const answered = response !== undefined && response.status < 400 ? ctx.state.target : undefined
  const options = () => ({ ...call, now: ctx.gateway.now() })
  for (const { target, charges } of admitted) {
    if (charges.length === 0) continue
    if (target !== answered || ctx.state.usage === undefined) {
      // Unanswered, nothing spent; answered without a usage report, the reservation stands.
      if (target !== answered) void settlePolicies(charges, 0, store, options())
      continue
    }
    void ctx.state.usage.then((usage) => {
      const cost = usage === undefined ? undefined : chargedCost(ctx, target, usage)
      return settlePolicies(charges, cost, store, options())
    })
  }
}
