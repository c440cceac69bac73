import type { Dispatcher } from 'undici'
import { z } from 'zod'
import { type PriceOverrides, priceOverrideIssues } from './cost/pricing.js'
import type { RouteStore } from './dynamic/types.js'
import { type GatewayError, GatewayOptionsError } from './errors.js'
import { dlpOption, guardrailsOption } from './guard/config.js'
import type { KeyRing } from './keys/key-ring.js'
import type { LogStore } from './logs/types.js'
import { RESERVED_LABELS } from './metrics/labels.js'
import type { PrometheusRegistry } from './metrics/prometheus.js'
import type { Policy } from './policies/types.js'
import { PROVIDERS } from './providers/catalog.js'
import { isValidBaseURL } from './providers/registry.js'
import { DIALECTS } from './providers/types.js'
import { MAX_COMPAT_MODELS } from './routes/compat.js'
import { MAX_CACHE_TTL, MAX_STREAM_HOLD_MS, MIN_CACHE_TTL, STREAM_COMMITS } from './settings.js'
import type { AuthenticationOptions } from './steps/authenticate.js'
import type { BreakerStore, CacheStore, LimitStore } from './stores/types.js'
import type {
  GatewayContext,
  GatewayRequest,
  GatewayResponse,
  MaybePromise,
  Principal,
  Step,
} from './types.js'
import { DEFAULT_FALLBACK_ON, FAILURE_CLASSES } from './upstream/failure.js'
import { HOP_BY_HOP_HEADERS } from './upstream/headers.js'
import { websocketOptions } from './websocket/options.js'

export { GatewayOptionsError } from './errors.js'

/**
 * Sees each error the gateway answers a request with, before it is sent. Return a response to send it
 * instead of the rendered one (the gateway still adds its response headers, such as `cf-aig-log-id`), or
 * nothing to keep the rendered one. A hook that throws is reported as `error` and the rendered response is
 * sent.
 *
 * @example
 * onError: (error, ctx) => {
 *   audit.record(ctx.id, error.code)
 *   if (error.key === 'RATE_LIMITED') return { status: 429, headers: { 'content-type': 'text/plain' }, body: 'slow down' }
 * }
 */
export type ErrorHook = (
  error: GatewayError,
  ctx: GatewayContext,
  // biome-ignore lint/suspicious/noConfusingVoidType: lets a hook that only observes have a block body
) => MaybePromise<GatewayResponse | undefined | void>

const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/
// No CR, LF or NUL: a value copied into a request line must not be able to start a new header.
const HEADER_VALUE = /^[^\r\n\0]*$/
const KNOWN_PROVIDERS = PROVIDERS.map((p) => p.id)

const headerName = z.string().regex(HEADER_NAME, 'expected a lower-case HTTP header name')

// Headers a provider call must not take from the client: the gateway token, which stays with the gateway,
// and what describes the client's own connection and framing (undici refuses most of them, which would
// fail every request that carries one with a 502; `host` would name the host's site to the provider).
const NEVER_FORWARDED = new Map([
  ['cf-aig-authorization', 'the gateway token stays with the gateway'],
  ...['host', 'content-length', 'expect', ...HOP_BY_HOP_HEADERS].map(
    (name) => [name, 'it describes the client’s connection, and the gateway sets its own'] as const,
  ),
])
const forwardedHeaderName = headerName.superRefine((name, ctx) => {
  const why = NEVER_FORWARDED.get(name)
  if (why !== undefined) ctx.addIssue({ code: 'custom', message: `'${name}' is never forwarded: ${why}` })
})
const headerValue = z.string().regex(HEADER_VALUE, 'expected a header value without CR, LF or NUL')
const baseURL = z
  .string()
  .refine(isValidBaseURL, 'expected an http(s) URL without query, fragment or credentials')
const positiveMs = z.number().int().positive()

const callerKeys = z.enum(['forward', 'ignore', 'refuse'])

const poolKey = z.union([
  headerValue.min(1),
  z.strictObject({ key: headerValue.min(1), weight: z.number().positive().default(1) }),
])

/** A provider's stored key is `apiKey` or the pool `apiKeys`, never both: which would win is no rule. */
function oneKeyOption(
  record: Record<string, { apiKey?: string | undefined; apiKeys?: unknown }>,
  ctx: z.RefinementCtx,
): void {
  for (const [id, config] of Object.entries(record)) {
    if (config.apiKey !== undefined && config.apiKeys !== undefined) {
      ctx.addIssue({ code: 'custom', path: [id, 'apiKeys'], message: 'give apiKey or apiKeys, not both' })
    }
  }
}

