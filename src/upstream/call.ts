import { performance } from 'node:perf_hooks'
import type { Dispatcher } from 'undici'
import { clientGone, onClientClose } from '../client-close.js'
import { GatewayError } from '../errors.js'
import { isObserved, notify } from '../events.js'
import { dialectOf } from '../providers/dialects/index.js'
import { scrubberOf } from '../secrets.js'
import type { UpstreamTarget } from '../target.js'
import type { GatewayContext, GatewayResponse } from '../types.js'
import { splitQuery } from '../url.js'
import { type CommitRule, decoded, type ReadAhead, readAhead, UpstreamBody } from './body.js'
import { filterResponseHeaders, isEventStream } from './headers.js'
import { toUpstreamError } from './network-errors.js'
import { type AbortHandle, type AbortListener, dispatchUpstream, type UpstreamResponse } from './source.js'

/** What a `forward()` step calls providers with: its connection pool and its caps on answers. */
export interface Transport {
  readonly dispatcher: Dispatcher
  readonly maxResponseBytes: number
  readonly maxStreamBytes: number
  readonly maxEventBytes: number
}

/** Clocks for one attempt. */
export interface AttemptClocks {
  readonly firstByteMs: number
  readonly idleMs: number
  /** How long the client may leave a streamed answer unread. */
  readonly writeStallMs: number
  /** `performance.now()` value at which the whole request must be done. */
  readonly deadlineAt: number
  /**
   * When a stream the gateway knows (`StreamGrammar`) is committed to the client, the first-token clock
   * included; `undefined` commits every answer at its first byte.
   */
  readonly commit: CommitRule | undefined
}

// Bodies of known length up to this size, and JSON bodies that end within it, are read whole before
// anything is sent to the client, so that a failure mid-body is still a clean error response. Bigger or
// open-ended bodies (SSE, NDJSON, audio) are committed at their first chunk and stream.
const BUFFERED_BODY_LIMIT = 1024 * 1024
// No error answer is legitimately larger than this.
const MAX_ERROR_BODY_BYTES = 1024 * 1024

/**
 * Calls the provider once. Resolves once the response is committable: fully read (small bodies of known
 * length) or with its first chunk in hand (streams), so that every failure before that point is an error the
 * caller can answer, retry or fall back on. After it, failures end the stream instead.
 */
export async function callUpstream(
  ctx: GatewayContext,
  target: UpstreamTarget,
  transport: Transport,
  clocks: AttemptClocks,
  attempt: number,
): Promise<GatewayResponse> {
  const { events } = ctx.gateway
  if (clientGone(ctx.request)) throw new GatewayError('CLIENT_CLOSED')
  const remainingMs = Math.floor(clocks.deadlineAt - performance.now())
  if (remainingMs <= 0) throw new GatewayError('UPSTREAM_DEADLINE')

  // One abort handle per attempt: the client leaving, the total deadline and (later) guards all cancel it.
  const controller = new AttemptAbort()
  const stopWatching = onClientClose(ctx.request, () => controller.abort(new GatewayError('CLIENT_CLOSED')))
  const deadline = setTimeout(() => controller.abort(new GatewayError('UPSTREAM_DEADLINE')), remainingMs)
  const release = () => {
    clearTimeout(deadline)
    stopWatching()
  }

  ctx.metrics.attempts++
  const base = { id: ctx.id, provider: target.provider.spec.id, step: target.step, attempt }
  if (isObserved(events, 'upstream:request')) {
    notify(events, 'upstream:request', {
      ...base,
      url: `${target.origin}${splitQuery(target.path).path}`,
      method: target.method,
    })
  }
  const sentAt = performance.now()
  let response: UpstreamResponse
  try {
    response = await dispatchUpstream(
      transport.dispatcher,
      {
        origin: target.origin,
        path: target.path,
        method: target.method as Dispatcher.HttpMethod,
        headers: target.headers,
        body: target.body ?? null,
        headersTimeout: clocks.firstByteMs,
        bodyTimeout: clocks.idleMs,
      },
      controller,
    )
  } catch (error) {
    release()
    waitedForHeaders(ctx, sentAt)
    throw toUpstreamError(error, controller, scrubberOf(ctx))
  }
  const headersMs = waitedForHeaders(ctx, sentAt)
  if (isObserved(events, 'upstream:response')) {
    notify(events, 'upstream:response', { ...base, status: response.statusCode, durationMs: headersMs })
  }

  // A body nobody reads any more (a discarded retry, a cancelled stream) may still fail later: that error
  // is already accounted for, and must never reach the host as an unhandled 'error' event.
  response.body.on('error', ignoreLateError)
  try {
    return await relay(ctx, target, response, { transport, clocks, controller, release })
  } catch (error) {
    release()
    response.body.destroy()
    throw toUpstreamError(error, controller, scrubberOf(ctx))
  }
}

function ignoreLateError(): void {}

/** Adds the wait since `sentAt` to the request's upstream clocks (`metrics.upstreamMs`) and returns it. */
function waitedForHeaders(ctx: GatewayContext, sentAt: number): number {
  const ms = performance.now() - sentAt
  ctx.metrics.upstreamMs += ms
  ctx.metrics.upstreamWaitMs += ms
  return ms
}

/**
 * Awaits bytes a provider has yet to send, counting the wait, failed ones included, as the provider's
 * (`metrics.upstreamWaitMs`) rather than the gateway's: a stream's first event may take seconds to come.
 */
export async function waitOnUpstream<T>(ctx: GatewayContext, pending: Promise<T>): Promise<T> {
  const from = performance.now()
  try {
    return await pending
  } finally {
    ctx.metrics.upstreamWaitMs += performance.now() - from
  }
}

