import { parseCustomCost } from '../cost/cost.js'
import type { Price } from '../cost/pricing.js'
import { GatewayError } from '../errors.js'
import { isRecord } from '../json.js'
import type { Step } from '../types.js'

export type Backoff = 'constant' | 'linear' | 'exponential'

/** Per-request settings taken from `cf-aig-*` headers. */
export interface RequestSettings {
  /** `cf-aig-request-timeout`: time to the provider's first byte, in ms. */
  requestTimeoutMs?: number
  /** `cf-aig-event-id`: the client's own id, echoed back. */
  eventId?: string
  /** `cf-aig-max-attempts`: attempts per target, 1 to 5. */
  maxAttempts?: number
  /** `cf-aig-retry-delay`: base delay between attempts, 0 to 5000 ms. */
  retryDelayMs?: number
  /** `cf-aig-backoff`: how the delay grows. */
  backoff?: Backoff
  /** `cf-aig-cache-ttl` (or the legacy `cf-cache-ttl`): seconds, 60 to 30 days; 0 turns caching off. */
  cacheTtl?: number
  /** `cf-aig-skip-cache: true` (or the legacy `cf-skip-cache`): go to the provider without a lookup. */
  skipCache?: boolean
  /** `cf-aig-cache-key`: a key of the client's own, instead of one derived from the request. */
  cacheKey?: string
  /** `cf-aig-collect-log`: `false` keeps this request out of the logs. */
  collectLog?: boolean
  /** `cf-aig-collect-log-payload`: `false` logs the request without its bodies. */
  collectLogPayload?: boolean
  /** `cf-aig-custom-cost`: prices for this request, instead of the table's. */
  customCost?: Price
  /** `cf-aig-byok-alias`: which stored provider key to use when the request brings none. */
  keyAlias?: string
  /** `cf-aig-otel-trace-id` and `cf-aig-otel-parent-span-id`: the trace this request's span joins. */
  traceParent?: { traceId: string; spanId: string }
}

/** A request's `cf-aig-metadata`: a flat object of at most five entries. */
export type Metadata = Record<string, string | number | boolean>

type HeaderRule = {
  readonly header: string
  readonly apply: (value: string, settings: RequestSettings) => void
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

/** One row per `cf-aig-*` request header this gateway understands; later features add rows. */
const HEADER_RULES: readonly HeaderRule[] = [
  {
    header: 'cf-aig-request-timeout',
    apply(value, settings) {
      settings.requestTimeoutMs = parseWhole('cf-aig-request-timeout', value, 1, MAX_TIMER_MS, 'milliseconds')
    },
  },
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
    header: 'cf-aig-max-attempts',
    apply(value, settings) {
      settings.maxAttempts = parseWhole('cf-aig-max-attempts', value, 1, 5, 'attempts')
    },
  },
  {
    header: 'cf-aig-retry-delay',
    apply(value, settings) {
      settings.retryDelayMs = parseWhole('cf-aig-retry-delay', value, 0, 5000, 'milliseconds')
    },
  },
  {
    header: 'cf-aig-backoff',
    apply(value, settings) {
      if (!BACKOFFS.includes(value as Backoff)) {
        throw new GatewayError(
          'INVALID_HEADER',
          `cf-aig-backoff must be one of ${BACKOFFS.join(', ')}, got '${value}'`,
        )
      }
      settings.backoff = value as Backoff
    },
  },
  ...['cf-aig-cache-ttl', 'cf-cache-ttl'].map(
    (header): HeaderRule => ({
      header,
      apply(value, settings) {
        const ttl = parseWhole(header, value, 0, MAX_CACHE_TTL, 'seconds')
        if (ttl !== 0 && ttl < MIN_CACHE_TTL) {
          throw new GatewayError(
            'INVALID_HEADER',
            `${header} must be 0 (no caching) or from ${MIN_CACHE_TTL} to ${MAX_CACHE_TTL} seconds, got '${value}'`,
          )
        }
        settings.cacheTtl = ttl
      },
    }),
  ),
  ...['cf-aig-skip-cache', 'cf-skip-cache'].map(
    (header): HeaderRule => ({
      header,
      apply(value, settings) {
        settings.skipCache = parseBoolean(header, value)
      },
    }),
  ),
  {
    header: 'cf-aig-cache-key',
    apply(value, settings) {
      if (!CACHE_KEY.test(value)) {
        throw new GatewayError(
          'INVALID_HEADER',
          'cf-aig-cache-key must be 1 to 1024 printable ASCII characters without spaces',
        )
      }
      settings.cacheKey = value
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
  {
    header: 'cf-aig-byok-alias',
    apply(value, settings) {
      if (!KEY_ALIAS.test(value)) {
        throw new GatewayError(
          'INVALID_HEADER',
          'cf-aig-byok-alias must be 1 to 64 lower-case letters, digits, - or _, starting with a letter or digit',
        )
      }
      settings.keyAlias = value
    },
  },
]

function parseBoolean(header: string, value: string): boolean {
  if (value === 'true') return true
  if (value === 'false') return false
  throw new GatewayError('INVALID_HEADER', `${header} must be 'true' or 'false', got '${value}'`)
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

/** Both trace headers or neither; a malformed one is a 400 rather than a silently new trace. */
function parseTraceParent(
  headers: Readonly<Record<string, string | undefined>>,
): RequestSettings['traceParent'] {
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

/**
 * Reads the `cf-aig-*` settings out of a header record, on top of `base`. The universal endpoint calls it
 * again with each step's own headers, which override the request's.
 */
export function readSettings(
  headers: Readonly<Record<string, string | undefined>>,
  base: RequestSettings = {},
): RequestSettings {
  const settings: RequestSettings = { ...base }
  for (const rule of HEADER_RULES) {
    const value = headers[rule.header]
    if (value !== undefined) rule.apply(value.trim(), settings)
  }
  return settings
}

/**
 * Checks the gateway name of Cloudflare's long URL form and reads the `cf-aig-*` headers into
 * `ctx.state.settings`; a bad value is a 400 that names the header.
 */
export function parse(): Step {
  return async function parse(ctx, next) {
    const { gatewayName } = ctx.surface
    if (gatewayName !== undefined && gatewayName !== ctx.gateway.options.name) {
      throw new GatewayError('GATEWAY_NOT_FOUND', `no gateway named '${gatewayName}' is mounted here`)
    }
    const settings = readSettings(ctx.request.headers)
    ctx.state.settings = settings
    ctx.state.metadata = parseMetadata(ctx.request.headers['cf-aig-metadata'])
    const traceParent = parseTraceParent(ctx.request.headers)
    if (traceParent !== undefined) settings.traceParent = traceParent
    if (settings.eventId !== undefined) ctx.responseHeaders['cf-aig-event-id'] = settings.eventId
    await next()
  }
}