const providerConfig = z.strictObject({
  apiKey: headerValue.min(1).optional(),
  /**
   * Several keys for the `default` alias, in place of `apiKey`: each request takes one, balanced by weight
   * (`balance`), with the others as its fallbacks; a key whose breaker is open (after a 429, say) is skipped.
   */
  apiKeys: z.array(poolKey).min(1).optional(),
  callerKeys: callerKeys.optional(),
  baseURL: baseURL.optional(),
  params: z.record(z.string(), z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/)).optional(),
  headers: z.record(headerName, headerValue).optional(),
  /**
   * How the provider continues an answer given its start as a last assistant message (`message`, or
   * `prefix` for Mistral's `prefix: true`), for resuming a failed stream on it; `false` when it cannot.
   * Known providers have theirs.
   */
  prefill: z.union([z.enum(['message', 'prefix']), z.literal(false)]).optional(),
})

const customProviderConfig = providerConfig.extend({
  baseURL,
  /** The API the upstream speaks, for usage, stream checks and compat translation; default `openai`. */
  dialect: z.enum(DIALECTS).optional(),
  auth: z
    .strictObject({
      header: headerName,
      scheme: z
        .string()
        .regex(/^[A-Za-z-]*$/)
        .optional(),
    })
    .optional(),
})

export const timeouts = z.strictObject({
  connectMs: positiveMs.default(10_000),
  firstByteMs: positiveMs.default(300_000),
  idleMs: positiveMs.default(120_000),
  totalMs: positiveMs.default(600_000),
  /**
   * How long a client may leave a streamed answer unread (its buffers full) before the gateway gives it up:
   * the connection is closed, the upstream call cancelled and the request logged as aborted.
   */
  writeStallMs: positiveMs.default(30_000),
  /**
   * Time from the request to the first token of a stream the gateway knows (text, a tool call, a refusal,
   * or the finish of an empty answer), when headers and preamble events came in time but the answer did
   * not. Past it the attempt fails as a timeout (`cf-aig-first-token-timeout` per request). Off by default:
   * reasoning models may think for minutes before their first token.
   */
  firstTokenMs: positiveMs.optional(),
})

/**
 * When a stream is committed to the client. Until then the gateway holds what the provider sent, and any
 * failure (a cut, a stall, an in-band error, the first-token clock) is retried or falls back as if the
 * stream never began; after it, a failure ends the stream with the dialect's terminal error event.
 */
export const streams = z.strictObject({
  /**
   * `first-token` (default): hold the preamble (role, `message_start`, pings) until the answer begins.
   * `first-byte`: send from the first byte, holding nothing. `complete`: hold the whole answer and send it
   * once it completed: every failure is saved, at the cost of the time to the first token.
   * Per request: `cf-aig-stream-commit`.
   */
  commit: z.enum(STREAM_COMMITS).default('first-token'),
  /** With `first-token`: once the answer began, hold it this many ms more (`cf-aig-stream-hold`). Default 0. */
  holdMs: z.number().int().min(0).max(MAX_STREAM_HOLD_MS).default(0),
  /** Commit once this many bytes are held, whatever the rule: held memory stays bounded. Default 4 MiB. */
  maxHeldBytes: z
    .number()
    .int()
    .positive()
    .default(4 * 1024 * 1024),
  /**
   * When a committed OpenAI chat stream fails (a cut, a stall, an in-band error) and fallbacks remain, go
   * on with the next one from the part already sent: as an assistant prefill where the provider takes one,
   * else by its answer to the original request when that begins with the same text. Default on.
   */
  resume: z.boolean().default(true),
})

/** Caps on what is read back from a provider, enforced while reading. */
export const answerCaps = z.strictObject({
  /**
   * Largest provider answer that is not an event stream, in bytes, enforced while reading (a declared
   * length over it is refused before reading). Past it: 502 (code 2121) before the first byte, a cut
   * connection after. Default 100 MiB.
   */
  maxResponseBytes: z
    .number()
    .int()
    .positive()
    .default(100 * 1024 * 1024),
  /** Largest streamed (SSE) answer, in bytes; past it the stream ends with a terminal error event. Default 256 MiB. */
  maxStreamBytes: z
    .number()
    .int()
    .positive()
    .default(256 * 1024 * 1024),
  /** Largest single server-sent event, in bytes; past it the stream ends with a terminal error event. Default 1 MiB. */
  maxEventBytes: z
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
})

export const fallbackOn = z.array(z.enum(FAILURE_CLASSES))

const COMPAT_MODEL = /^[^/\s]+\/\S+$/
const COMPAT_MODEL_MESSAGE = "expected '{provider}/{model}'"
const compatModel = z.string().regex(COMPAT_MODEL, COMPAT_MODEL_MESSAGE)

export const retries = z.strictObject({
  /** Attempts per target for retried statuses, network failures and in-band stream errors. */
  maxAttempts: z.number().int().min(1).max(5).default(1),
  /** Attempts per target after a timeout (connect, first byte, first token): by default none more, fall back. */
  timeoutAttempts: z.number().int().min(1).max(5).default(1),
  delayMs: z.number().int().min(0).max(5000).default(200),
  backoff: z.enum(['constant', 'linear', 'exponential']).default('exponential'),
  statuses: z.array(z.number().int().min(100).max(599)).default([408, 429, 500, 502, 503, 504]),
  maxRetryAfterMs: z.number().int().min(0).default(10_000),
  maxWaitMs: z.number().int().min(0).default(30_000),
})
const RETRY_DEFAULTS = {
  maxAttempts: 1,
  timeoutAttempts: 1,
  delayMs: 200,
  backoff: 'exponential',
  statuses: [408, 429, 500, 502, 503, 504],
  maxRetryAfterMs: 10_000,
  maxWaitMs: 30_000,
} as const