/**
 * Turns the provider's response into the answer: small bodies read whole and scrubbed of the secrets the
 * gateway injected; everything else (streams, large bodies, error answers) as an `UpstreamBody` that owns
 * the body to its end.
 */
async function relay(
  ctx: GatewayContext,
  target: UpstreamTarget,
  response: UpstreamResponse,
  attempt: {
    transport: Transport
    clocks: AttemptClocks
    controller: AttemptAbort
    release: () => void
  },
): Promise<GatewayResponse> {
  const { transport, controller, release } = attempt
  const status = response.statusCode
  const scrubber = scrubberOf(ctx)
  const headers = filterResponseHeaders(response.headers, scrubber)
  const contentType = headers['content-type']
  const eventStream = status < 400 && isEventStream(contentType)
  const maxBytes = eventStream ? transport.maxStreamBytes : transport.maxResponseBytes
  const length = Number(headers['content-length'] ?? Number.NaN)
  if (length > maxBytes) throw new GatewayError('RESPONSE_TOO_LARGE', `the answer declares ${length} bytes`)

  // The gateway reads what it relays (usage, secrets, last events), so it asks for plain bytes upstream;
  // a provider that encodes anyway is decoded. A coding the gateway cannot read goes through untouched,
  // unless the answer may quote a key it sent: that answer is refused rather than relayed unscrubbed.
  const encoding = headers['content-encoding']
  const plain = decoded(response.body, encoding)
  if (plain === undefined && scrubber !== undefined && length !== 0) {
    throw new GatewayError(
      'INVALID_PROVIDER_RESPONSE',
      `the answer's coding '${encoding}' cannot be scrubbed`,
    )
  }
  const body = plain ?? response.body
  if (plain !== undefined && plain !== response.body) {
    delete headers['content-encoding']
    delete headers['content-length']
  }

  const events = eventStream && plain !== undefined
  // Held streams are read ahead by their body itself (`hold`), event by event.
  const grammar = events ? dialectOf(target.provider.spec.dialect).stream(target.path) : undefined
  const commit = grammar === undefined ? undefined : attempt.clocks.commit

  // An error answer is not read here: it may be discarded for a retry or a fallback, which must not wait
  // for its body. Whoever answers with it reads it then.
  const aheadBytes = eventStream
    ? 1
    : length <= BUFFERED_BODY_LIMIT || (Number.isNaN(length) && isJson(contentType))
      ? BUFFERED_BODY_LIMIT + 1
      : 1
  const ahead =
    status >= 400 || commit !== undefined
      ? NOTHING_AHEAD
      : await waitOnUpstream(ctx, readAhead(body, aheadBytes, maxBytes))
  if (ahead.ended && !eventStream) {
    release()
    const whole = ahead.chunks.length === 1 ? ahead.chunks[0]! : Buffer.concat(ahead.chunks, ahead.size)
    const clean = scrubber === undefined ? whole : scrubber.scrub(whole)
    headers['content-length'] = String(clean.length)
    return { status, headers, body: clean }
  }

  const translated = target.translation !== undefined
  const streamed = new UpstreamBody(
    body,
    ahead,
    {
      events,
      terminalDialect: events && !translated ? target.clientDialect : undefined,
      grammar,
      // Translated streams are judged by their translator.
      judgesEnd: !translated,
      // Usage the gateway asked for on its own is its own loss when it never comes, not the client's.
      usageExpected: target.streamUsage === 'asked',
      hideUsage: events && target.streamUsage === 'hidden',
      keepUsage: events && ctx.gateway.watchesUsage,
      scrubber,
      maxBytes: status >= 400 ? Math.min(maxBytes, MAX_ERROR_BODY_BYTES) : maxBytes,
      maxEventBytes: transport.maxEventBytes,
      writeStallMs: attempt.clocks.writeStallMs,
    },
    {
      cancel: (error) => controller.abort(error),
      explain: (error) => toUpstreamError(error, controller, scrubber),
    },
  )
  if (response.body.closed) release()
  else response.body.on('close', release)
  if (commit !== undefined) {
    await waitOnUpstream(ctx, streamed.hold(commit))
    const beganAt = streamed.answerBeganAt
    if (beganAt !== undefined) ctx.metrics.firstTokenMs = beganAt - ctx.startedAt
  }
  // The bytes may change on the way (a terminal event, hidden usage, a scrubbed secret): the provider's
  // length would make Node refuse them.
  if (events || scrubber !== undefined) delete headers['content-length']
  return { status, headers, body: streamed, outcome: () => streamed.outcome }
}

const NOTHING_AHEAD: ReadAhead = { chunks: [], size: 0, ended: false }

function isJson(contentType: string | undefined): boolean {
  return contentType !== undefined && /^application\/(?:[\w.+-]+\+)?json\b/i.test(contentType)
}

/**
 * An attempt's abort handle: whatever ends the attempt early (the client leaving, the total deadline, the
 * answer's reader giving up) aborts it, and the source reading the answer is told. One is made for every
 * attempt, so it is a few fields and one listener,
 * rather than an emitter (an object for its listeners, a wrapper for a `once`) or an AbortController with
 * its EventTarget.
 */
export class AttemptAbort implements AbortHandle {
  aborted = false
  reason: unknown = undefined
  #listener: AbortListener | undefined

  abort(reason: unknown): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = reason
    const listener = this.#listener
    this.#listener = undefined
    listener?.attemptAborted()
  }

  listen(listener: AbortListener | undefined): void {
    this.#listener = listener
  }
}
