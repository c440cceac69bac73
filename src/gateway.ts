import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { EventEmitter } from 'eventemitter3'
import { compose, watchesUsage } from './compose.js'
import { createContext, type GatewayServices } from './context.js'
import { createPriceTable } from './cost/pricing.js'
import { createDynamicRoutes, type GatewayRoutes } from './dynamic/routes.js'
import { GatewayError } from './errors.js'
import { type GatewayEmitter, type GatewayEvents, notify } from './events.js'
import { createMemoryLogStore } from './logs/memory-store.js'
import { LogQueue, type LogStats } from './logs/recorder.js'
import type { LogStore } from './logs/types.js'
import { createMetrics, type GatewayMetrics } from './metrics/index.js'
import { type GatewayOptions, parseOptions, type ResolvedOptions } from './options.js'
import { createProviderRegistry } from './providers/registry.js'
import { answerWithError, finishResponse } from './respond.js'
import { builtInSteps, ownRequestSteps } from './steps/index.js'
import { createMemoryLimitStore } from './stores/memory-limits.js'
import { matchSurface, methodNotAllowed } from './surface.js'
import type { GatewayRequest, GatewayResponse, Step } from './types.js'
import { LatencyBook } from './upstream/balance.js'
import { createDispatcher } from './upstream/dispatcher.js'
import { createWebSockets, type UpgradeOptions } from './websocket/index.js'

const kGateway = Symbol.for('ai-gateway-middleware.gateway')

