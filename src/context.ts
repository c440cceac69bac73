import { performance } from 'node:perf_hooks'
import type { Dispatcher } from 'undici'
import type { PriceTable } from './cost/pricing.js'
import type { DynamicRoutes } from './dynamic/routes.js'
import { GatewayError } from './errors.js'
import type { GatewayEmitter } from './events.js'
import { uuidv7 } from './ids.js'
import { parseJsonBody } from './json.js'
import type { ResolvedOptions } from './options.js'
import type { ResolvedProvider } from './providers/registry.js'
import type {
  GatewayContext,
  GatewayRequest,
  GatewayResponse,
  GatewayState,
  MaybePromise,
  Surface,
} from './types.js'
import type { LatencyBook } from './upstream/balance.js'

/**
 * What every request of one gateway shares: validated options (the ones the surface and the shared upstream
 * path read), events, providers, the upstream dispatcher and the clock. A step's own configuration is not
 * here: each step factory closes over its own.
 */
export interface GatewayServices {
  readonly options: ResolvedOptions
  readonly events: GatewayEmitter
  readonly providers: ReadonlyMap<string, ResolvedProvider>
  readonly dispatcher: Dispatcher
  /**
   * Whether any step reads the usage answers report (see `Step.watchesUsage`: the `record` step with logs
   * or telemetry, a `limit` step with a token rule), or a dynamic route with a budget was read; `route` and
   * `forward` only ask for it then.
   */
  readonly watchesUsage: boolean
  /** Milliseconds since the epoch, from the `now` option. */
  readonly now: () => number
  /** How fast targets have answered lately, for latency-aware balancing (`balance.strategy: 'latency'`). */
  readonly latency: LatencyBook
  /** Dynamic routes: their store, the live version of each, where their limits count. */
  readonly routes: DynamicRoutes
  /** Model prices (the built-in table with the `prices` option over it), for budgets. */
  readonly prices: PriceTable
  /**
   * Sends a request of the gateway's own through its providers (see `ownRequestSteps`): a guard model's
   * classification. Rejects with the `GatewayError` that answered it, or when the path is not a surface.
   */
  readonly call: (request: GatewayRequest) => Promise<GatewayResponse>
}

class RequestContext implements GatewayContext {
  readonly id = uuidv7()
  readonly startedAt = performance.now()
  readonly state: GatewayState = {}
  readonly metrics: GatewayContext['metrics'] = {
    bytesIn: 0,
    provider: undefined,
    attempts: 0,
    upstreamMs: 0,
    upstreamWaitMs: 0,
  }
  readonly responseHeaders: Record<string, string>
  response: GatewayResponse | undefined = undefined
  #body: Promise<Buffer | undefined> | undefined
  #bodyBytes: Buffer | undefined
  #bodyRead = false
  #json: Promise<unknown> | undefined

  constructor(
    readonly request: GatewayRequest,
    readonly surface: Surface,
    readonly gateway: GatewayServices,
  ) {
    // A single-attempt request uses one id for request, log and event, as the reference does; the log id
    // is added by the `record` step, and only when the request is logged.
    this.responseHeaders = {
      'cf-aig-request-id': this.id,
      'cf-aig-event-id': this.id,
    }
  }

  readBody(): Promise<Buffer | undefined> {
    this.#body ??= this.#startReading()
    return this.#body
  }

  bodyIfRead(): Buffer | undefined {
    return this.#bodyBytes
  }

  readJson(): Promise<unknown> {
    if (this.#json === undefined) {
      const body = this.readBody()
      // Parsed at once when the bytes were at hand: a `then` would cost a turn of the microtask queue.
      this.#json = this.#bodyRead ? Promise.resolve(parseJsonBody(this.#bodyBytes)) : body.then(parseJsonBody)
    }
    return this.#json
  }

  /**
   * A body the adapter already holds (Fastify's, a host parser's) is taken in this call, so that the
   * promise handed back is already settled; a stream is read as it comes.
   */
  #startReading(): Promise<Buffer | undefined> {
    let read: MaybePromise<Buffer | undefined>
    try {
      read = readRequestBody(this.request, this.gateway.options.maxBodyBytes)
    } catch (error) {
      return Promise.reject(error)
    }
    return read instanceof Promise
      ? read.then((body) => this.#received(body))
      : Promise.resolve(this.#received(read))
  }

  #received(body: Buffer | undefined): Buffer | undefined {
    this.metrics.bytesIn = body?.length ?? 0
    this.#bodyBytes = body
    this.#bodyRead = true
    return body
  }
}

/**
 * The body as bytes within the limit (else `BODY_TOO_LARGE`): at once when the request or its reader holds
 * them, else when read. The pipeline's `readBody` and the admin API's both read through it.
 */
export function readRequestBody(
  request: GatewayRequest,
  limitBytes: number,
): MaybePromise<Buffer | undefined> {
  const { body } = request
  if (body === undefined) return undefined
  const bytes = typeof body === 'function' ? body(limitBytes) : body
  if (bytes === undefined || typeof bytes === 'string' || bytes instanceof Uint8Array)
    return withinLimit(bytes, limitBytes)
  // Whatever else a reader returns is awaited: a promise, or any thenable.
  return Promise.resolve(bytes).then((read) => withinLimit(read, limitBytes))
}

function withinLimit(bytes: Uint8Array | string | undefined, limitBytes: number): Buffer | undefined {
  if (bytes === undefined) return undefined
  const buffer =
    typeof bytes === 'string'
      ? Buffer.from(bytes)
      : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (buffer.length > limitBytes) throw new GatewayError('BODY_TOO_LARGE', `the limit is ${limitBytes} bytes`)
  return buffer
}

export function createContext(
  request: GatewayRequest,
  surface: Surface,
  services: GatewayServices,
): GatewayContext {
  return new RequestContext(request, surface, services)
}
