import type { LimitWindow } from '../stores/types.js'
import type { CompiledCondition } from './condition.js'
import type { Actor, Resource } from './match.js'
import type { Period } from './periods.js'

/** What a matching policy does: exempt its bucket, refuse the request, or cap the bucket's spend. */
export type PolicyAction =
  | { readonly type: 'no-limit' }
  /**
   * Refuses matching requests with 403. With `except: true` it refuses the requests its resource (and
   * condition) cover whose caller its actor does not: `{ actor: 'alice@example.com', resource:
   * 'openai/gpt-4o', action: { type: 'block', except: true } }` keeps gpt-4o to Alice.
   */
  | { readonly type: 'block'; readonly except?: boolean | undefined }
  /** At most `amount` USD per UTC calendar `period` in the policy's bucket. */
  | {
      readonly type: 'limit'
      readonly amount: number
      readonly period: Period
      readonly technique: 'named-interval'
    }

/** A policy as the reference writes it. */
export interface Policy {
  readonly id: string
  readonly name?: string | undefined
  /** `*`, a caller (`alice@example.com`, matched against `principal.id` and `principal.email`), or a template (`{principal.id}`, `{metadata.team}`). */
  readonly actor: string
  /** `*`, a provider (`openai`), or `{provider}/{model}` with `*` wildcards within a segment. */
  readonly resource: string
  /** A CEL expression; the policy applies only where it is true. */
  readonly condition?: string | undefined
  readonly action: PolicyAction
}

/** One policy, parsed and checked. */
export interface CompiledPolicy {
  readonly policy: Policy
  readonly actor: Actor
  readonly resource: Resource
  readonly condition: CompiledCondition | undefined
  /** For a `limit` action: its amount in micro-dollars, as the counters count. */
  readonly limitMicros: number | undefined
}

/** What `compilePolicies` makes: the policies in order, ready to evaluate. */
export interface CompiledPolicies {
  readonly policies: readonly CompiledPolicy[]
  /** Put before every counter key. */
  readonly keyPrefix: string
}

export interface CompilePoliciesOptions {
  /** The longest condition accepted, in UTF-8 bytes. Default 4096. */
  readonly maxConditionBytes?: number | undefined
  /** Put before every counter key, e.g. to keep two gateways sharing a store apart. Default `'policy:'`. */
  readonly keyPrefix?: string | undefined
}

/** The request as policies see it. */
export interface PolicyRequest {
  /** The caller, as the host identified it; `undefined` for an anonymous caller. */
  readonly principal: Readonly<Record<string, unknown>> | undefined
  /** The `cf-aig-metadata` values. */
  readonly metadata: Readonly<Record<string, unknown>>
  readonly provider: string
  /** `undefined` when the request names no model. */
  readonly model: string | undefined
  readonly path: string
  readonly method: string
  /** Ms since the epoch: picks the calendar periods and the condition's `time`. */
  readonly now: number
}

/**
 * One bucket's reservation for an admitted request, for `settlePolicies` to correct with the real cost.
 * Plain data: it can travel with the request's state.
 */
export interface PolicyCharge {
  /** The bucket as the 429 body names it: `<resolved actor>:<resource>`. */
  readonly bucket: string
  /** The counter's key without its period start: `<prefix><actor>:<resource>:<period>`. */
  readonly counter: string
  readonly period: Period
  /** The calendar period the reservation was taken in, `[start, end)` in ms since the epoch. */
  readonly start: number
  readonly end: number
  /** The store key: `counter` and the period's start as an ISO date. */
  readonly key: string
  readonly reservation: string
  readonly window: LimitWindow
}

/** The reference's 403 body. */
export interface PolicyDeniedBody {
  readonly success: false
  readonly error: { readonly message: 'Access denied by policy' }
}

/** The reference's 429 body; `spent` and `limit` in USD, `period` added to say which cap. */
export interface SpendExceededBody {
  readonly success: false
  readonly error: {
    readonly message: 'Spending limit exceeded'
    readonly bucket: string
    readonly period: Period
    readonly spent: number
    readonly limit: number
  }
}

export type PolicyDecision =
  | {
      readonly allowed: true
      /** Reservations to settle once the answer's cost is known (empty when nothing caps the request). */
      readonly charges: PolicyCharge[]
      /** Ids of the policies that matched the request, in order. */
      readonly matched: string[]
    }
  | {
      readonly allowed: false
      readonly status: 403
      /** `unmatched`: policies exist and none covers the request; `blocked`: a block policy does. */
      readonly reason: 'unmatched' | 'blocked'
      /** The block that refused the request. */
      readonly policyId?: string | undefined
      readonly body: PolicyDeniedBody
    }
  | {
      readonly allowed: false
      readonly status: 429
      /** The cap whose bucket is spent. */
      readonly policyId: string
      /** Until the period ends. */
      readonly retryAfterSeconds: number
      readonly body: SpendExceededBody
    }

/**
 * Something that could not be evaluated. None of them refuses a request: a condition that fails skips its
 * own policy (the others still apply), and a counter the store cannot reach does not hold it back.
 */
export type PolicyFailure =
  | { readonly kind: 'condition'; readonly policyId: string; readonly error: unknown }
  | {
      readonly kind: 'store'
      readonly operation: 'consume' | 'adjust'
      readonly key: string
      readonly error: unknown
    }

export interface PolicyCallOptions {
  /** Hears each failure. Default: none. */
  readonly onError?: ((failure: PolicyFailure) => void) | undefined
  /** How long one store call may take before it counts as failed. Default 250 ms. */
  readonly storeTimeoutMs?: number | undefined
}

export interface SettlePolicyOptions extends PolicyCallOptions {
  /** Ms since the epoch at which the cost is recorded. Default `Date.now()`. */
  readonly now?: number | undefined
}
