import { EventEmitter } from 'eventemitter3'
import type { Dispatcher } from 'undici'
import { createContext, type GatewayServices } from '../context.js'
import { createPriceTable } from '../cost/pricing.js'
import { createDynamicRoutes } from '../dynamic/routes.js'
import { GatewayError } from '../errors.js'
import type { GatewayEmitter, GatewayEvents } from '../events.js'
import { type GatewayOptions, parseOptions } from '../options.js'
import { createProviderRegistry } from '../providers/registry.js'
import { matchSurface } from '../surface.js'
import type { GatewayContext, GatewayRequest, Surface } from '../types.js'
import { LatencyBook } from '../upstream/balance.js'
import { createDispatcher } from '../upstream/dispatcher.js'

/** What `createTestContext` accepts; everything has a default. */
export interface TestContextOptions {
  /**
   * The request, or the parts that matter: default `POST /compat/chat/completions`, no headers, no body.
   * A plain object `body` is sent as JSON.
   */
  request?: (Partial<Omit<GatewayRequest, 'body'>> & { body?: GatewayRequest['body'] | object }) | undefined
  /** The surface the path addresses. Default: matched from the request's method and path, as `handle` does. */
  surface?: Surface | undefined
  /** Gateway options the shared services read (providers, timeouts, `now`, ...), validated as `createGateway` does. */
  options?: GatewayOptions | undefined
  /** Whether `route`/`forward` ask for and watch usage (`ctx.gateway.watchesUsage`). Default true. */
  watchesUsage?: boolean | undefined
}

/**
 * A request context as `createGateway` makes one, without a gateway: for unit tests of steps, built-in or
 * your own. Call a step with it and a `next` of your own; `ctx.gateway.events` is a fresh emitter to listen
 * on. The upstream dispatcher is `options.dispatcher` (a `MockAgent`, say), else an Agent made on first use.
 *
 * @example
 * const ctx = createTestContext({ request: { headers: { 'cf-aig-authorization': 'Bearer nope' } } })
 * await expect(authenticate({ tokens: ['a-token-of-16-chars'] })(ctx, async () => {})).rejects.toThrow()
 */
export function createTestContext(options: TestContextOptions = {}): GatewayContext {
  const resolved = parseOptions(options.options ?? {})
  const { body, ...parts } = options.request ?? {}
  const request: GatewayRequest = {
    method: 'POST',
    path: '/compat/chat/completions',
    search: '',
    headers: {},
    signal: new AbortController().signal,
    ...parts,
    body: isPlainBody(body) ? body : JSON.stringify(body),
  }
  const surface = options.surface ?? matchSurface(request.method, request.path)
  if (surface === undefined) throw new TypeError(`'${request.method} ${request.path}' is not a gateway path`)
  const events: GatewayEmitter = new EventEmitter<GatewayEvents>()
  let dispatcher: Dispatcher | undefined = resolved.dispatcher
  const providers = createProviderRegistry(resolved)
  const services: GatewayServices = {
    options: resolved,
    events,
    providers,
    get dispatcher() {
      dispatcher ??= createDispatcher(resolved.timeouts.connectMs)
      return dispatcher
    },
    watchesUsage: options.watchesUsage ?? true,
    now: resolved.now,
    latency: new LatencyBook(),
    routes: createDynamicRoutes(resolved, { providers, events }),
    prices: createPriceTable(resolved.prices),
    // A test context has no pipeline of its own to send a request through; a step under test that needs one
    // is tested on a gateway instead.
    call: () => Promise.reject(new GatewayError('INTERNAL', 'a test context sends no requests of its own')),
  }
  return createContext(request, surface, services)
}

function isPlainBody(body: unknown): body is GatewayRequest['body'] {
  return (
    body === undefined || typeof body === 'string' || typeof body === 'function' || body instanceof Uint8Array
  )
}
