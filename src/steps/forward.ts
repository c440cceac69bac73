import { performance } from 'node:perf_hooks'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Dispatcher } from 'undici'
import type { Usage } from '../cost/cost.js'
import { type ErrorName, GatewayError, toGatewayError } from '../errors.js'
import { notify, type UpstreamRetryEvent } from '../events.js'
import { parseJsonBody } from '../json.js'
import type { LogAttempt, LogAttemptAction } from '../logs/types.js'
import { withFields } from '../objects.js'
import {
  answerCaps,
  breakerOptions,
  fallbackOn,
  type GatewayOptions,
  parseWith,
  type ResolvedOptions,
  retries,
  streams,
  timeouts,
} from '../options.js'
import { dialectOf } from '../providers/dialects/index.js'
import { createMemoryBreakerStore } from '../stores/memory-breaker.js'
import type { BreakerState } from '../stores/types.js'
import type { UpstreamTarget } from '../target.js'
import type { GatewayContext, GatewayResponse, MaybePromise, Step } from '../types.js'
import { type CommitRule, readAll } from '../upstream/body.js'
import { type Breakers, breakerKey, checkBreaker, reportAttempt } from '../upstream/breaker.js'
import { type AttemptClocks, callUpstream, type Transport, waitOnUpstream } from '../upstream/call.js'
import {
  classOfAnswer,
  classOfError,
  DEFAULT_FALLBACK_ON,
  type FailureClass,
  statusDecidesClass,
} from '../upstream/failure.js'
import { type Continuation, prefilledTarget, type ResumeMode, resumable } from '../upstream/resume.js'
import { parseRetryAfter, retryDelay, retryPolicy } from '../upstream/retry.js'
import { translateResponse } from '../upstream/translate.js'
import { watchUsage } from '../usage.js'

// Failures that say the target cannot answer now (rather than that the request was wrong): under the
// latency strategy, such a target goes after those that answered (a clock the caller set shorter aside).
const HEALTH_FAILURES: ReadonlySet<FailureClass> = new Set([
  'rate_limited',
  'server_error',
  'timeout',
  'network',
])

// The client leaving and the total deadline end the request wherever they happen.
const FINAL_ERRORS: ReadonlySet<ErrorName> = new Set(['CLIENT_CLOSED', 'UPSTREAM_DEADLINE'])

/**
 * What `forward()` accepts: the gateway's `timeouts` (the total deadline, the first-byte, first-token, idle
 * and write-stall clocks), `retries`, `fallbackOn`, `streams` and answer caps (`maxResponseBytes`,
 * `maxStreamBytes`, `maxEventBytes`), same fields and defaults, and a dispatcher (default: the gateway's,
 * whose connect clock is the gateway's).
 */
export interface ForwardOptions
  extends Pick<
    GatewayOptions,
    'maxResponseBytes' | 'maxStreamBytes' | 'maxEventBytes' | 'fallbackOn' | 'streams'
  > {
  timeouts?: GatewayOptions['timeouts']
  retries?: GatewayOptions['retries']
  /** Circuit breakers per target, as the gateway's `breaker` option; `false` turns them off. */
  breaker?: GatewayOptions['breaker']
  /** The gateway's `balance` option: with `strategy: 'latency'` each answer's time is recorded. */
  balance?: GatewayOptions['balance']
  dispatcher?: Dispatcher
}

interface ForwardSettings {
  readonly timeouts: ResolvedOptions['timeouts']
  readonly retries: ResolvedOptions['retries']
  readonly fallbackOn: ReadonlySet<FailureClass>
  readonly streams: ResolvedOptions['streams']
  readonly breakers: Breakers | undefined
  /** Latency-aware balancing reads how fast targets answer: only then is it recorded. */
  readonly observesLatency: boolean
  readonly caps: Omit<Transport, 'dispatcher'>
  readonly dispatcher: Dispatcher | undefined
}

