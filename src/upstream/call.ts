import { EventEmitter } from 'node:events'
import { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { GatewayError } from '../errors.js'
import { isObserved, notify } from '../events.js'
import { streamTerminator, terminalEvent } from '../providers/dialects/terminal.js'
import type { ChatCodec } from '../providers/dialects/types.js'
import type { ResolvedProvider } from '../providers/registry.js'
import type { Dialect } from '../providers/types.js'
import type { RequestSettings } from '../steps/parse.js'
import type { GatewayContext, GatewayResponse } from '../types.js'
import { splitQuery } from '../url.js'
import { filterResponseHeaders, isEventStream } from './headers.js'
import { toUpstreamError } from './network-errors.js'
import { hideStreamUsage } from './stream-usage.js'

/** How a compat request is translated to and from a provider's own API. */
export interface Translation {
  readonly codec: ChatCodec
  readonly operation: 'chat' | 'embeddings'
  /** The model as the client named it after the provider prefix. */
  readonly model: string
  readonly stream: boolean
  readonly includeUsage: boolean
  /** Embeddings asked for as base64 (`encoding_format`), encoded by the gateway when the provider sends floats. */
  readonly base64Embeddings: boolean
}

/** One resolved upstream request: where it goes, exactly what is sent, and how it is retried. */
export interface UpstreamTarget {
  readonly provider: ResolvedProvider
  readonly origin: string
  readonly path: string
  readonly method: string
  readonly headers: Record<string, string>
  readonly body: Buffer | undefined
  /** Index of the universal step this target came from (0 otherwise). */
  readonly step: number
  /** Timeout and retry settings for this target (request headers, overridden by the step's own). */
  readonly settings: RequestSettings
  /** The dialect the client reads, for terminal error events in streams. */
  readonly clientDialect: Dialect
  readonly translation?: Translation | undefined
  /** The gateway added `stream_options.include_usage`; the client's stream must not show it. */
  readonly hidesStreamUsage?: boolean | undefined
}

/** Clocks for one attempt. */
export interface AttemptClocks {
  firstByteMs: number
  idleMs: number
  /** `performance.now()` value at which the whole request must be done. */
  deadlineAt: number
}

// Responses with a known length up to this size are read whole before anything is sent to the client, so
// that a failure mid-body is still a clean error response. Bigger or open-ended bodies (SSE, NDJSON) stream.
const BUFFERED_BODY_LIMIT = 1024 * 1024

/**
 * Calls the provider once. Resolves once the response is committable: fully read (small bodies of known
 * length) or with its first chunk in hand (streams), so that every failure before that point is an error the
 * caller can answer, retry or fall back on. After it, failures end the stream instead.
 */
export async function callUpstream(
  ctx: GatewayContext,
  target: UpstreamTarget,
  clocks: AttemptClocks,
  attempt: number,
): Promise<GatewayResponse> {
  const { dispatcher, events } = ctx.gateway
  const clientSignal = ctx.request.signal
  if (clientSignal.aborted) throw new GatewayError('CLIENT_CLOSED')
  const remainingMs = Math.floor(clocks.deadlineAt - performance.now())
  if (remainingMs <= 0) throw new GatewayError('UPSTREAM_DEADLINE')

  // One abort handle per attempt: the client leaving, the total deadline and (later) guards all cancel it.
  const controller = new AttemptAbort()
  const abortForClient = () => controller.abort(new GatewayError('CLIENT_CLOSED'))
  clientSignal.addEventListener('abort', abortForClient, { once: true })
  const deadline = setTimeout(() => controller.abort(new GatewayError('UPSTREAM_DEADLINE')), remainingMs)
  const release = () => {
    clearTimeout(deadline)
    clientSignal.removeEventListener('abort', abortForClient)
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
  let response: Dispatcher.ResponseData
  try {
    response = await dispatcher.request({
      origin: target.origin,
      path: target.path,
      method: target.method as Dispatcher.HttpMethod,
      headers: target.headers,
      body: target.body ?? null,
      signal: controller,
      headersTimeout: clocks.firstByteMs,
      bodyTimeout: clocks.idleMs,
    })
  } catch (error) {
    release()
    throw toUpstreamError(error, controller)
  }
  if (isObserved(events, 'upstream:response')) {
    notify(events, 'upstream:response', {
      ...base,
      status: response.statusCode,
      durationMs: performance.now() - sentAt,
    })
  }

  try {
    return await relay(target, response, controller, release)
  } catch (error) {
    release()
    response.body.destroy()
    throw toUpstreamError(error, controller)
  }
}

async function relay(
  target: UpstreamTarget,
  response: Dispatcher.ResponseData,
  controller: AttemptAbort,
  release: () => void,
): Promise<GatewayResponse> {
  const headers = filterResponseHeaders(response.headers)
  const { body } = response
  const length = Number(headers['content-length'] ?? Number.NaN)
  const eventStream = isEventStream(headers['content-type'])
  if (length <= BUFFERED_BODY_LIMIT && !eventStream) {
    const bytes = Buffer.from(await body.arrayBuffer())
    release()
    return { status: response.statusCode, headers, body: bytes }
  }
  await firstChunk(body)
  const dialect = target.clientDialect
  const clientBody = target.hidesStreamUsage && eventStream ? hideStreamUsage(body) : body
  if (clientBody !== body) providerBodies.set(clientBody, body)
  const relayed: GatewayResponse = {
    status: response.statusCode,
    headers,
    body: clientBody,
    onStreamError: (error) => terminalEvent(dialect, toUpstreamError(error, controller)),
  }
  // Translated streams are checked by their translator; the others here, by their dialect's terminator.
  const terminator =
    eventStream && target.translation === undefined ? streamTerminator(dialect, target.path) : undefined
  body.once('close', release)
  if (terminator !== undefined) {
    let carry = ''
    body.on('data', (chunk: Buffer) => {
      // Whether the stream so far ends with its last event; the terminator may straddle two chunks.
      if (chunk.includes(terminator)) relayed.endSeen = true
      else relayed.endSeen = (carry + chunk.toString('latin1', 0, terminator.length)).includes(terminator)
      carry = chunk.toString('latin1', Math.max(0, chunk.length - terminator.length))
    })
    relayed.expectedEnd = { terminator, dialect }
    relayed.endSeen = false
    // The gateway may append a terminal error event: a provider's length would make Node refuse it.
    delete headers['content-length']
  }
  return relayed
}

// Client-facing streams that differ from what the provider sent, mapped to the provider's own stream.
const providerBodies = new WeakMap<Readable, Readable>()

/** The provider's answer as it sent it, for reading its usage: the same response unless the gateway reshaped it. */
export function asProviderSent(response: GatewayResponse): GatewayResponse {
  const source = response.body instanceof Readable ? providerBodies.get(response.body) : undefined
  return source === undefined ? response : { ...response, body: source }
}

/**
 * Waits until the stream has data (or ended) without consuming it: the first chunk is put back and the
 * stream left paused, so the bridge can pipe it from the start with backpressure.
 */
function firstChunk(body: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      cleanup()
      body.pause()
      body.unshift(chunk)
      resolve()
    }
    const onEnd = () => {
      cleanup()
      resolve()
    }
    const onError = (error: Error) => {
      cleanup()
      reject(error)
    }
    const cleanup = () => {
      body.off('data', onData)
      body.off('end', onEnd)
      body.off('error', onError)
    }
    body.on('data', onData)
    body.once('end', onEnd)
    body.once('error', onError)
  })
}

/**
 * An abort handle undici accepts in place of an AbortSignal (it takes any emitter of `abort` with `aborted`
 * and `reason`). A plain emitter costs a fraction of an AbortController and its EventTarget, and one is made
 * for every attempt.
 */
export class AttemptAbort extends EventEmitter {
  aborted = false
  reason: unknown = undefined

  abort(reason: unknown): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = reason
    this.emit('abort')
  }
}