const stepsOption = z.custom<Step[] | ((builtIn: Step[]) => Step[])>(
  (value) =>
    typeof value === 'function' ||
    (Array.isArray(value) && value.every((step) => typeof step === 'function')),
  'expected an array of step functions, or a function (builtInSteps) => steps',
)

const dispatcherOption = z.custom<Dispatcher>(
  (value) =>
    typeof value === 'object' && value !== null && typeof (value as Dispatcher).dispatch === 'function',
  'expected an undici Dispatcher (Agent, Pool, ProxyAgent, ...)',
)

const isFunction = (value: unknown) => typeof value === 'function'
const hasMethods =
  (...names: string[]) =>
  (value: unknown) =>
    typeof value === 'object' &&
    value !== null &&
    names.every((name) => typeof (value as Record<string, unknown>)[name] === 'function')

export const cacheOptions = z.strictObject({
  /** Default time to live in seconds (60 to 30 days). Without it only requests that opt in are cached. */
  ttl: z.number().int().min(MIN_CACHE_TTL).max(MAX_CACHE_TTL).optional(),
  /** Where entries live. Default: an in-memory LRU bounded by `maxBytes`. */
  store: z.custom<CacheStore>(hasMethods('get', 'set', 'delete'), 'expected a CacheStore').optional(),
  /** Largest response stored, in bytes; larger ones pass through uncached. Default 25 MiB. */
  maxEntryBytes: z
    .number()
    .int()
    .positive()
    .default(25 * 1024 * 1024),
  /** Total size of the default in-memory store, in bytes. Default 256 MiB. */
  maxBytes: z
    .number()
    .int()
    .positive()
    .default(256 * 1024 * 1024),
  /**
   * Secret for the keyed fingerprint of provider credentials inside cache keys. Give every instance that
   * shares a store the same one; without it a fixed, public key is used (the fingerprint is then a plain
   * hash of the credential, still never the credential).
   */
  keySecret: z.string().min(16, 'expected at least 16 characters').optional(),
  /** Whether `cf-aig-skip-cache: true` writes the fresh answer back to the cache. Default true. */
  writeOnSkip: z.boolean().default(true),
  /** Concurrent identical misses share one provider call. Default true. */
  coalesce: z.boolean().default(true),
  /** Longest wait for the store on a lookup or a write, in ms; past it the request goes on as a miss. */
  storeTimeoutMs: positiveMs.default(250),
})

export type LimitKey =
  | 'gateway'
  | 'principal'
  | 'tenant'
  | 'provider'
  | 'model'
  | `metadata.${string}`
  | ((ctx: GatewayContext) => string | undefined)

const limitKey = z.union(
  [
    z.enum(['gateway', 'principal', 'tenant', 'provider', 'model']),
    z.custom<`metadata.${string}`>(
      (value) => typeof value === 'string' && /^metadata\.[^.]{1,128}$/.test(value),
    ),
    z.custom<(ctx: GatewayContext) => string | undefined>(isFunction),
  ],
  "expected 'gateway', 'principal', 'tenant', 'provider', 'model', 'metadata.<key>' or a function",
)

/** Where limit counters live. */
export const limitStore = z.custom<LimitStore>(hasMethods('consume', 'adjust'), 'expected a LimitStore')

const routeStore = z.custom<RouteStore>(
  hasMethods('save', 'versions', 'version', 'deploy', 'deployed', 'list', 'delete'),
  'expected a RouteStore',
)

/**
 * Dynamic routes, addressed as the model `dynamic/{name}`: where they are kept (`store`, in memory by
 * default; `createRedisRouteStore` or `createPostgresRouteStore` to share them), where their rate and budget
 * elements count (`limitStore`), how often an instance reads a deployed route again (`refreshMs`, 1000), the
 * longest wait for the route store (`storeTimeoutMs`, 1000), and routes defined in code (`definitions`),
 * deployed at the first request when the live version differs.
 */
export const routesOption = z.strictObject({
  store: routeStore.optional(),
  limitStore: limitStore.optional(),
  refreshMs: z.number().int().min(0).max(3_600_000).default(1000),
  storeTimeoutMs: positiveMs.default(1000),
  definitions: z.array(z.unknown()).default([]),
})

/**
 * Identity policies (the reference's `{ id, actor, resource, condition, action }`), checked when the gateway
 * is made: a list, or `{ rules, store, storeTimeoutMs, keyPrefix, maxConditionBytes }` to say where their
 * spend caps count (`store`, the gateway's in-memory limit store by default; a Redis one to share them).
 */
const policyList = z.array(z.custom<Policy>(() => true))