type Failure = GatewayResponse | GatewayError
/** A target that failed: its last failure, and that failure's class (none for failures outside them). */
interface TargetFailure {
  readonly ok: false
  readonly failure: Failure
  readonly failureClass: FailureClass | undefined
  readonly attempts: number
  /** How long its last attempt took. */
  readonly durationMs: number
}
type Outcome = { ok: true; response: GatewayResponse } | TargetFailure

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
    fallbackOn: new Set(
      parseWith(fallbackOn, options.fallbackOn ?? DEFAULT_FALLBACK_ON, 'forward() options (fallbackOn)'),
    ),
    streams: parseWith(streams, options.streams ?? {}, 'forward() options (streams)'),
    breakers: resolveBreakers(options.breaker),
    observesLatency: options.balance?.strategy === 'latency',
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
    const run: Run = { deadlineAt: ctx.startedAt + settings.timeouts.totalMs, waited: { ms: 0 } }
    const { breakers } = settings
    let last: { target: UpstreamTarget; failure: Failure } | undefined
    let skipped: { target: UpstreamTarget; failure: GatewayError } | undefined
    for (const [index, target] of targets.entries()) {
      // Both are awaited only when they wait: an await of what is at hand still costs a turn of the
      // microtask queue, and most requests have no breaker store to ask and an answer to pass on as it is.
      const checking = checkTarget(ctx, settings, target)
      const checked = checking instanceof Promise ? await checking : checking
      if (checked.state === 'open' && skips(breakers!, index === targets.length - 1, last)) {
        skipped ??= { target, failure: skipOpen(ctx, target, checked.retryInMs) }
        continue
      }
      if (last !== undefined) discard(last.failure)
      const keyStandsBy = isOtherKey(target, targets[index + 1])
      const outcome = await tryTarget(ctx, settings, target, run, checked, keyStandsBy)
      if (outcome.ok) {
        const answering = answer(ctx, target, outcome.response)
        const answered = answering instanceof Promise ? await answering : answering
        // Most requests have no target left: they pay for no copy of the list.
        const later = index === targets.length - 1 ? NO_TARGETS : targets.slice(index + 1)
        ctx.response = resumes(settings, target, answered, later)
          ? resumeOnFailure(ctx, settings, target, answered, later, run)
          : answered
        return
      }
      last = { target, failure: outcome.failure }
      const movesOn = fallsBack(settings, outcome) && target !== targets.at(-1)
      logAttempt(ctx, target, outcome, movesOn ? 'fallback' : 'final')
      if (!movesOn) break
      notifyRetry(ctx, target, outcome, 0, 'fallback')
    }
    // Nothing was tried: every target's breaker is open.
    last ??= skipped
    if (last === undefined) throw new GatewayError('INTERNAL')
    if (last.failure instanceof GatewayError) {
      markStep(ctx, last.target)
      throw last.failure
    }
    ctx.response = await answer(ctx, last.target, last.failure)
  }
}

/** One request's clocks across all its targets: the total deadline and the time spent waiting to retry. */
interface Run {
  readonly deadlineAt: number
  readonly waited: { ms: number }
}

function checkTarget(
  ctx: GatewayContext,
  settings: ForwardSettings,
  target: UpstreamTarget,
): MaybePromise<BreakerState> {
  const { breakers } = settings
  return breakers === undefined ? CLOSED : checkBreaker(ctx, breakers, target)
}

/**
 * Whether `next` is another key of `target`'s key pool: the same request (one body, provider and step)
 * sent with another key (see `attachStoredKeys`).
 */
function isOtherKey(target: UpstreamTarget, next: UpstreamTarget | undefined): boolean {
  return (
    next !== undefined &&
    next.body === target.body &&
    next.provider === target.provider &&
    next.step === target.step
  )
}

/** A target skipped for its open breaker: logged and told as such; its failure, should nothing else answer. */
function skipOpen(ctx: GatewayContext, target: UpstreamTarget, retryInMs: number): GatewayError {
  const failure = circuitOpen(target, retryInMs)
  const skip: TargetFailure = { ok: false, failure, failureClass: undefined, attempts: 0, durationMs: 0 }
  notifyRetry(ctx, target, skip, 0, 'skip')
  logAttempt(ctx, target, skip, 'skip')
  return failure
}

/**
 * Whether an answer can be resumed on a later target should its stream fail after the commit: an OpenAI
 * chat stream with a fallback left that answers in the same form.
 */
function resumes(
  settings: ForwardSettings,
  target: UpstreamTarget,
  response: GatewayResponse,
  later: readonly UpstreamTarget[],
): boolean {
  return (
    settings.streams.resume &&
    response.body instanceof Readable &&
    isOpenAIChatStream(target) &&
    later.some(isOpenAIChatStream)
  )
}

function isOpenAIChatStream(target: UpstreamTarget): boolean {
  if (!target.stream || target.clientDialect !== 'openai') return false
  if (target.translation !== undefined) return target.translation.operation === 'chat'
  return target.provider.spec.dialect === 'openai' && CHAT_PATH.test(target.path)
}