/** A gateway built once and mounted by one or more adapters (or driven directly through `handle`). */
export interface Gateway {
  /**
   * Runs a request through the pipeline. Resolves `undefined` when the path is not the gateway's (call the
   * host's next handler); gateway errors resolve as error responses. Rejects only on bugs, also emitted as
   * `error`.
   */
  handle(request: GatewayRequest): Promise<GatewayResponse | undefined>
  /**
   * Takes a Node HTTP server's `upgrade` event for a WebSocket on the mount: the mount root is the universal
   * endpoint over a socket, `/{provider}[/path]` a realtime session relayed to the provider. Answers `false`,
   * leaving the socket untouched, for anything else (another path, another protocol, `websockets: false`),
   * so the host's own WebSocket servers can have it.
   *
   * @example
   * server.on('upgrade', (req, socket, head) => {
   *   if (!gateway.upgrade(req, socket, head, { prefix: '/ai' })) ownWss.handleUpgrade(req, socket, head, onConnection)
   * })
   */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, options?: UpgradeOptions): boolean
  /**
   * Stops taking upgrades and closes every WebSocket with 1001; resolves once each has ended and its session
   * is logged. A Node server's `close()` waits for upgraded sockets, so a host shutting down calls this (or
   * `close()`, which does it first) before it; the Fastify plugin does, in `preClose`.
   */
  closeWebSockets(): Promise<void>
  readonly events: EventEmitter<GatewayEvents>
  /** Where request logs go (the `logs.store` option, or the default in-memory store); `undefined` with `logs: false`. */
  readonly logs: LogStore | undefined
  /**
   * The gateway's dynamic routes: save (validated against its providers), list, read versions, deploy and
   * roll back. The admin API serves them with `createAdmin({ routes: gateway.routes })`.
   */
  readonly routes: GatewayRoutes
  /**
   * The metrics in the Prometheus exposition format, for a route to serve (`text()`, `contentType`), or
   * `undefined` unless the `metrics` option is on.
   */
  readonly metrics: GatewayMetrics | undefined
  /** Counters for what cannot be seen from a single request: log records queued, written and dropped. */
  stats(): { logs: LogStats | undefined }
  /** Writes the log records still queued; resolves when they are stored (or counted as dropped). */
  flushLogs(): Promise<void>
  /**
   * Closes its WebSockets (1001, each session logged), writes the queued log records, then closes what the
   * gateway made itself: its default stores (the in-memory limit store; the default log store stays
   * readable through `logs`) and its upstream connections, and takes its metrics out of the registry and meter they joined. Stores and a dispatcher
   * the host passed in are left open: the host owns them and closes them itself. Calling it again, or from
   * several places at once, waits on the first call.
   */
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
  const logOptions = resolved.logs === false ? undefined : resolved.logs
  // Stores the gateway makes itself are its to close; the host's own stores stay open (the host owns them).
  const owned: { close?(): unknown }[] = []
  const own = <T extends { close?(): unknown }>(store: T): T => {
    owned.push(store)
    return store
  }
  const logQueue =
    logOptions && new LogQueue(logOptions.store ?? own(createMemoryLogStore()), logOptions, events)
  // Before the metrics: a route in code that names no provider refuses the options before any name is taken.
  const providers = createProviderRegistry(resolved)
  const routes = createDynamicRoutes(resolved, { providers, events }, own)
  const metrics =
    resolved.metrics === false ? undefined : createMetrics(resolved.metrics, { events, logs: logQueue })
  let steps: Step[]
  let run: ReturnType<typeof compose>
  try {
    steps = arrangeSteps(
      resolved,
      builtInSteps(resolved, {
        logs: logQueue,
        metrics: metrics?.recorder,
        limitStore: own(createMemoryLimitStore({ now: resolved.now })),
        // Caps keep counters of their own: keys a caller mints for a rate limit can never push one out.
        policyStore: own(createMemoryLimitStore({ now: resolved.now })),
        secrets: configuredSecrets(resolved),
      }),
    )
    run = compose(steps)
  } catch (error) {
    // The host's steps threw, or returned what is not a step: the metrics leave the registry and meter
    // they joined, so that the gateway made next, with the steps put right, can take the names again.
    metrics?.close()
    throw error
  }
  // The steps declare it once (logs, telemetry, token and cost limits, policy caps); a dynamic route's
  // budget is known only once the route is read.
  const stepsWatchUsage = steps.some(watchesUsage)
  const services: GatewayServices = {
    options: resolved,
    events,
    providers,
    dispatcher: resolved.dispatcher ?? createDispatcher(resolved.timeouts.connectMs),
    get watchesUsage() {
      return stepsWatchUsage || routes.watchesUsage
    },
    now: resolved.now,
    latency: new LatencyBook(),
    routes,
    prices: createPriceTable(resolved.prices),
    call: (request) => callOwn(request),
  }
  const websockets = createWebSockets({ services, steps, handle: (request) => handle(request) })
  const runOwn = compose(ownRequestSteps(resolved))

  async function callOwn(request: GatewayRequest): Promise<GatewayResponse> {
    const surface = matchSurface(request.method, request.path)
    if (surface === undefined) throw new GatewayError('NOT_FOUND', `no surface serves ${request.path}`)
    const ctx = createContext(request, surface, services)
    await runOwn(ctx, endOfPipeline)
    if (ctx.response === undefined) throw new GatewayError('INTERNAL', 'no step answered the request')
    return ctx.response
  }
  // A host often closes a gateway from more than one place (its own shutdown, a framework's close hook, a
  // test's teardown): every call after the first waits on the first, since undici throws when its
  // dispatcher is closed twice.
  let closing: Promise<void> | undefined
  async function closeOnce(): Promise<void> {
    // Sessions end first: each one's log record is queued as it ends, and written with the rest below.
    await websockets.close()
    await logQueue?.flush()
    metrics?.close()
    for (const store of owned) await store.close?.()
    if (ownsDispatcher) await services.dispatcher.close()
  }

  // Past the last step nothing is left to run: a step that calls `next()` there gets back at once.
  const endOfPipeline = () => Promise.resolve()

  async function handle(request: GatewayRequest): Promise<GatewayResponse | undefined> {
    const surface = matchSurface(request.method, request.path)
    if (surface === undefined) return undefined
    const ctx = createContext(request, surface, services)
    // A method the surface does not serve is refused as a router would, before the request starts.
    const refusal = methodNotAllowed(request.method, surface)
    if (refusal !== undefined) return finishResponse(ctx, await answerWithError(ctx, refusal))
    notify(events, 'request:start', {
      id: ctx.id,
      method: request.method,
      path: request.path,
      surface: surface.kind,
    })
    // The `record` step renders errors itself (so it logs the final response); this catches what is thrown
    // outside it, when a host moved or removed it.
    try {
      await run(ctx, endOfPipeline)
      if (ctx.response === undefined) throw new GatewayError('INTERNAL', 'no step answered the request')
    } catch (error) {
      await answerWithError(ctx, error)
    }
    return finishResponse(ctx, ctx.response!)
  }

  return {
    handle,
    upgrade: websockets.upgrade,
    closeWebSockets: websockets.close,
    events,
    logs: logQueue?.store,
    routes: services.routes,
    metrics: metrics?.exposition,
    stats: () => ({ logs: logQueue === undefined ? undefined : { ...logQueue.stats } }),
    flushLogs: () => logQueue?.flush() ?? Promise.resolve(),
    close() {
      closing ??= closeOnce()
      return closing
    },
    [kGateway]: true,
  } as Gateway
}

/** True for objects made by `createGateway`, so adapters can take options or a gateway. */
export function isGateway(value: unknown): value is Gateway {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kGateway] === true
}

/**
 * The host's arrangement of the built-in steps: a function gets them and returns the list; an array goes
 * after `record` (so host steps' answers and errors are logged, as the built-ins' are) and before the rest.
 */
function arrangeSteps(options: ResolvedOptions, builtIn: Step[]): Step[] {
  const option = options.steps
  if (option === undefined) return builtIn
  if (typeof option === 'function') return option(builtIn)
  const [first, ...rest] = builtIn
  return [first!, ...option, ...rest]
}

/** Every secret the options hold, so log records can be scrubbed of them wherever they turn up. */
function configuredSecrets(options: ResolvedOptions): string[] {
  const providers = [...Object.values(options.providers), ...Object.values(options.customProviders)]
  const secrets = [
    ...providers.flatMap((provider) => [
      provider.apiKey,
      ...(provider.apiKeys ?? []).map((entry) => (typeof entry === 'string' ? entry : entry.key)),
    ]),
    ...(options.authentication?.tokens ?? []).map((entry) =>
      typeof entry === 'string' ? entry : entry.token,
    ),
  ]
  return secrets.filter((secret): secret is string => secret !== undefined && secret.length >= 8)
}