export const policiesOption = z.union([
  policyList,
  z.strictObject({
    rules: policyList,
    store: limitStore.optional(),
    /** Longest wait for the store; past it the cap is skipped and the request goes on. Default 250. */
    storeTimeoutMs: positiveMs.optional(),
    /** Put before every counter key, to keep two gateways sharing a store apart. Default `'policy:'`. */
    keyPrefix: z.string().optional(),
    /** The longest condition accepted, in UTF-8 bytes. Default 4096. */
    maxConditionBytes: z.number().int().positive().optional(),
  }),
])

/** What the `policies` option and `policy()` accept. */
export type PoliciesOption = z.input<typeof policiesOption>

export const breakerStore = z.custom<BreakerStore>(
  hasMethods('check', 'failure', 'success'),
  'expected a BreakerStore',
)

/**
 * Circuit breakers per target (provider, model and credential): after `failures` failures of the counted
 * classes within `windowMs` a target is skipped for `openMs` (a `Retry-After` opens it for as long as the
 * provider asks), then one probe request tests it: success closes it, failure opens it again.
 */
export const breakerOptions = z.strictObject({
  failures: z.number().int().min(1).default(5),
  windowMs: positiveMs.default(30_000),
  openMs: positiveMs.default(30_000),
  probeMs: positiveMs.default(10_000),
  /** Failure classes that count: a bad request or a refusal says nothing of a target's health. */
  on: z.array(z.enum(FAILURE_CLASSES)).default(['server_error', 'timeout', 'network', 'rate_limited']),
  /**
   * When every target of a request is open: `try` the last one anyway (a lone target is never refused for
   * its breaker), or `refuse` at once with 503 (code 2125) and `Retry-After`.
   */
  whenAllOpen: z.enum(['try', 'refuse']).default('try'),
  /** Where breaker state lives: share one (`createRedisBreakerStore`) across instances. Default: in memory. */
  store: breakerStore.optional(),
  /** Longest wait for the store; past it the breaker counts as closed. */
  storeTimeoutMs: positiveMs.default(250),
})

const limitRule = z
  .strictObject({
    /** Names the rule in `RateLimit` headers, events and store keys. Default `rule{index}`. */
    name: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected 1 to 64 letters, digits, - or _')
      .optional(),
    /** Requests, tokens or (`unit: 'cost'`) US dollars allowed per window. */
    limit: z.number().positive(),
    /** Window length in seconds. */
    window: z.number().int().positive(),
    /** `fixed` windows aligned to the clock, or an exact `sliding` window. Default `sliding`. */
    technique: z.enum(['fixed', 'sliding']).default('sliding'),
    /** What one counter is kept per. Default `gateway`: one counter for every request. */
    key: limitKey.default('gateway'),
    /**
     * Count `requests`, `tokens` or `cost` in US dollars (a spend limit): for tokens and cost an estimate is
     * reserved before the call and settled with the answer's real usage and cost. A cost rule applies to
     * models with a known price (or a `cf-aig-custom-cost`), and refuses with 429, code 2041.
     */
    unit: z.enum(['requests', 'tokens', 'cost']).default('requests'),
    /**
     * Applies the rule only to requests for these providers and models (the first the request names; a
     * model as `gpt-4o` or `openai/gpt-4o`), as the reference's spend-limit filters do. Default: every request.
     */
    filter: z
      .strictObject({
        provider: z.array(z.string().min(1)).min(1).optional(),
        model: z.array(z.string().min(1)).min(1).optional(),
      })
      .optional(),
    /** Token estimate reserved before the call; default: request bytes / 4 plus the requested output cap. */
    estimate: z
      .custom<(ctx: GatewayContext, body: unknown) => number>(isFunction, 'expected a function')
      .optional(),
    /** Where counters live. Default: in memory, per process. */
    store: limitStore.optional(),
    /**
     * When the store fails or times out: `open` admits by an in-process insurance limit, `closed` refuses
     * with 503 (code 2116). Default `open`.
     */
    onStoreError: z.enum(['open', 'closed']).default('open'),
    /**
     * The in-process limit each instance applies while failing open, per window of this rule. Default
     * `ceil(limit / 10)`: sized for up to ten instances sharing the store. Set it to `ceil(limit / instances)`
     * for your deployment (and, for `tokens`, to at least one request's amount, or the fallback refuses them
     * all). The bound: while the store is unreachable each instance admits at most `insuranceLimit` per
     * window, counted in its own memory, so N instances admit at most `N * insuranceLimit` per window beyond
     * what the store had counted before it became unreachable.
     */
    insuranceLimit: z.number().int().positive().optional(),
    /**
     * Longest wait for the store, in ms, from the moment it is asked. Default 1000: well above a Redis round
     * trip even when a burst or a busy CPU holds up this process's event loop, which is where the time goes
     * (a shorter timeout fails healthy calls over to the insurance limit). A store that refuses at once (a
     * Redis client that is not connected) fails at once whatever this is; one that hangs costs this wait to
     * the requests already asking it, then to one probe per second until it answers. A call that reaches
     * the Redis store after it changes nothing.
     */
    storeTimeoutMs: positiveMs.default(1000),
  })
  .refine((rule) => rule.unit === 'cost' || Number.isInteger(rule.limit), {
    path: ['limit'],
    message: 'expected a whole number (only a cost limit, in dollars, may have a fraction)',
  })

