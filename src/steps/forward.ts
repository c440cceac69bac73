import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Dispatcher } from 'undici'
import { type ErrorName, GatewayError, toGatewayError } from '../errors.js'
import { notify } from '../events.js'
import {
  answerCaps,
  type GatewayOptions,
  parseWith,
  type ResolvedOptions,
  retries,
  timeouts,
} from '../options.js'
import type { UpstreamTarget } from '../target.js'
import type { GatewayContext, GatewayResponse, Step } from '../types.js'
import { readAll } from '../upstream/body.js'
import { type AttemptClocks, callUpstream, type Transport, waitOnUpstream } from '../upstream/call.js'
import { retryDelay, retryPolicy } from '../upstream/retry.js'
import { translateResponse } from '../upstream/translate.js'
import { watchUsage } from '../usage.js'

// Failures before any answer that another attempt may cure. The client leaving and the total deadline end
// the request instead.
const RETRYABLE_ERRORS: ReadonlySet<ErrorName> = new Set([
  'PROVIDER_FAILED',
  'UPSTREAM_CONNECT_TIMEOUT',
  'UPSTREAM_FIRST_BYTE_TIMEOUT',
  'UPSTREAM_IDLE_TIMEOUT',
  'UPSTREAM_INTERRUPTED',
])
const FINAL_ERRORS: ReadonlySet<ErrorName> = new Set(['CLIENT_CLOSED', 'UPSTREAM_DEADLINE'])

/**
 * What `forward()` accepts: the gateway's `timeouts` (the total deadline, the first-byte, idle and
 * write-stall clocks), `retries` and answer caps (`maxResponseBytes`, `maxStreamBytes`, `maxEventBytes`),
 * same fields and defaults, and a dispatcher (default: the gateway's, whose connect clock is the gateway's).
 */
export interface ForwardOptions
  extends Pick<GatewayOptions, 'maxResponseBytes' | 'maxStreamBytes' | 'maxEventBytes'> {
  timeouts?: GatewayOptions['timeouts']
  retries?: GatewayOptions['retries']
  dispatcher?: Dispatcher
}

interface ForwardSettings {
  readonly timeouts: ResolvedOptions['timeouts']
  readonly retries: ResolvedOptions['retries']
  readonly caps: Omit<Transport, 'dispatcher'>
  readonly dispatcher: Dispatcher | undefined
}

type Failure = GatewayResponse | GatewayError
type Outcome = { ok: true; response: GatewayResponse } | { ok: false; failure: Failure; attempts: number }

/**
 * Calls the targets in order: each with its retries (retryable errors and statuses, backoff, Retry-After),
 * then the next one. Everything here happens before the first byte goes to the client, so any failure may
 * still retry or fall back; `callUpstream` resolves only once a response is committable. When every target
 * fails, the last failure answers: the provider's own error response, or the gateway's error.
 *
 * @example
 * forward({ retries: { maxAttempts: 3 }, timeouts: { totalMs: 60_000 } })
 */
export function forward(options: ForwardOptions = {}): Step {
  const settings: ForwardSettings = {
    timeouts: parseWith(timeouts, options.timeouts ?? {}, 'forward() options (timeouts)'),
    retries: parseWith(retries, options.retries ?? {}, 'forward() options (retries)'),
    caps: parseWith(
      answerCaps,
      {
        maxResponseBytes: options.maxResponseBytes,
        maxStreamBytes: options.maxStreamBytes,
        maxEventBytes: options.maxEventBytes,
      },
      'forward() options',
    ),
    dispatcher: options.dispatcher,
  }
  return async function forward(ctx) {
    const targets = ctx.state.targets ?? []
    if (targets.length === 0) throw new GatewayError('INTERNAL', 'no upstream target was resolved')
    const deadlineAt = ctx.startedAt + settings.timeouts.totalMs
    const waited = { ms: 0 }
    let last: { target: UpstreamTarget; failure: Failure } | undefined
    for (const target of targets) {
      if (last !== undefined) discard(last.failure)
      const outcome = await tryTarget(ctx, settings, target, deadlineAt, waited)
      if (outcome.ok) {
        ctx.response = await answer(ctx, target, outcome.response)
        return
      }
      last = { target, failure: outcome.failure }
      if (outcome.failure instanceof GatewayError && FINAL_ERRORS.has(outcome.failure.key)) break
      if (target !== targets.at(-1))
        notifyRetry(ctx, target, outcome.attempts, outcome.failure, 0, 'fallback')
    }
    if (last === undefined) throw new GatewayError('INTERNAL')
    if (last.failure instanceof GatewayError) {
      markStep(ctx, last.target)
      throw last.failure
    }
    ctx.response = await answer(ctx, last.target, last.failure)
  }
}