const CHAT_PATH = /\/chat\/completions(?:\?|$)/

/**
 * The answer, made to go on on the later targets if its stream fails after the commit (see `resumable`).
 * What is logged and billed is the answer that finished: the attempt log shows the failed stream as
 * resumed, and the record's usage is the continuation's.
 */
function resumeOnFailure(
  ctx: GatewayContext,
  settings: ForwardSettings,
  target: UpstreamTarget,
  response: GatewayResponse,
  later: readonly UpstreamTarget[],
  run: Run,
): GatewayResponse {
  let remaining = later
  let failed = target
  let startedAt = performance.now()
  // The usage of whichever answer finished the stream, once it ended.
  let usage = ctx.state.usage
  const resumed = resumable(response, async (partial, failure) => {
    const failureClass = classOfError(failure)
    const outcome: TargetFailure = {
      ok: false,
      failure,
      failureClass,
      attempts: 1,
      durationMs: performance.now() - startedAt,
    }
    if (!fallsBack(settings, outcome)) return undefined
    notifyRetry(ctx, failed, outcome, 0, 'resume')
    logAttempt(ctx, failed, outcome, 'resume')
    const next = await continueOn(ctx, settings, remaining, run, partial)
    if (next === undefined) return undefined
    // `answer` watched the continuation's usage in its place.
    if (settled !== undefined) {
      usage = ctx.state.usage
      ctx.state.usage = settled
    }
    remaining = remaining.slice(remaining.indexOf(next.target) + 1)
    failed = next.target
    startedAt = performance.now()
    return next.continuation
  })
  const settled =
    usage === undefined
      ? undefined
      : new Promise<Usage | undefined>((resolve) => {
          resumed.body.once('close', () => resolve(usage))
        })
  if (settled !== undefined) ctx.state.usage = settled
  return resumed
}

/**
 * Asks the targets in turn to go on with `partial`: with it as a prefill where the provider takes one
 * (a refused prefill is tried once more as the original request), else with the original request, whose
 * answer `resumable` checks against what was sent.
 */
async function continueOn(
  ctx: GatewayContext,
  settings: ForwardSettings,
  targets: readonly UpstreamTarget[],
  run: Run,
  partial: string,
): Promise<{ target: UpstreamTarget; continuation: Continuation } | undefined> {
  for (const target of targets) {
    if (!isOpenAIChatStream(target)) continue
    const prefill = prefilledTarget(target, partial)
    const tries: [ResumeMode, UpstreamTarget][] =
      prefill === undefined
        ? [['replay', target]]
        : [
            ['prefill', prefill],
            ['replay', target],
          ]
    for (const [mode, attempt] of tries) {
      const checked = await checkTarget(ctx, settings, attempt)
      if (checked.state === 'open') {
        skipOpen(ctx, attempt, checked.retryInMs)
        break
      }
      const tried = await tryTarget(ctx, settings, attempt, run, checked, false)
      const outcome = tried.ok && !(tried.response.body instanceof Readable) ? notStreamed() : tried
      if (outcome.ok) {
        const response = await answer(ctx, attempt, outcome.response)
        return { target, continuation: { response, mode } }
      }
      discard(outcome.failure)
      const refusedPrefill = mode === 'prefill' && outcome.failureClass === 'bad_request'
      const movesOn = refusedPrefill || fallsBack(settings, outcome)
      logAttempt(ctx, attempt, outcome, !movesOn ? 'final' : refusedPrefill ? 'retry' : 'fallback')
      if (!movesOn) return undefined
      notifyRetry(ctx, attempt, outcome, 0, refusedPrefill ? 'retry' : 'fallback')
      if (!refusedPrefill) break
    }
  }
  return undefined
}

/**
 * A continuation answered whole (a JSON body to the streamed request, as some servers do): it has no
 * chunks to carry the stream on with, so it counts as a failed attempt and the next target is asked.
 */
function notStreamed(): TargetFailure {
  const failure = new GatewayError(
    'INVALID_PROVIDER_RESPONSE',
    'the answer to a streamed request is not a stream',
  )
  return { ok: false, failure, failureClass: classOfError(failure), attempts: 1, durationMs: 0 }
}

const NO_TARGETS: readonly UpstreamTarget[] = []

const CLOSED: BreakerState = { state: 'closed', failing: false }