export type LimitRuleOptions = z.input<typeof limitRule>
export type LimitRule = z.output<typeof limitRule>

/** One rule or several, as `rateLimit` and `limit({ rules })` take them. */
export const limitRules = z.union([limitRule, z.array(limitRule)]).superRefine((rules, ctx) => {
  // A name keys the rule's counters in a shared store: two rules with one name would share counts.
  const names = (Array.isArray(rules) ? rules : [rules]).map((rule) => rule.name).filter(Boolean)
  const repeated = names.find((name, index) => names.indexOf(name) !== index)
  if (repeated !== undefined)
    ctx.addIssue({ code: 'custom', message: `rule name '${repeated}' is used twice` })
})

// A bearer token is one run of non-space characters: a token with a space in it could never match.
const gatewayToken = z
  .string()
  .min(16, 'expected a token of at least 16 characters')
  .regex(/^\S+$/, 'expected a token without spaces')

export const authenticationOptions = z
  .strictObject({
    /**
     * Accepted gateway tokens (`cf-aig-authorization: Bearer <token>`), each its own principal: a plain
     * token is `{ id: 'token:<first 12 hex of its SHA-256>' }`, `{ name, token }` is `{ id: name }`.
     */
    tokens: z
      .array(
        z.union([
          gatewayToken,
          z.strictObject({
            name: z.string().regex(SLUG, 'expected a slug (a-z, 0-9, -)'),
            token: gatewayToken,
          }),
        ]),
      )
      .superRefine((tokens, ctx) => {
        // Two entries with one secret would be one caller under two ids; two with one name, two callers
        // under one id (sharing cache entries and limit counters). The message names the entry, never the token.
        const secrets = tokens.map((entry) => (typeof entry === 'string' ? entry : entry.token))
        const names = tokens.map((entry) => (typeof entry === 'string' ? undefined : entry.name))
        for (const [index, secret] of secrets.entries()) {
          const first = secrets.indexOf(secret)
          if (first !== index)
            ctx.addIssue({ code: 'custom', path: [index], message: `the same token as tokens.${first}` })
          const name = names[index]
          const firstName = name === undefined ? index : names.indexOf(name)
          if (firstName !== index)
            ctx.addIssue({
              code: 'custom',
              path: [index, 'name'],
              message: `name '${name}' is used by tokens.${firstName} too`,
            })
        }
      })
      .optional(),
    /** Checks a token the list does not hold; a principal (or `true`) accepts it. */
    verifyToken: z
      .custom<NonNullable<AuthenticationOptions['verifyToken']>>(isFunction, 'expected a function')
      .optional(),
  })
  .refine((auth) => auth.tokens?.length || auth.verifyToken, 'expected tokens, verifyToken, or both')

const logOptions = z.strictObject({
  /** Where records go. Default: a bounded in-memory store (`createMemoryLogStore`). */
  store: z
    .custom<LogStore>(
      hasMethods('write', 'get', 'list', 'patch', 'delete', 'analytics'),
      'expected a LogStore',
    )
    .optional(),
  /** Keep request and response bodies (redacted) in records. `cf-aig-collect-log-payload: false` opts out. */
  payloads: z.boolean().default(true),
  /** Bodies larger than this are not kept (the record still is). Default 10 MiB. */
  maxPayloadBytes: z
    .number()
    .int()
    .positive()
    .default(10 * 1024 * 1024),
  /** Records per write to the store. */
  batchSize: z.number().int().min(1).max(10_000).default(100),
  /** Longest a record waits for its batch to fill, in ms. The memory store is written at the next tick. */
  flushIntervalMs: positiveMs.default(1000),
  /** Records waiting beyond this are dropped (and counted), so a stalled store cannot grow memory. */
  maxQueue: z.number().int().positive().default(10_000),
  /**
   * Longest a write to a store of the host's may take, in ms: past it the batch is counted as dropped and
   * reported as `store:error` (a `StoreTimeoutError`), and the queue goes on. A flush, `gateway.close()`'s
   * among them, that meets such a write drops what is still queued rather than wait for each batch in turn.
   */
  writeTimeoutMs: positiveMs.default(10_000),
})

// Prometheus's rule for label names; names starting with `__` are its own.
const LABEL_NAME = /^(?!__)[a-zA-Z_][a-zA-Z0-9_]*$/

/**
 * Metrics for Prometheus and OpenTelemetry, counted once per request where its log record is made (the
 * `record` step) and from the gateway's events; see the README's Metrics section for what is exported.
 */
