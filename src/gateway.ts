import { EventEmitter } from 'eventemitter3'
import { compose } from './compose.js'
import { createContext, type GatewayServices } from './context.js'
import { createPriceTable } from './cost/pricing.js'
import { GatewayError, renderError, toGatewayError } from './errors.js'
import { type GatewayEmitter, type GatewayEvents, notify, reportError } from './events.js'
import { createMemoryLogStore } from './logs/memory-store.js'
import { LogQueue, type LogStats } from './logs/recorder.js'
import type { LogStore } from './logs/types.js'
import { type ErrorHook, type GatewayOptions, parseOptions, type ResolvedOptions } from './options.js'
import { createProviderRegistry } from './providers/registry.js'
import { type RequestEndServices, trackEnd } from './request-end.js'
import { createCacheRuntime } from './steps/cache.js'
import { builtInSteps } from './steps/index.js'
import { compileRules } from './steps/limit.js'
import { matchSurface } from './surface.js'
import { createTelemetry } from './telemetry.js'
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
  /** Where request logs go (the `logs.store` option, or the default in-memory store); `undefined` with `logs: false`. */
  readonly logs: LogStore | undefined
  /** Counters for what cannot be seen from a single request: log records queued, written and dropped. */
  stats(): { logs: LogStats | undefined }
  /** Writes the log records still queued; resolves when they are stored (or counted as dropped). */
  flushLogs(): Promise<void>
  /** Writes the queued log records, then closes upstream connections the gateway opened itself. */
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
  const limits = compileRules(resolved.rateLimit)
  const logOptions = resolved.logs === false ? undefined : resolved.logs
  const logQueue = logOptions && new LogQueue(logOptions.store ?? createMemoryLogStore(), logOptions, events)
  const telemetry = createTelemetry(resolved.telemetry)
  const ending: RequestEndServices = {
    logs: logQueue,
    telemetry,
    recordSettings: {
      payloads: logOptions?.payloads ?? false,
      maxPayloadBytes: logOptions?.maxPayloadBytes ?? 0,
      prices: createPriceTable(resolved.prices),
      secrets: configuredSecrets(resolved),
    },
  }
  const services: GatewayServices = {
    options: resolved,
    events,
    providers: createProviderRegistry(resolved.providers, resolved.customProviders, resolved.forwardHeaders),
    dispatcher: resolved.dispatcher ?? createDispatcher(resolved.timeouts.connectMs),
    cache: createCacheRuntime(resolved.cache),
    limits,
    watchesUsage:
      logQueue !== undefined || telemetry !== undefined || limits.some((rule) => rule.rule.unit === 'tokens'),
    now: resolved.now,
  }
  const run = compose(arrangeSteps(resolved))
  // Past the last step nothing is left to run: a step that calls `next()` there gets back at once.
  const endOfPipeline = () => Promise.resolve()

  async function handle(request: GatewayRequest): Promise<GatewayResponse | undefined> {
    const surface = matchSurface(request.method, request.path)
    if (surface === undefined) return undefined
    const ctx = createContext(request, surface, services)
    telemetry?.begin(ctx)
    notify(events, 'request:start', {
      id: ctx.id,
      method: request.method,
      path: request.path,
      surface: surface.kind,
    })
    try {
      await run(ctx, endOfPipeline)
      if (ctx.response === undefined) throw new GatewayError('INTERNAL', 'no step answered the request')
    } catch (error) {
      const gatewayError = toGatewayError(error)
      ctx.state.error = gatewayError
      if (gatewayError.key === 'INTERNAL' || gatewayError.key === 'STEP_NEXT_TWICE')
        reportError(events, error)
      const rendered = renderError(gatewayError, ctx.surface.kind === 'compat' ? 'openai' : 'reference')
      ctx.response =
        resolved.onError === undefined
          ? rendered
          : await applyErrorHook(resolved.onError, gatewayError, ctx, rendered, events)
    }
    const response = ctx.response
    Object.assign(response.headers, ctx.responseHeaders)
    ctx.metrics.firstByteMs = performance.now() - ctx.startedAt
    trackEnd(ctx, response, ending)
    return response
  }

  return {
    handle,
    events,
    logs: logQueue?.store,
    stats: () => ({ logs: logQueue === undefined ? undefined : { ...logQueue.stats } }),
    flushLogs: () => logQueue?.flush() ?? Promise.resolve(),
    async close() {
      await logQueue?.flush()
      if (ownsDispatcher) await services.dispatcher.close()
    },
    [kGateway]: true,
  } as Gateway
}

/** True for objects made by `createGateway`, so adapters can take options or a gateway. */
export function isGateway(value: unknown): value is Gateway {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kGateway] === true
}

function arrangeSteps(options: ResolvedOptions) {
  const builtIn = builtInSteps(options)
  const option = options.steps
  if (option === undefined) return builtIn
  return typeof option === 'function' ? option(builtIn) : [...option, ...builtIn]
}

/**
 * The `onError` hook's say on a gateway-made error: the response it returns, or the rendered one when it
 * returns nothing. A hook that throws or returns something that is not a response is reported as `error`,
 * and the rendered response is sent: a broken hook must not turn one error into a worse one.
 */
async function applyErrorHook(
  hook: ErrorHook,
  error: GatewayError,
  ctx: GatewayContext,
  rendered: GatewayResponse,
  events: GatewayEmitter,
): Promise<GatewayResponse> {
  try {
    const replacement: unknown = await hook(error, ctx)
    if (replacement === undefined || replacement === null) return rendered
    if (!isResponse(replacement)) {
      throw new TypeError('onError must return a response ({ status, headers, body }) or nothing')
    }
    // A copy of the headers, so the gateway's own headers never land in an object the host keeps.
    return { status: replacement.status, headers: { ...replacement.headers }, body: replacement.body }
  } catch (hookError) {
    reportError(events, hookError)
    return rendered
  }
}

function isResponse(value: unknown): value is GatewayResponse {
  if (typeof value !== 'object' || value === null) return false
  const { status, headers } = value as Partial<GatewayResponse>
  return (
    Number.isInteger(status) &&
    (status as number) >= 200 &&
    (status as number) <= 599 &&
    typeof headers === 'object' &&
    headers !== null
  )
}

/** Every secret the options hold, so log records can be scrubbed of them wherever they turn up. */
function configuredSecrets(options: ResolvedOptions): string[] {
  const secrets = [
    ...Object.values(options.providers).map((provider) => provider.apiKey),
    ...Object.values(options.customProviders).map((provider) => provider.apiKey),
    ...(options.authentication?.tokens ?? []).map((entry) =>
      typeof entry === 'string' ? entry : entry.token,
    ),
  ]
  return secrets.filter((secret): secret is string => secret !== undefined && secret.length >= 8)
}
