import { finished, type Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { GatewayError } from '../errors.js'
import { notify } from '../events.js'
import type { ResolvedProvider } from '../providers/registry.js'
import type { GatewayContext, GatewayResponse } from '../types.js'
import { filterResponseHeaders, isEventStream } from './headers.js'
import { toUpstreamError } from './network-errors.js'

/** One resolved upstream request: where it goes and exactly what is sent. */
export interface UpstreamTarget {
  readonly provider: ResolvedProvider
  readonly origin: string
  readonly path: string
  readonly method: string
  readonly headers: Record<string, string>
  readonly body: Buffer | undefined
}

/** Clocks for one attempt, in milliseconds. */
export interface AttemptClocks {
  firstByteMs: number
  idleMs: number
  totalMs: number
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

  // One controller per attempt: the client leaving, the total deadline and (later) guards all cancel it.
  const controller = new AbortController()
  const abortForClient = () => controller.abort(new GatewayError('CLIENT_CLOSED'))
  clientSignal.addEventListener('abort', abortForClient, { once: true })
  const deadline = setTimeout(
    () => controller.abort(new GatewayError('UPSTREAM_DEADLINE', `after ${clocks.totalMs} ms`)),
    clocks.totalMs,
  )
  const release = () => {
    clearTimeout(deadline)
    clientSignal.removeEventListener('abort', abortForClient)
  }

  const providerId = target.provider.spec.id
  notify(events, 'upstream:request', {
    id: ctx.id,
    provider: providerId,
    url: `${target.origin}${stripQuery(target.path)}`,
    method: target.method,
    attempt,
  })
  const sentAt = performance.now()
  let response: Dispatcher.ResponseData
  try {
    response = await dispatcher.request({
      origin: target.origin,
      path: target.path,
      method: target.method as Dispatcher.HttpMethod,
      headers: target.headers,
      body: target.body ?? null,
      signal: controller.signal,
      headersTimeout: clocks.firstByteMs,
      bodyTimeout: clocks.idleMs,
    })
  } catch (error) {
    release()
    throw toUpstreamError(error, controller.signal)
  }
  notify(events, 'upstream:response', {
    id: ctx.id,
    provider: providerId,
    status: response.statusCode,
    attempt,
    durationMs: performance.now() - sentAt,
  })

  try {
    return await relay(ctx, response, release)
  } catch (error) {
    release()
    response.body.destroy()
    throw toUpstreamError(error, controller.signal)
  }
}

async function relay(
  ctx: GatewayContext,
  response: Dispatcher.ResponseData,
  release: () => void,
): Promise<GatewayResponse> {
  const headers = filterResponseHeaders(response.headers)
  const { body } = response
  const length = Number(headers['content-length'] ?? Number.NaN)
  if (length <= BUFFERED_BODY_LIMIT && !isEventStream(headers['content-type'])) {
    const bytes = Buffer.from(await body.arrayBuffer())
    release()
    ctx.metrics.bytesOut = bytes.length
    return { status: response.statusCode, headers, body: bytes }
  }
  await firstChunk(body)
  body.on('data', (chunk: Buffer) => {
    ctx.metrics.bytesOut += chunk.length
  })
  finished(body, release)
  return { status: response.statusCode, headers, body }
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

function stripQuery(path: string): string {
  const q = path.indexOf('?')
  return q === -1 ? path : path.slice(0, q)
}