export const metricsOptions = z.strictObject({
  /**
   * The prom-client `Registry` the metrics join: prom-client's default `register` to serve them with the
   * host's own, or any other. Default: a registry of the gateway's own (prom-client, an optional peer, must
   * then be installed). `gateway.metrics.text()` is the whole registry's exposition.
   */
  // Checks that do not abort, so that within the `metrics` union a wrong one is reported by its own path.
  registry: z
    .custom<PrometheusRegistry>(
      hasMethods('registerMetric', 'getSingleMetric', 'removeSingleMetric', 'metrics'),
      { message: 'expected a prom-client Registry', abort: false },
    )
    .optional(),
  /**
   * Put before every Prometheus name, and (with `.` for its last `_`) before the OpenTelemetry names of the
   * gateway's own. Two gateways sharing a registry need different ones. Default `aigw_`.
   */
  prefix: z
    .string()
    .regex(/^(?:[a-zA-Z_][a-zA-Z0-9_]*)?$/, 'expected letters, digits and _, not starting with a digit')
    .default('aigw_'),
  /**
   * Record them through OpenTelemetry too: `true` with the global MeterProvider of `@opentelemetry/api` (an
   * optional peer), or `{ meter }`. Default off.
   */
  otel: z
    .union([
      z.boolean(),
      z.strictObject({
        meter: z.custom<object>(
          hasMethods('createHistogram', 'createObservableCounter', 'createObservableUpDownCounter'),
          { message: 'expected an OpenTelemetry Meter', abort: false },
        ),
      }),
    ])
    .default(false),
  labels: z
    .strictObject({
      /**
       * `cf-aig-metadata` keys whose values label the request, token and cost metrics, each label named as
       * its key. Default none: a metadata value is never a label unless its key is listed here.
       */
      metadata: z
        .array(
          z
            .string()
            .regex(LABEL_NAME, 'expected a Prometheus label name (letters, digits and _)')
            .refine(
              (key) => !RESERVED_LABELS.includes(key),
              'expected a name the metrics do not use already',
            ),
        )
        .max(5)
        .refine((keys) => new Set(keys).size === keys.length, 'expected each key once')
        .default([]),
      /**
       * Distinct values one label keeps (model names; each metadata key's values) before later ones are
       * counted as `other`. A value is kept from a request that succeeded. Default 100.
       */
      maxValues: z.number().int().min(1).max(10_000).default(100),
    })
    .prefault({}),
  /**
   * Upper bounds, in seconds, of the latency histograms' buckets. Default: OpenTelemetry's GenAI duration
   * buckets, doubling from 0.01 to 81.92.
   */
  buckets: z
    .array(z.number().positive())
    .min(1)
    .max(50)
    .refine(
      (bounds) => bounds.every((bound, at) => at === 0 || bound > bounds[at - 1]!),
      'expected increasing bounds',
    )
    .optional(),
})

/** What the `metrics` option accepts besides `true` and `false`. */
export type MetricsOptions = z.input<typeof metricsOptions>
/** The `metrics` option's settings after validation, every default filled in. */
export type ResolvedMetricsOptions = z.output<typeof metricsOptions>

