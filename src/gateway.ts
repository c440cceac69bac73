import { Readable } from 'node:stream'
import { EventEmitter } from 'eventemitter3'
import { compose } from './compose.js'
import { createContext, type GatewayServices } from './context.js'
import { errorBody, GatewayError, toGatewayError } from './errors.js'
import { type GatewayEmitter, type GatewayEvents, isObserved, notify, reportError } from './events.js'
import { type GatewayOptions, parseOptions } from './options.js'
import { createProviderRegistry } from './providers/registry.js'
import { createCacheRuntime } from './steps/cache.js'
import { builtInSteps } from './steps/index.js'
import { compileRules } from './steps/limit.js'
import { matchSurface } from './surface.js'
import type { GatewayContext, GatewayRequest, GatewayResponse } from './types.js'
import { createDispatcher } from './upstream/dispatcher.js'

const kGateway = Symbol.for('ai-gateway-middleware.gateway')

/** A gateway built once and mounted by one or more adapters (or driven directly through `handle`). */
export interface Gateway {
  /**
   * Runs a request through the pipeline. Resolves `undefined` when the path is not the gateway's (call the
   * host's next handler); gateway errors resolve as error responses. Rejects only on bugs, also emitted as
   * `error`.
   */
  handle(request: GatewayRequest): Promise<GatewayResponse | undefined>
  readonly events: EventEmitter<GatewayEvents>
  /** Closes upstream connections the gateway opened itself. */
  close(): Promise<void>
}

/**
 * Builds a gateway from options, validated once here: a wrong option throws a `GatewayOptionsError` that
 * names it.
 *
 * @example
 * const gateway = createGateway({ providers: { openai: { apiKey: process.env.OPENAI_API_KEY } } })
 * app.use('/ai', aiGateway(gateway))
 */
export function createGateway(options: GatewayOptions = {}): Gateway {
  const resolved = parseOptions(options)
  const events: GatewayEmitter = new EventEmitter<GatewayEvents>()
  const ownsDispatcher = resolved.dispatcher === undefined
  const services: GatewayServices = {
    options: resolved,
    events,
    providers: createProviderRegistry(resolved.providers, resolved.customProviders, resolved.forwardHeaders),
    dispatcher: resolved.dispatcher ?? createDispatcher(resolved.timeouts.connectMs),
    cache: createCacheRuntime(resolved.cache),
    limits: compileRules(resolved.rateLimit),
    now: resolved.now,
  }
  const run = compose(arrangeSteps(resolved.steps))

  async function handle(request: GatewayRequest): Promise<GatewayResponse | undefined> {
    const surface = matchSurface(request.method, request.path)
    if (surface === undefined) return undefined
    const ctx = createContext(request, surface, services)
    notify(events, 'request:start', {
      id: ctx.id,
      method: request.method,
      path: request.path,
      surface: surface.kind,
    })
    try {
      await run(ctx)
      if (ctx.response === undefined) throw new GatewayError('INTERNAL', 'no step answered the request')
    } catch (error) {
      const gatewayError = toGatewayError(error)
      if (gatewayError.key === 'INTERNAL' || gatewayError.key === 'STEP_NEXT_TWICE')
        reportError(events, error)
      ctx.response = renderError(gatewayError, ctx.surface.kind === 'compat' ? 'openai' : 'reference')
    }
    const response = ctx.response
    Object.assign(response.headers, ctx.responseHeaders)
    trackEnd(ctx, response)
    return response
  }

  return {
    handle,
    events,
    async close() {
      if (ownsDispatcher) await services.dispatcher.close()
    },
    [kGateway]: true,
  } as Gateway
}

/** True for objects made by `createGateway`, so adapters can take options or a gateway. */
export function isGateway(value: unknown): value is Gateway {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kGateway] === true
}

function arrangeSteps(option: GatewayOptions['steps']) {
  const builtIn = builtInSteps()
  if (option === undefined) return builtIn
  return typeof option === 'function' ? option(builtIn) : [...option, ...builtIn]
}

/** The one renderer for gateway-made errors. */
export function renderError(
  error: GatewayError,
  dialect: 'reference' | 'openai' = 'reference',
): GatewayResponse {
  const body = errorBody(error, dialect)
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    ...error.headers,
  }
  // An oversized body is left unread; closing the connection keeps the rest of it from being read at all.
  if (error.key === 'BODY_TOO_LARGE') headers.connection = 'close'
  return { status: error.status, headers, body }
}

/** Emits `request:end` once the response is fully delivered, or when its stream fails or the client leaves. */
function trackEnd(ctx: GatewayContext, response: GatewayResponse): void {
  const { body } = response
  if (!(body instanceof Readable)) {
    if (body !== null && ctx.metrics.bytesOut === 0) ctx.metrics.bytesOut = Buffer.byteLength(body)
    emitEnd(ctx, response.status, undefined)
    return
  }
  let streamError: Error | undefined
  body.once('error', (error) => {
    streamError = error
  })
  body.once('close', () => {
    const unfinished = body.readableEnded ? undefined : new GatewayError('UPSTREAM_INTERRUPTED')
    emitEnd(ctx, response.status, streamError ?? unfinished)
  })
}

function emitEnd(ctx: GatewayContext, status: number, streamError: Error | undefined): void {
  if (!isObserved(ctx.gateway.events, 'request:end')) return
  const aborted = ctx.request.signal.aborted
  const failure = streamError === undefined ? undefined : toGatewayError(streamError)
  notify(ctx.gateway.events, 'request:end', {
    id: ctx.id,
    status: aborted ? 499 : status,
    provider: ctx.metrics.provider,
    durationMs: performance.now() - ctx.startedAt,
    bytesIn: ctx.metrics.bytesIn,
    bytesOut: ctx.metrics.bytesOut,
    outcome: aborted ? 'aborted' : failure ? 'error' : 'completed',
    cacheStatus: ctx.state.cacheStatus,
    error: failure && !aborted ? { code: failure.code, message: failure.message } : undefined,
  })
}
