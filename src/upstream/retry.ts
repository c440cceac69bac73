import type { ResolvedOptions } from '../options.js'
import type { Backoff, TargetPolicy } from '../settings.js'

/** The retry rules in force for one target. */
export interface RetryPolicy {
  maxAttempts: number
  timeoutAttempts: number
  delayMs: number
  backoff: Backoff
  statuses: readonly number[]
  maxRetryAfterMs: number
  maxWaitMs: number
}

export function retryPolicy(defaults: ResolvedOptions['retries'], policy: TargetPolicy): RetryPolicy {
  return {
    maxAttempts: policy.maxAttempts ?? defaults.maxAttempts,
    timeoutAttempts: defaults.timeoutAttempts,
    delayMs: policy.retryDelayMs ?? defaults.delayMs,
    backoff: policy.backoff ?? defaults.backoff,
    statuses: defaults.statuses,
    maxRetryAfterMs: defaults.maxRetryAfterMs,
    maxWaitMs: defaults.maxWaitMs,
  }
}

/**
 * Delay before attempt `attempt + 1`: the backoff (constant d, linear d·n, exponential d·2^(n-1)) plus up
 * to 20% jitter so that clients retrying together spread out, raised to the provider's `Retry-After`.
 * `undefined` when the provider asks for a longer wait than the policy honours: better to fall back now.
 */
export function retryDelay(
  policy: RetryPolicy,
  attempt: number,
  retryAfter: string | undefined,
): number | undefined {
  const factor =
    policy.backoff === 'constant' ? 1 : policy.backoff === 'linear' ? attempt : 2 ** (attempt - 1)
  const backoff = policy.delayMs * factor
  const delay = Math.round(backoff + Math.random() * backoff * 0.2)
  const asked = parseRetryAfter(retryAfter)
  if (asked === undefined) return delay
  if (asked > policy.maxRetryAfterMs) return undefined
  return Math.max(delay, asked)
}

/** `Retry-After` in seconds or as an HTTP date, in ms; `undefined` when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value === '') return undefined
  if (/^\d+$/.test(value)) return Number(value) * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}