export const gatewayOptionsSchema = z.strictObject({
  /** Gateway name matched by Cloudflare's long URL form `/v1/{account}/{name}/...`. Default `'default'`. */
  name: z.string().regex(SLUG, 'expected a slug (a-z, 0-9, -)').default('default'),
  /** Settings per known provider: a stored key, a base URL override, template params, static headers. */
  providers: z
    .record(z.string(), providerConfig)
    .superRefine((record, ctx) => {
      for (const key of Object.keys(record)) {
        if (!KNOWN_PROVIDERS.includes(key)) {
          ctx.addIssue({
            code: 'custom',
            path: [key],
            message: `unknown provider '${key}' (known: ${KNOWN_PROVIDERS.join(', ')}; use customProviders for others)`,
          })
        }
      }
      oneKeyOption(record, ctx)
    })
    .default({}),
  /** Your own upstreams, addressed as `custom-{slug}`. */
  customProviders: z
    .record(z.string().regex(SLUG, 'expected a slug (a-z, 0-9, -)'), customProviderConfig)
    .superRefine(oneKeyOption)
    .default({}),
  /** Upstream clocks in milliseconds. */
  timeouts: timeouts.default({
    connectMs: 10_000,
    firstByteMs: 300_000,
    idleMs: 120_000,
    totalMs: 600_000,
    writeStallMs: 30_000,
  }),
  /**
   * Retries per target: attempts (1 to 5; `cf-aig-max-attempts` overrides), base delay and backoff
   * (`cf-aig-retry-delay`, `cf-aig-backoff`), which provider statuses are retried, the longest
   * `Retry-After` honoured (longer: no retry, go to the next target) and the most time spent waiting.
   */
  retries: retries.default({ ...RETRY_DEFAULTS, statuses: [...RETRY_DEFAULTS.statuses] }),
  /**
   * Failure classes that move on to the next target (a universal step, a fallback model): every class but
   * `content_policy` by default, which comes back to the caller as the provider said it.
   */
  fallbackOn: fallbackOn.default([...DEFAULT_FALLBACK_ON]),
  /**
   * Fallback models per model on `/compat`: `{ 'openai/gpt-4o': ['anthropic/claude-sonnet-4-5'] }`. A request
   * that names no `models` of its own gets these, tried in order after its `model`.
   */
  fallbacks: z
    .record(
      z.string(),
      z
        .array(compatModel)
        .min(1)
        .max(MAX_COMPAT_MODELS - 1),
    )
    .superRefine((record, ctx) => {
      // Checked here rather than as the record's key schema, whose issue would not say what is expected.
      for (const key of Object.keys(record)) {
        if (!COMPAT_MODEL.test(key))
          ctx.addIssue({ code: 'custom', path: [key], message: COMPAT_MODEL_MESSAGE })
      }
    })
    .default({}),
  /**
   * Deployments of one model, balanced on `/compat`: `{ 'gpt-4o': ['openai/gpt-4o', { model:
   * 'azure-openai/gpt-4o', weight: 2 }] }`. A request naming the key as its `model` (or in its `models`)
   * goes to one deployment, chosen by `balance` (by weight, or the fastest lately), and the others stand by
   * as its fallbacks; a deployment whose breaker is open is skipped.
   */
  deployments: z
    .record(
      z.string().min(1),
      z
        .array(
          z.union([
            compatModel,
            z.strictObject({ model: compatModel, weight: z.number().positive().default(1) }),
          ]),
        )
        .min(1)
        .max(MAX_COMPAT_MODELS),
    )
    .default({}),
  /** Dynamic routes; see `routesOption`. */
  routes: routesOption.prefault({}),
  /** When streams are committed to the client; see `streams`. */
  streams: streams.prefault({}),
  /**
   * How requests spread over a provider's `apiKeys` and a model's `deployments`: `weighted` (default) by
   * their weights, or `latency`, the one answering fastest lately first with one request in `explore` (0.1)
   * taking the weighted order.
   */
  balance: z
    .strictObject({
      strategy: z.enum(['weighted', 'latency']).default('weighted'),
      explore: z.number().min(0).max(1).default(0.1),
    })
    .prefault({}),
  /** Circuit breakers per target; `false` turns them off. See `breakerOptions`. */
  breaker: z.union([z.literal(false), breakerOptions]).prefault({}),
  /** Largest request body read, in bytes; larger requests get 413. Default 10 MiB. */
  maxBodyBytes: z
    .number()
    .int()
    .positive()
    .default(10 * 1024 * 1024),
  ...answerCaps.shape,
  /** Extra request headers allowed through to every provider. */
  forwardHeaders: z.array(forwardedHeaderName).default([]),
  /** Host steps: an array runs before the built-in steps (right after `record`); a function gets the built-ins and returns the list. */
  steps: stepsOption.optional(),
  /** The undici dispatcher for upstream calls. Default: an Agent built from `timeouts.connectMs`. */
  dispatcher: dispatcherOption.optional(),
  /**
   * Who is calling, from the host's request (Express `req`, Koa `ctx`, Fastify `request`): keys limits,
   * scopes the cache and is logged. Runs once per request; a throw answers 500.
   */
  identify: z
    .custom<(host: unknown, request: GatewayRequest) => MaybePromise<Principal | undefined>>(
      isFunction,
      'expected a function',
    )
    .optional(),
  /** Gateway authentication: off unless set; on, every request needs a valid `cf-aig-authorization`. */
  authentication: authenticationOptions.optional(),
  /**
   * Stored provider keys (`createKeyRing`), looked up by provider and `cf-aig-byok-alias` when a request
   * brings no key of its own. Provider `apiKey` options are the `default` alias and win over the ring's.
   */
  keys: z
    .custom<KeyRing>(hasMethods('getSecret', 'aliases'), 'expected a KeyRing (createKeyRing)')
    .optional(),
  /** Refuse (400, code 2044) requests with no provider credential and none stored. Default false. */
  requireCredentials: z.boolean().default(false),
  /**
   * Provider keys callers send themselves: `forward` them (default, the reference's precedence), `ignore`
   * them in favour of the stored key, or `refuse` the request (400, code 2122). Per provider too
   * (`providers.openai.callerKeys`). A gateway token in a provider's key header is never a provider key.
   */
  callerKeys: callerKeys.default('forward'),
  /** Request logs: one record per request, written in batches off the request's path. `false` turns them off. */
  logs: z.union([z.literal(false), logOptions]).prefault({}),
  /** Prices per provider and model (USD per million tokens) over the built-in table. */
  prices: z
    .custom<PriceOverrides>(
      (value) => typeof value === 'object' && value !== null,
      'expected { provider: { model: price } }',
    )
    .superRefine((prices, ctx) => {
      for (const issue of priceOverrideIssues(prices)) ctx.addIssue({ code: 'custom', ...issue })
    })
    .optional(),
  /**
   * OpenTelemetry: `true` makes one span per request with the global tracer of `@opentelemetry/api` (an
   * optional peer), or pass `{ tracer }`. Default off.
   */
  telemetry: z
    .union([
      z.boolean(),
      z.strictObject({ tracer: z.custom<object>(hasMethods('startSpan'), 'expected a Tracer') }),
    ])
    .default(false),
  /**
   * Metrics for Prometheus (`gateway.metrics.text()`) and OpenTelemetry: `true`, or settings (see
   * `metricsOptions`). Default off.
   */
  metrics: z
    .union([z.boolean(), metricsOptions])
    .default(false)
    .transform((option) => (option === true ? metricsOptions.parse({}) : option)),
  /**
   * Adds `Server-Timing: gateway;dur=<ms>, upstream;dur=<ms>` to every response, errors included: the
   * gateway's own share of the time to the first byte (every wait on a provider taken out), and the wait
   * for the provider's response headers from sending, all attempts together (absent when no provider was
   * called, as on a cache hit). Off by default: it tells callers how long the provider took.
   */
  serverTiming: z.boolean().default(false),
  /** Response cache; off unless set (requests can still opt in with `cf-aig-cache-key`). */
  cache: cacheOptions.optional(),
  /** One rate limit or several, each refusing with 429 (code 2003) when exceeded. */
  rateLimit: limitRules.optional(),
  /** Identity policies: who may use which model, with spend caps per calendar period; see `policiesOption`. */
  policies: policiesOption.optional(),
  /** Guardrails on prompts and answers, streams included; see `guardrailsOption`. Off unless set. */
  guardrails: guardrailsOption.optional(),
  /** DLP profiles and policies: flag, block or redact what they find; see `dlpOption`. Off unless set. */
  dlp: dlpOption.optional(),
  /** The clock limits, cache timestamps and circuit breakers read, in ms since the epoch. Default `Date.now`. */
  now: z.custom<() => number>(isFunction, 'expected a function').default(() => Date.now),
  /** Observes or replaces the response for each gateway-made error (see `ErrorHook`). Default none. */
  onError: z.custom<ErrorHook>(isFunction, 'expected a function').optional(),
  /**
   * WebSockets (`gateway.upgrade`): message size, idle and session clocks, universal requests in flight
   * per socket, backpressure, realtime providers' paths and key placement; `false` leaves every upgrade to
   * the host. See `websocketOptions`.
   */
  websockets: websocketOptions,
})