/**
 * Whether a target whose breaker is open is skipped: always, except that with `whenAllOpen: 'try'` the
 * last target is tried when no other was, so a request is never refused for its breakers alone.
 */
function skips(breakers: Breakers, isLast: boolean, tried: unknown): boolean {
  return !isLast || breakers.whenAllOpen === 'refuse' || tried !== undefined
}

function circuitOpen(target: UpstreamTarget, retryInMs: number): GatewayError {
  const seconds = Math.max(1, Math.ceil(retryInMs / 1000))
  const name =
    target.model === undefined ? target.provider.spec.id : `${target.provider.spec.id} ${target.model}`
  return new GatewayError('UPSTREAM_CIRCUIT_OPEN', `${name} may be tried again in ${seconds} s`, {
    headers: { 'retry-after': String(seconds) },
  })
}

function resolveBreakers(option: GatewayOptions['breaker']): Breakers | undefined {
  if (option === false) return undefined
  const resolved = parseWith(breakerOptions, option ?? {}, 'forward() options (breaker)')
  const { failures, windowMs, openMs, probeMs } = resolved
  return {
    store: resolved.store ?? createMemoryBreakerStore(),
    policy: { failures, windowMs, openMs, probeMs },
    counts: new Set(resolved.on),
    whenAllOpen: resolved.whenAllOpen,
    storeTimeoutMs: resolved.storeTimeoutMs,
  }
}

/** Whether a target's failure moves on to the next target: by its class, never for a final error. */
function fallsBack(settings: ForwardSettings, outcome: TargetFailure): boolean {
  const { failure, failureClass } = outcome
  if (failure instanceof GatewayError && FINAL_ERRORS.has(failure.key)) return false
  // Failures outside the classes (a size cap, a bug) fall back as they always have.
  return failureClass === undefined || settings.fallbackOn.has(failureClass)
}

async function tryTarget(
  ctx: GatewayContext,
  options: ForwardSettings,
  target: UpstreamTarget,
  { deadlineAt, waited }: Run,
  checked: BreakerState,
  keyStandsBy: boolean,
): Promise<Outcome> {
  const policy = retryPolicy(options.retries, target.policy)
  const { breakers } = options
  let breaker = checked
  const clocks: AttemptClocks = {
    firstByteMs: target.policy.requestTimeoutMs ?? options.timeouts.firstByteMs,
    idleMs: options.timeouts.idleMs,
    writeStallMs: options.timeouts.writeStallMs,
    deadlineAt,
    commit: commitRule(options, target),
  }
  const { caps } = options
  // A literal rather than `withFields(caps, …)`: one fixed shape, a few instructions a field.
  const transport: Transport = {
    dispatcher: options.dispatcher ?? ctx.gateway.dispatcher,
    maxResponseBytes: caps.maxResponseBytes,
    maxStreamBytes: caps.maxStreamBytes,
    maxEventBytes: caps.maxEventBytes,
  }
  for (let attempt = 1; ; attempt++) {
    let failure: Failure
    let failureClass: FailureClass | undefined
    let retryAfter: string | undefined
    let retried: boolean
    const sentAt = performance.now()
    try {
      const response = await callUpstream(ctx, target, transport, clocks, attempt)
      if (response.status < 400) {
        const tookMs = performance.now() - sentAt
        if (breakers !== undefined) reportAttempt(ctx, breakers, target, breaker, { ok: true })
        if (options.observesLatency) observeLatency(ctx, target, tookMs)
        if (ctx.state.attemptLog !== undefined) logAnswer(ctx, target, response.status, tookMs)
        return { ok: true, response }
      }
      ;({ failure, failureClass } = await classifyAnswer(ctx, target, response))
      retried = policy.statuses.includes(response.status)
      retryAfter = response.headers['retry-after']
    } catch (error) {
      failure = toGatewayError(error)
      failureClass = classOfError(failure)
      retried = failureClass !== undefined
    }
    if (breakers !== undefined) {
      const retryAfterMs = parseRetryAfter(retryAfter)
      const counted = callerClockFired(options, target, failure) ? undefined : failureClass
      reportAttempt(ctx, breakers, target, breaker, { ok: false, failureClass: counted, retryAfterMs })
      // Counted now: a later success on this target has failures to clear.
      breaker = { state: 'closed', failing: true }
    }
    const unhealthy = failureClass !== undefined && HEALTH_FAILURES.has(failureClass)
    if (options.observesLatency && unhealthy && !callerClockFired(options, target, failure)) {
      failedLatency(ctx, target)
    }
    const budget = failureClass === 'timeout' ? policy.timeoutAttempts : policy.maxAttempts
    const durationMs = performance.now() - sentAt
    const failed: TargetFailure = { ok: false, failure, failureClass, attempts: attempt, durationMs }
    if (!retried || attempt >= budget) return failed
    // A 429 is the key's own limit: another key of the pool is asked at once, not this one after a wait.
    if (keyStandsBy && failureClass === 'rate_limited') return failed
    const delay = retryDelay(policy, attempt, retryAfter)
    if (delay === undefined || waited.ms + delay > policy.maxWaitMs) return failed
    if (performance.now() + delay >= deadlineAt) return failed
    discard(failure)
    notifyRetry(ctx, target, failed, delay, 'retry')
    logAttempt(ctx, target, failed, 'retry')
    waited.ms += delay
    await sleep(delay, undefined, { signal: ctx.request.signal }).catch(() => {
      throw new GatewayError('CLIENT_CLOSED')
    })
  }
}

