import { parseCustomCost } from './cost/cost.js'
import type { Price } from './cost/pricing.js'
import { GatewayError } from './errors.js'
import { isRecord } from './json.js'

export type Backoff = 'constant' | 'linear' | 'exponential'
export type StreamCommit = 'first-byte' | 'first-token' | 'complete'

/**
 * How one target is called: the request's `cf-aig-*` retry, timeout and key settings, which a universal
 * step's own headers and `config` override for that step.
 */
export interface TargetPolicy {
  /** `cf-aig-request-timeout`: time to the provider's first byte, in ms. */
  requestTimeoutMs?: number
  /** `cf-aig-max-attempts`: attempts per target, 1 to 5. */
  maxAttempts?: number
  /** `cf-aig-retry-delay`: base delay between attempts, 0 to 5000 ms. */
  retryDelayMs?: number
  /** `cf-aig-backoff`: how the delay grows. */
  backoff?: Backoff
  /** `cf-aig-byok-alias`: which stored provider key to use when the request brings none. */
  keyAlias?: string
  /** `cf-aig-first-token-timeout`: time to the first token of a stream, in ms. */
  firstTokenTimeoutMs?: number
  /** `cf-aig-stream-commit`: when a stream is committed to the client. */
  streamCommit?: StreamCommit
  /** `cf-aig-stream-hold`: with `first-token`, how long the begun answer is held more, in ms. */
  streamHoldMs?: number
}

/** The request's caching headers. */
export interface CacheSettings {
  /** `cf-aig-cache-ttl` (or the legacy `cf-cache-ttl`): seconds, 60 to 30 days; 0 turns caching off. */
  ttl?: number
  /** `cf-aig-skip-cache: true` (or the legacy `cf-skip-cache`): go to the provider without a lookup. */
  skip?: boolean
  /** `cf-aig-cache-key`: a key of the client's own, instead of one derived from the request. */
  key?: string
}

/** A request's `cf-aig-*` settings, read once by `parse` into `ctx.state.settings`. */
export interface RequestSettings {
  /** `cf-aig-event-id`: the client's own id, echoed back. */
  eventId?: string
  /** `cf-aig-collect-log`: `false` keeps this request out of the logs. */
  collectLog?: boolean
  /** `cf-aig-collect-log-payload`: `false` logs the request without its bodies. */
  collectLogPayload?: boolean
  /** `cf-aig-custom-cost`: prices for this request, instead of the table's. */
  customCost?: Price
  /** `cf-aig-otel-trace-id` and `cf-aig-otel-parent-span-id`: the trace this request's span joins. */
  traceParent?: { traceId: string; spanId: string }
  cache: CacheSettings
  /** The policy every target of this request starts from. */
  target: TargetPolicy
}

/** A request's `cf-aig-metadata`: a flat object of at most five entries. */
export type Metadata = Record<string, string | number | boolean>

type Headers = Readonly<Record<string, string | undefined>>

type HeaderRule<Into> = {
  readonly header: string
  readonly apply: (value: string, into: Into) => void
}

const MAX_TIMER_MS = 2_147_483_647
export const MIN_CACHE_TTL = 60
export const MAX_CACHE_TTL = 30 * 24 * 60 * 60
const MAX_METADATA_ENTRIES = 5
const MAX_METADATA_BYTES = 4096
// Printable ASCII only: the key ends up in a cache key and in logs, never in a header, but stays readable.
const CACHE_KEY = /^[\x21-\x7e]{1,1024}$/
const KEY_ALIAS = /^[a-z0-9][a-z0-9_-]{0,63}$/
const TRACE_ID = /^(?!0{32})[0-9a-f]{32}$/
const SPAN_ID = /^(?!0{16})[0-9a-f]{16}$/
const BACKOFFS: readonly Backoff[] = ['constant', 'linear', 'exponential']
export const STREAM_COMMITS = [
  'first-byte',
  'first-token',
  'complete',
] as const satisfies readonly StreamCommit[]
export const MAX_STREAM_HOLD_MS = 600_000