/** What `createGateway()` accepts. */
export type GatewayOptions = z.input<typeof gatewayOptionsSchema>
/** Options after validation, with every default filled in. */
export type ResolvedOptions = z.output<typeof gatewayOptionsSchema>

/**
 * Validates options once, at construction, and names every wrong option with what was expected.
 *
 * @example
 * parseOptions({ timeouts: { firstByteMs: -1 } })
 * // GatewayOptionsError: Invalid gateway options:
 * //   - timeouts.firstByteMs: Too small: expected number to be >0
 */
export function parseOptions(options: unknown): ResolvedOptions {
  return parseWith(gatewayOptionsSchema, options ?? {}, 'gateway options')
}

/**
 * Validates a step factory's options with the schema the gateway option of the same shape uses, so a
 * wrong one throws the same `GatewayOptionsError`, naming the option.
 *
 * @example
 * parseWith(cacheOptions, { ttl: 1 }, 'cache() options') // GatewayOptionsError: Invalid cache() options: ...
 */
export function parseWith<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const result = schema.safeParse(value)
  if (result.success) return result.data
  const lines = result.error.issues
    .flatMap((issue) => plainIssues(issue, []))
    .map((issue) => `  - ${issue.path.join('.') || '(options)'}: ${issue.message}`)
  throw new GatewayOptionsError(`Invalid ${what}:\n${lines.join('\n')}`)
}

/**
 * An option that takes one of several shapes (`logs: false | {...}`, a rule or a list of rules) fails
 * with Zod's bare "Invalid input". Said plainly instead: when one shape took the value's type and only
 * its fields are wrong, that shape's problems, under their own paths (`rateLimit.technique: ...`); when
 * no shape took it, the shapes the option accepts (`expected boolean or object`).
 */
function plainIssues(
  issue: z.core.$ZodIssue,
  base: PropertyKey[],
): { path: PropertyKey[]; message: string }[] {
  const path = [...base, ...issue.path]
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return [{ path, message: issue.message }]
  const taken = issue.errors.filter((problems) => problems.every((problem) => problem.path.length > 0))
  if (taken.length === 1) return taken[0]!.flatMap((problem) => plainIssues(problem, path))
  const rootOnly = issue.errors.every((problems) => problems.every((problem) => problem.path.length === 0))
  // A union that says what it takes in its own words keeps them.
  if (!rootOnly || issue.message !== ZOD_UNION_MESSAGE) return [{ path, message: issue.message }]
  const shapes = issue.errors.flatMap((problems) => problems.map(expectedShape))
  return [{ path, message: `expected ${[...new Set(shapes)].join(' or ')}` }]
}

const ZOD_UNION_MESSAGE = 'Invalid input'

function expectedShape(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type') return issue.expected
  if (issue.code === 'invalid_value') return issue.values.map((value) => JSON.stringify(value)).join(' or ')
  return issue.message.replace(/^expected /, '')
}
