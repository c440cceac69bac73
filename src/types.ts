import type { Readable } from 'node:stream'
import type { GatewayServices } from './context.js'
import type { Usage } from './cost/cost.js'
import type { GatewayError } from './errors.js'
import type { LogAttempt, LogGuard, LogWebSocket } from './logs/types.js'
import type { RouteCharge } from './routes/dynamic.js'
import type { Metadata, RequestSettings } from './settings.js'
import type { CacheStatus } from './steps/cache.js'
import type { UpstreamTarget } from './target.js'
import type { BodyEnd } from './upstream/body.js'

export type MaybePromise<T> = T | Promise<T>

/**
 * Where a request body comes from. The bridge hands the core a reader so that the body is read only when a
 * step needs it, and never past `limitBytes` (the reader rejects with `BODY_TOO_LARGE` first). A reader
 * whose bytes are already at hand may return them as they are, which spares the request a promise.
 */
export type BodyReader = (limitBytes: number) => MaybePromise<Uint8Array | undefined>

/** A request as the core sees it: framework-free, built by `src/node` or by a host calling `handle()`. */
export interface GatewayRequest {
  readonly method: string
  /** Path relative to the mount point, always starting with `/`, without the query string. */
  readonly path: string
  /** The raw query string with its leading `?`, or `''`. Forwarded upstream as it came. */
  readonly search: string
  /** Lower-case header names; repeated headers joined with `, ` as Node does. */
  readonly headers: Readonly<Record<string, string | undefined>>
  /** Aborted when the client goes away; the upstream call is cancelled with it. */
  readonly signal: AbortSignal
  /**
   * Optional, for adapters with a cheaper close event than an AbortSignal's (the Node adapters use the
   * response's own `close`): whether the client went away, and a way to hear of it that returns its own
   * removal. The gateway uses them, when given, on every request's path, and leaves `signal` to be made
   * only when something asks for it. Without them it reads `signal`.
   */
  readonly clientClosed?: boolean | undefined
  readonly onClientClose?: ((listener: () => void) => () => void) | undefined
  readonly body?: Uint8Array | string | BodyReader | undefined
  readonly ip?: string | undefined
  /** The host framework's request (Express `req`, Koa `ctx`, Fastify `request`), for `identify`. */
  readonly host?: unknown
  /**
   * The request target as the client sent it, before the mount point was taken off (`/ai-admin/logs?limit=5`
   * for the `path` `/logs`). Adapters set it; a host calling `handle()` may leave it out. The admin's
   * dashboard reads it to tell `/ai-admin` from `/ai-admin/` and to scope its cookie to the mount.
   */
  readonly originalUrl?: string | undefined
  /** Whether the connection itself is TLS (the socket's `encrypted`); a proxy in front says so in its headers. */
  readonly secure?: boolean | undefined
}

/**
 * Who is calling, in the host's own terms, as `identify` returns it. `tenant` (else `id`) scopes cache
 * entries; limit rules can be keyed on either. Any other fields are the host's, for its own steps.
 */
export interface Principal {
  readonly id?: string | undefined
  readonly tenant?: string | undefined
  readonly plan?: string | undefined
  readonly [field: string]: unknown
}

/**
 * `null`, a complete body, or a Node stream that is piped to the client with backpressure. A stream that
 * fails is cut off; the gateway's own streams end a failed event stream with a terminal event instead.
 */
export type ResponseBody = null | string | Uint8Array | Readable

export interface GatewayResponse {
  status: number
  headers: Record<string, string>
  body: ResponseBody
  /**
   * For the gateway's own streams: how the body ended, once it closed (`undefined` means it never
   * finished). Readers (logs, cache) ask it instead of judging a stream by its bytes.
   */
  outcome?: (() => BodyEnd | undefined) | undefined
}

/**
 * OpenTelemetry's `Context`, written out so that the published types do not need `@opentelemetry/api` (an
 * optional peer): the two are interchangeable.
 */
export interface TraceContext {
  getValue(key: symbol): unknown
  setValue(key: symbol, value: unknown): TraceContext
  deleteValue(key: symbol): TraceContext
}

/**
 * Per-request state shared by the steps. Every field is declared here, with the step that sets it, rather
 * than by module augmentation next to each step: augmentations of a relative module do not survive the
 * bundled declaration files, and hosts read these fields from their own steps.
 */