const TARGET_RULES: readonly HeaderRule<TargetPolicy>[] = [
  {
    header: 'cf-aig-request-timeout',
    apply(value, policy) {
      policy.requestTimeoutMs = parseWhole('cf-aig-request-timeout', value, 1, MAX_TIMER_MS, 'milliseconds')
    },
  },
  {
    header: 'cf-aig-max-attempts',
    apply(value, policy) {
      policy.maxAttempts = parseWhole('cf-aig-max-attempts', value, 1, 5, 'attempts')
    },
  },
  {
    header: 'cf-aig-retry-delay',
    apply(value, policy) {
      policy.retryDelayMs = parseWhole('cf-aig-retry-delay', value, 0, 5000, 'milliseconds')
    },
  },
  {
    header: 'cf-aig-backoff',
    apply(value, policy) {
      if (!BACKOFFS.includes(value as Backoff)) {
        throw new GatewayError(
          'INVALID_HEADER',
          `cf-aig-backoff must be one of ${BACKOFFS.join(', ')}, got '${value}'`,
        )
      }
      policy.backoff = value as Backoff
    },
  },
  {
    header: 'cf-aig-first-token-timeout',
    apply(value, policy) {
      policy.firstTokenTimeoutMs = parseWhole(
        'cf-aig-first-token-timeout',
        value,
        1,
        MAX_TIMER_MS,
        'milliseconds',
      )
    },
  },
  {
    header: 'cf-aig-stream-commit',
    apply(value, policy) {
      if (!(STREAM_COMMITS as readonly string[]).includes(value)) {
        throw new GatewayError(
          'INVALID_HEADER',
          `cf-aig-stream-commit must be one of ${STREAM_COMMITS.join(', ')}, got '${value}'`,
        )
      }
      policy.streamCommit = value as StreamCommit
    },
  },
  {
    header: 'cf-aig-stream-hold',
    apply(value, policy) {
      policy.streamHoldMs = parseWhole('cf-aig-stream-hold', value, 0, MAX_STREAM_HOLD_MS, 'milliseconds')
    },
  },
  {
    header: 'cf-aig-byok-alias',
    apply(value, policy) {
      if (!KEY_ALIAS.test(value)) {
        throw new GatewayError(
          'INVALID_HEADER',
          'cf-aig-byok-alias must be 1 to 64 lower-case letters, digits, - or _, starting with a letter or digit',
        )
      }
      policy.keyAlias = value
    },
  },
]

const CACHE_RULES: readonly HeaderRule<CacheSettings>[] = [
  ...['cf-aig-cache-ttl', 'cf-cache-ttl'].map(
    (header): HeaderRule<CacheSettings> => ({
      header,
      apply(value, cache) {
        const ttl = parseWhole(header, value, 0, MAX_CACHE_TTL, 'seconds')
        if (ttl !== 0 && ttl < MIN_CACHE_TTL) {
          throw new GatewayError(
            'INVALID_HEADER',
            `${header} must be 0 (no caching) or from ${MIN_CACHE_TTL} to ${MAX_CACHE_TTL} seconds, got '${value}'`,
          )
        }
        cache.ttl = ttl
      },
    }),
  ),
  ...['cf-aig-skip-cache', 'cf-skip-cache'].map(
    (header): HeaderRule<CacheSettings> => ({
      header,
      apply(value, cache) {
        cache.skip = parseBoolean(header, value)
      },
    }),
  ),
  {
    header: 'cf-aig-cache-key',
    apply(value, cache) {
      if (!CACHE_KEY.test(value)) {
        throw new GatewayError(
          'INVALID_HEADER',
          'cf-aig-cache-key must be 1 to 1024 printable ASCII characters without spaces',
        )
      }
      cache.key = value
    },
  },
]

const REQUEST_RULES: readonly HeaderRule<RequestSettings>[] = [
  {
    header: 'cf-aig-event-id',
    apply(value, settings) {
      if (value.length === 0 || value.length > 256) {
        throw new GatewayError('INVALID_HEADER', 'cf-aig-event-id must be 1 to 256 characters')
      }
      settings.eventId = value
    },
  },
  {
    header: 'cf-aig-collect-log',
    apply(value, settings) {
      settings.collectLog = parseBoolean('cf-aig-collect-log', value)
    },
  },
  {
    header: 'cf-aig-collect-log-payload',
    apply(value, settings) {
      settings.collectLogPayload = parseBoolean('cf-aig-collect-log-payload', value)
    },
  },
  {
    header: 'cf-aig-custom-cost',
    apply(value, settings) {
      try {
        settings.customCost = parseCustomCost(value)
      } catch (error) {
        throw new GatewayError('INVALID_HEADER', (error as Error).message)
      }
    },
  },
]

/** Every `cf-aig-*` request header read into settings (metadata, tracing and authorization are read apart). */
export const SETTINGS_HEADERS: readonly string[] = [...REQUEST_RULES, ...CACHE_RULES, ...TARGET_RULES].map(
  (rule) => rule.header,
)

