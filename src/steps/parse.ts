import { GatewayError } from '../errors.js'
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
}

declare module '../types.js' {
  interface GatewayState {
    settings?: RequestSettings
  }
}

type HeaderRule = {
  readonly header: string
  readonly apply: (value: string, settings: RequestSettings) => void
}

const MAX_TIMER_MS = 2_147_483_647
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
]

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
    if (settings.eventId !== undefined) ctx.responseHeaders['cf-aig-event-id'] = settings.eventId
    await next()
  }
}