export interface GatewayState {
  /** `parse`: the `cf-aig-*` request settings. */
  settings?: RequestSettings
  /** `parse`: `cf-aig-metadata`, validated; `{}` when absent. */
  metadata?: Metadata
  /**
   * `identify`: who is calling: the host's `identify` answer, else the principal gateway authentication
   * found (a fixed token's, or `verifyToken`'s); `undefined` for anonymous callers.
   */
  principal?: Principal | undefined
  /**
   * `authenticate`: the gateway token the request authenticated with. A provider key header carrying it
   * (an SDK given the gateway token as its API key) is the gateway token: never forwarded, and the stored
   * key goes in its place.
   */
  gatewayToken?: string
  /** `route`: the upstream calls to try, in order; `forward` takes the first that answers. */
  targets?: UpstreamTarget[]
  /** `route`: what a dynamic route's rate elements counted, settled once the request is answered. */
  routeCharges?: RouteCharge[]
  /** The target that answered (or failed last), set by `forward`. */
  target?: UpstreamTarget
  /** `forward`: every attempt, once a request needed more than one or skipped a target. */
  attemptLog?: LogAttempt[]
  /** `guard`: what guardrails and DLP found and did. */
  guard?: LogGuard | undefined
  /** `guard`: the request body as logged, when DLP found something in it: masked wherever it did. */
  loggedRequestBody?: Buffer | undefined
  /**
   * `guard`: where the answer as logged differs from the answer sent, in order: findings DLP only flagged,
   * passed on to the client, are masked in the log's copy.
   */
  loggedResponseEdits?: ResponseLogEdit[] | undefined
  /**
   * `cache`: a hit on an answer DLP found something in, or by a caller's own key on a gateway with DLP:
   * nothing scanned its bodies this time, so its record keeps none.
   */
  withholdLogBodies?: true
  /** `cache`: set when the request was cacheable: whether the cache answered it. */
  cacheStatus?: CacheStatus
  /** The usage the provider's answer reports, once it has been read to its end; set by `forward`. */
  usage?: Promise<Usage | undefined>
  /** Secrets the gateway itself put into this request's upstream calls (stored keys). */
  secrets?: string[]
  /** The gateway-made error the request was answered with, if any. */
  error?: GatewayError
  /**
   * For a realtime WebSocket session, kept up to date while it runs: frames and bytes each way and, once it
   * ended, how. Its log record reads it (the bytes are its `requestSize` and `responseSize`).
   */
  websocket?: LogWebSocket & { bytesIn: number; bytesOut: number }
  /** The OpenTelemetry context active when the request arrived (or the one its trace headers name). */
  traceContext?: TraceContext
}

/** Cloudflare's long URL form `/v1/{account}/{gateway}/...`, when the request used it. */
/** A stretch of an answer's bytes that its logged copy replaces: `original`, at byte `at` of the body sent. */
export interface ResponseLogEdit {
  readonly at: number
  readonly original: Buffer
  readonly replacement: Buffer
}

export interface SurfaceScope {
  readonly account?: string | undefined
  readonly gatewayName?: string | undefined
}

/** The request surface the path addressed, decided before any step runs. */
export type Surface =
  | (SurfaceScope & {
      readonly kind: 'provider'
      /** Provider slug as written in the path, e.g. `openai` or `custom-mylab`. */
      readonly provider: string
      /** Path after the provider segment, starting with `/` (or `''`). */
      readonly rest: string
    })
  | (SurfaceScope & {
      readonly kind: 'compat'
      /** Path after `/compat`, e.g. `/chat/completions`. */
      readonly operation: string
    })
  | (SurfaceScope & { readonly kind: 'universal' })

export interface GatewayContext {
  /** UUIDv7; also sent as `cf-aig-request-id`, and as `cf-aig-log-id` when the request is logged. */
  readonly id: string
  readonly request: GatewayRequest
  readonly surface: Surface
  readonly state: GatewayState
  readonly gateway: GatewayServices
  /** `performance.now()` when the request entered the gateway. */
  readonly startedAt: number
  /** Set by the step that answers; a step may replace it on the way back out. */
  response: GatewayResponse | undefined
  /** Extra response headers for whatever answers, errors included (`cf-aig-*`). */
  readonly responseHeaders: Record<string, string>
  /** Counted on the way in and out, for `request:end` and the log record. */
  readonly metrics: {
    bytesIn: number
    provider?: string | undefined
    /** Upstream calls made, retries and fallbacks included. */
    attempts: number
    /** Milliseconds from arrival until the answer was ready to send (its first byte in hand). */
    firstByteMs?: number | undefined
    /**
     * Milliseconds from arrival until the provider's stream began its answer (its first token): measured
     * for the streams the gateway reads up to their first token before sending (`streams.commit` of
     * `first-token`, the default, or `complete`); `undefined` for other answers.
     */
    firstTokenMs?: number | undefined
    /**
     * Milliseconds spent waiting for providers' response headers, from sending each attempt until its
     * headers came (or it failed), summed over attempts: the `upstream` metric of `Server-Timing`.
     */
    upstreamMs: number
    /**
     * Milliseconds spent waiting on providers before the answer could be sent: `upstreamMs`, plus the body
     * bytes read before answering (a small answer whole, a stream's first chunk, an error answer). The rest
     * of `firstByteMs` is the gateway's own: the `gateway` metric of `Server-Timing`.
     */
    upstreamWaitMs: number
  }
  /** Reads the request body once, capped by `maxBodyBytes`; later calls get the same bytes. */
  readBody(): Promise<Buffer | undefined>
  /** The body if a step has read it already, without reading it. */
  bodyIfRead(): Buffer | undefined
  /**
   * The body as JSON, parsed once however many steps ask (routing, cache key, limits); `undefined` when it
   * is not a JSON object or array.
   */
  readJson(): Promise<unknown>
}

export type Next = () => Promise<void>

/** One stage of the pipeline, onion style: work before `await next()` runs on the way in, after it on the way out. */
export interface Step {
  (ctx: GatewayContext, next: Next): Promise<void>
  /**
   * Set to `true` on a step that reads `ctx.state.usage` (token limits, logs, telemetry): the gateway then
   * asks providers to report usage (e.g. `stream_options.include_usage`) and watches answers for it. When no
   * step in the pipeline declares it, the gateway skips that work. `compose` and `when` pass it on.
   */
  watchesUsage?: boolean
}