async function tryTarget(
  ctx: GatewayContext,
  options: ForwardSettings,
  target: UpstreamTarget,
  deadlineAt: number,
  waited: { ms: number },
): Promise<Outcome> {
  const policy = retryPolicy(options.retries, target.policy)
  const clocks: AttemptClocks = {
    firstByteMs: target.policy.requestTimeoutMs ?? options.timeouts.firstByteMs,
    idleMs: options.timeouts.idleMs,
    writeStallMs: options.timeouts.writeStallMs,
    deadlineAt,
  }
  const transport: Transport = { ...options.caps, dispatcher: options.dispatcher ?? ctx.gateway.dispatcher }
  for (let attempt = 1; ; attempt++) {
    let failure: Failure
    let retryAfter: string | undefined
    try {
      const response = await callUpstream(ctx, target, transport, clocks, attempt)
      if (response.status < 400) return { ok: true, response }
      failure = response
      if (!policy.statuses.includes(response.status)) return { ok: false, failure, attempts: attempt }
      retryAfter = response.headers['retry-after']
    } catch (error) {
      failure = toGatewayError(error)
      if (!RETRYABLE_ERRORS.has(failure.key)) return { ok: false, failure, attempts: attempt }
    }
    if (attempt >= policy.maxAttempts) return { ok: false, failure, attempts: attempt }
    const delay = retryDelay(policy, attempt, retryAfter)
    if (delay === undefined || waited.ms + delay > policy.maxWaitMs)
      return { ok: false, failure, attempts: attempt }
    if (performance.now() + delay >= deadlineAt) return { ok: false, failure, attempts: attempt }
    discard(failure)
    notifyRetry(ctx, target, attempt, failure, delay, 'retry')
    waited.ms += delay
    await sleep(delay, undefined, { signal: ctx.request.signal }).catch(() => {
      throw new GatewayError('CLIENT_CLOSED')
    })
  }
}

async function answer(
  ctx: GatewayContext,
  target: UpstreamTarget,
  response: GatewayResponse,
): Promise<GatewayResponse> {
  markStep(ctx, target)
  if (response.status >= 400 && response.body instanceof Readable) {
    // The provider's refusal is the answer: read it whole (capped, under the same clocks), so the client
    // gets it with its length and a stalled error body is a gateway error, not a hung response.
    const body = await waitOnUpstream(ctx, readAll(response.body))
    response = {
      status: response.status,
      headers: { ...response.headers, 'content-length': String(body.length) },
      body,
    }
  }
  if (ctx.gateway.watchesUsage && response.status < 400) ctx.state.usage = watchUsage(target, response)
  if (target.translation === undefined) return response
  return translateResponse(response, target.translation, ctx.id)
}

function markStep(ctx: GatewayContext, target: UpstreamTarget): void {
  ctx.state.target = target
  ctx.metrics.provider = target.provider.spec.id
  if (ctx.surface.kind === 'universal') ctx.responseHeaders['cf-aig-step'] = String(target.step)
}

/** A failed answer that will not be sent: cancel its body so the connection is released, not pinned. */
function discard(failure: Failure): void {
  if (!(failure instanceof GatewayError) && failure.body !== null && typeof failure.body === 'object') {
    if ('destroy' in failure.body) failure.body.destroy()
  }
}

function notifyRetry(
  ctx: GatewayContext,
  target: UpstreamTarget,
  attempt: number,
  failure: Failure,
  delayMs: number,
  action: 'retry' | 'fallback',
): void {
  const isError = failure instanceof GatewayError
  notify(ctx.gateway.events, 'upstream:retry', {
    id: ctx.id,
    provider: target.provider.spec.id,
    step: target.step,
    attempt,
    status: isError ? undefined : failure.status,
    reason: isError ? `${failure.code} ${failure.key}` : `status ${failure.status}`,
    delayMs,
    action,
  })
}