/**
 * Whether the attempt failed on a clock the request set shorter than the gateway's own
 * (`cf-aig-request-timeout`, `cf-aig-first-token-timeout`, a step's or a route's timeout). A caller that
 * chose to wait less says nothing of the target's health: counted, a few such requests would open the
 * breaker for every caller of that target.
 */
function callerClockFired(options: ForwardSettings, target: UpstreamTarget, failure: Failure): boolean {
  if (!(failure instanceof GatewayError)) return false
  const { policy } = target
  const { timeouts } = options
  if (failure.key === 'UPSTREAM_FIRST_BYTE_TIMEOUT') {
    return policy.requestTimeoutMs !== undefined && policy.requestTimeoutMs < timeouts.firstByteMs
  }
  if (failure.key === 'UPSTREAM_FIRST_TOKEN_TIMEOUT') {
    const own = timeouts.firstTokenMs
    return policy.firstTokenTimeoutMs !== undefined && (own === undefined || policy.firstTokenTimeoutMs < own)
  }
  return false
}

/** How fast the target answered, for `balance: { strategy: 'latency' }`: per key, and per deployment. */
function observeLatency(ctx: GatewayContext, target: UpstreamTarget, ms: number): void {
  const { latency } = ctx.gateway
  latency.observe(breakerKey(target), ms)
  if (target.model !== undefined) latency.observe(`${target.provider.spec.id}/${target.model}`, ms)
}

/** A target that failed so, for `balance: { strategy: 'latency' }`: per key, and per deployment. */
function failedLatency(ctx: GatewayContext, target: UpstreamTarget): void {
  const { latency } = ctx.gateway
  latency.failed(breakerKey(target))
  if (target.model !== undefined) latency.failed(`${target.provider.spec.id}/${target.model}`)
}

/**
 * The class of a provider's error answer. Rate limits and server failures are known by their status, and
 * their bodies are left unread (a retry does not wait on them); any other error body is read (capped, under
 * the same clocks) for the provider's code, and the answer goes on with the body read.
 */
async function classifyAnswer(
  ctx: GatewayContext,
  target: UpstreamTarget,
  response: GatewayResponse,
): Promise<{ failure: GatewayResponse; failureClass: FailureClass }> {
  const { status } = response
  if (statusDecidesClass(status)) return { failure: response, failureClass: classOfAnswer(status, undefined) }
  const read = await readWhole(ctx, response)
  const error = dialectOf(target.provider.spec.dialect).providerError(parseJsonBody(bodyBytes(read)))
  return { failure: read, failureClass: classOfAnswer(status, error) }
}

/** How a stream from this target is committed: the request's headers and step config over the options. */
function commitRule(options: ForwardSettings, target: UpstreamTarget): CommitRule | undefined {
  const { policy } = target
  const mode = policy.streamCommit ?? options.streams.commit
  if (mode === 'first-byte' || !target.stream) return undefined
  return {
    whole: mode === 'complete',
    holdMs: policy.streamHoldMs ?? options.streams.holdMs,
    maxHeldBytes: options.streams.maxHeldBytes,
    firstTokenMs: policy.firstTokenTimeoutMs ?? options.timeouts.firstTokenMs,
  }
}

/**
 * The answer as the client is to get it. Only a provider's refusal waits: it is read whole (capped, under
 * the same clocks), so the client gets it with its length and a stalled error body is a gateway error, not
 * a hung response.
 */
