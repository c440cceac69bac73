import type { LogQueue } from '../logs/recorder.js'
import type { MetricsRecorder } from '../metrics/recorder.js'
import type { ResolvedOptions } from '../options.js'
import type { LimitStore } from '../stores/types.js'
import type { Step } from '../types.js'
import { authenticate } from './authenticate.js'
import { cache } from './cache.js'
import { forward } from './forward.js'
import { guard } from './guard.js'
import { identify } from './identify.js'
import { limit } from './limit.js'
import { parse } from './parse.js'
import { policy } from './policy.js'
import { record } from './record.js'
import { route } from './route.js'

export { authenticate, cache, forward, guard, identify, limit, parse, policy, record, route }

/** What the gateway made for its built-in steps: the log queue, the metrics, the default limit stores. */
export interface BuiltInServices {
  readonly logs?: LogQueue | undefined
  readonly metrics?: MetricsRecorder | undefined
  /** Where rate limits without a store of their own count. */
  readonly limitStore?: LimitStore | undefined
  /** Where policies' spend caps count when `policies` names no store: apart from the rate limits. */
  readonly policyStore?: LimitStore | undefined
  /** Secrets to scrub from log records. */
  readonly secrets?: readonly string[] | undefined
}

/**
 * The built-in pipeline, in order, each step made from the options that concern it. Hosts get a fresh copy
 * to insert their own steps into. `record` comes first so it sees every outcome, errors included. `route`
 * runs before `cache` and `limit` because both key on what it resolves (provider, model, credential); it
 * only computes, so a cache hit still never reaches the provider. `policy` comes before `cache`, unlike the
 * reference's order, so a caller a policy blocks never reads a cached answer either (a hit is not charged).
 *
 * @example
 * const steps = builtInSteps(parseOptions({ rateLimit: { limit: 10, window: 60 } }))
 */
export function builtInSteps(options: Partial<ResolvedOptions> = {}, services: BuiltInServices = {}): Step[] {
  const logs = options.logs === false ? undefined : options.logs
  return [
    record({
      logs: services.logs,
      telemetry: options.telemetry,
      payloads: logs?.payloads,
      maxPayloadBytes: logs?.maxPayloadBytes,
      prices: options.prices,
      secrets: services.secrets,
      metrics: services.metrics,
    }),
    authenticate(options.authentication),
    parse(),
    identify(options.identify),
    route(),
    ...(options.policies === undefined ? [] : [policy(options.policies, { store: services.policyStore })]),
    cache(options.cache),
    limit({ rules: options.rateLimit ?? [], store: services.limitStore }),
    ...(options.guardrails === undefined && options.dlp === undefined
      ? []
      : [guard({ guardrails: options.guardrails, dlp: options.dlp })]),
    forwardFrom(options),
  ]
}

/**
 * The steps a request of the gateway's own (a guard model's classification) runs: resolved and forwarded as
 * a client's request would be, with the same providers, keys, timeouts and retries, but without gateway
 * authentication, limits, policies, guards or a log record of its own.
 */
export function ownRequestSteps(options: Partial<ResolvedOptions> = {}): Step[] {
  return [route(), forwardFrom(options)]
}

function forwardFrom(options: Partial<ResolvedOptions>): Step {
  return forward({
    timeouts: options.timeouts,
    retries: options.retries,
    fallbackOn: options.fallbackOn,
    streams: options.streams,
    breaker: options.breaker,
    balance: options.balance,
    maxResponseBytes: options.maxResponseBytes,
    maxStreamBytes: options.maxStreamBytes,
    maxEventBytes: options.maxEventBytes,
  })
}