function applyRules<Into>(rules: readonly HeaderRule<Into>[], headers: Headers, into: Into): Into {
  for (const rule of rules) {
    const value = headers[rule.header]
    if (value !== undefined) rule.apply(value.trim(), into)
  }
  return into
}

/** Reads a request's settings from its headers; a bad value is a 400 that names the header. */
export function readRequestSettings(headers: Headers): RequestSettings {
  const settings: RequestSettings = {
    cache: applyRules(CACHE_RULES, headers, {}),
    target: applyRules(TARGET_RULES, headers, {}),
  }
  applyRules(REQUEST_RULES, headers, settings)
  const traceParent = parseTraceParent(headers)
  if (traceParent !== undefined) settings.traceParent = traceParent
  return settings
}

/** A target's policy: `base` overridden by the target's own headers (a universal step's). */
export function readTargetPolicy(headers: Headers, base: TargetPolicy): TargetPolicy {
  return applyRules(TARGET_RULES, headers, { ...base })
}

/** Caching settings: `base` overridden by the caching headers in `headers`. */
export function readCacheSettings(headers: Headers, base: CacheSettings): CacheSettings {
  return applyRules(CACHE_RULES, headers, { ...base })
}

function parseBoolean(header: string, value: string): boolean {
  if (value === 'true') return true
  if (value === 'false') return false
  throw new GatewayError('INVALID_HEADER', `${header} must be 'true' or 'false', got '${value}'`)
}

function parseWhole(header: string, value: string, min: number, max: number, unit: string): number {
  const number = /^\d{1,10}$/.test(value) ? Number(value) : Number.NaN
  if (!(number >= min && number <= max)) {
    throw new GatewayError(
      'INVALID_HEADER',
      `${header} must be a whole number of ${unit} from ${min} to ${max}, got '${value}'`,
    )
  }
  return number
}

/** Both trace headers or neither; a malformed one is a 400 rather than a silently new trace. */
function parseTraceParent(headers: Headers): RequestSettings['traceParent'] {
  const traceId = headers['cf-aig-otel-trace-id']?.trim().toLowerCase()
  const spanId = headers['cf-aig-otel-parent-span-id']?.trim().toLowerCase()
  if (traceId === undefined && spanId === undefined) return undefined
  if (traceId === undefined || !TRACE_ID.test(traceId)) {
    throw new GatewayError('INVALID_HEADER', 'cf-aig-otel-trace-id must be 32 hex characters, not all zero')
  }
  if (spanId === undefined || !SPAN_ID.test(spanId)) {
    throw new GatewayError(
      'INVALID_HEADER',
      'cf-aig-otel-parent-span-id must be 16 hex characters, not all zero',
    )
  }
  return { traceId, spanId }
}
/**
 * `cf-aig-metadata`: a flat JSON object of at most five string, number or boolean values. The reference
 * silently keeps the first five entries and drops nested values; a silent drop hides a client bug that
 * then skews limits and analytics keyed on metadata, so anything outside the rule is a 400 that says why.
 */
export function parseMetadata(value: string | undefined): Metadata {
  if (value === undefined) return {}
  const invalid = (why: string) => new GatewayError('INVALID_HEADER', `cf-aig-metadata ${why}`)
  if (Buffer.byteLength(value) > MAX_METADATA_BYTES)
    throw invalid(`must be at most ${MAX_METADATA_BYTES} bytes`)
  let parsed: unknown
  try {
    parsed = JSON.parse(value)
  } catch {
    throw invalid('must be a JSON object')
  }
  if (!isRecord(parsed)) throw invalid('must be a JSON object')
  const entries = Object.entries(parsed)
  if (entries.length > MAX_METADATA_ENTRIES)
    throw invalid(`may have at most ${MAX_METADATA_ENTRIES} entries, got ${entries.length}`)
  for (const [key, entry] of entries) {
    if (key === '' || key.length > 128) throw invalid('keys must be 1 to 128 characters')
    if (key.startsWith('cf.')) throw invalid(`key '${key}': keys starting with 'cf.' are reserved`)
    const kind = typeof entry
    if (kind !== 'string' && kind !== 'boolean' && !(kind === 'number' && Number.isFinite(entry))) {
      throw invalid(`value of '${key}' must be a string, a finite number or a boolean`)
    }
  }
  return parsed as Metadata
}