function answer(
  ctx: GatewayContext,
  target: UpstreamTarget,
  response: GatewayResponse,
): MaybePromise<GatewayResponse> {
  markStep(ctx, target)
  if (response.status >= 400) return readWhole(ctx, response).then((whole) => delivered(ctx, target, whole))
  if (ctx.gateway.watchesUsage) ctx.state.usage = watchUsage(target, response)
  return delivered(ctx, target, response)
}

/** The answer in the client's dialect, when the request was translated. */
function delivered(
  ctx: GatewayContext,
  target: UpstreamTarget,
  response: GatewayResponse,
): MaybePromise<GatewayResponse> {
  if (target.translation === undefined) return response
  return translateResponse(response, target.translation, ctx.id)
}

/** An answer with its body read whole, when it is a stream. */
async function readWhole(ctx: GatewayContext, response: GatewayResponse): Promise<GatewayResponse> {
  if (!(response.body instanceof Readable)) return response
  const body = await waitOnUpstream(ctx, readAll(response.body))
  return {
    status: response.status,
    headers: withFields(response.headers, { 'content-length': String(body.length) }),
    body,
  }
}

function bodyBytes(response: GatewayResponse): Buffer | undefined {
  const { body } = response
  if (body === null || body instanceof Readable) return undefined
  return typeof body === 'string'
    ? Buffer.from(body)
    : Buffer.from(body.buffer, body.byteOffset, body.byteLength)
}

function markStep(ctx: GatewayContext, target: UpstreamTarget): void {
  ctx.state.target = target
  ctx.metrics.provider = target.provider.spec.id
  const chain = ctx.surface.kind !== 'universal' && (ctx.state.targets?.length ?? 0) > 1
  if (ctx.surface.kind === 'universal' || chain) ctx.responseHeaders['cf-aig-step'] = String(target.step)
  if (chain || target.route !== undefined) {
    // A fallback chain or a dynamic route: which of its models answered.
    ctx.responseHeaders['cf-aig-provider'] = target.provider.spec.id
    if (target.model !== undefined) ctx.responseHeaders['cf-aig-model'] = target.model
  }
}

/** A failed answer that will not be sent: cancel its body so the connection is released, not pinned. */
function discard(failure: Failure): void {
  if (!(failure instanceof GatewayError) && failure.body !== null && typeof failure.body === 'object') {
    if ('destroy' in failure.body) failure.body.destroy()
  }
}

/**
 * Adds an attempt to the request's attempt log, which exists only once something other than a clean first
 * answer happened: the first failure or skip starts it, and the answer that follows is added to it.
 */
function logAttempt(
  ctx: GatewayContext,
  target: UpstreamTarget,
  { failure, failureClass, durationMs }: TargetFailure,
  action: LogAttemptAction,
): void {
  const error = failure instanceof GatewayError ? failure : undefined
  pushAttempt(ctx, target, {
    status: error === undefined ? (failure as GatewayResponse).status : null,
    failureClass: failureClass ?? null,
    errorCode: error?.code ?? null,
    action,
    durationMs: Math.round(durationMs),
  })
}

function logAnswer(ctx: GatewayContext, target: UpstreamTarget, status: number, durationMs: number): void {
  pushAttempt(ctx, target, {
    status,
    failureClass: null,
    errorCode: null,
    action: 'answered',
    durationMs: Math.round(durationMs),
  })
}

function pushAttempt(
  ctx: GatewayContext,
  target: UpstreamTarget,
  outcome: Omit<LogAttempt, 'provider' | 'model' | 'step'>,
): void {
  const attempt = { provider: target.provider.spec.id, model: target.model ?? null, step: target.step }
  ctx.state.attemptLog ??= []
  ctx.state.attemptLog.push(Object.assign(attempt, outcome))
}

function notifyRetry(
  ctx: GatewayContext,
  target: UpstreamTarget,
  { failure, failureClass, attempts }: TargetFailure,
  delayMs: number,
  action: UpstreamRetryEvent['action'],
): void {
  const isError = failure instanceof GatewayError
  notify(ctx.gateway.events, 'upstream:retry', {
    id: ctx.id,
    provider: target.provider.spec.id,
    step: target.step,
    attempt: attempts,
    status: isError ? undefined : failure.status,
    reason: isError ? `${failure.code} ${failure.key}` : `status ${failure.status}`,
    failureClass,
    delayMs,
    action,
  })
}
