import { GatewayError } from '../errors.js'
import type { Step } from '../types.js'

/** Per-request settings taken from `cf-aig-*` headers. */
export interface RequestSettings {
  /** `cf-aig-request-timeout`: time to the provider's first byte, in ms. */
  requestTimeoutMs?: number
  /** `cf-aig-event-id`: the client's own id, echoed back. */
  eventId?: string
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

/** One row per `cf-aig-*` request header this gateway understands; later features add rows. */
const HEADER_RULES: readonly HeaderRule[] = [
  {
    header: 'cf-aig-request-timeout',
    apply(value, settings) {
      settings.requestTimeoutMs = parseMilliseconds('cf-aig-request-timeout', value)
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
]

function parseMilliseconds(header: string, value: string): number {
  const ms = /^\d{1,10}$/.test(value) ? Number(value) : Number.NaN
  if (!(ms >= 1 && ms <= MAX_TIMER_MS)) {
    throw new GatewayError(
      'INVALID_HEADER',
      `${header} must be a whole number of milliseconds, got '${value}'`,
    )
  }
  return ms
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
    const settings: RequestSettings = {}
    const { headers } = ctx.request
    for (const rule of HEADER_RULES) {
      const value = headers[rule.header]
      if (value !== undefined) rule.apply(value.trim(), settings)
    }
    ctx.state.settings = settings
    if (settings.eventId !== undefined) ctx.responseHeaders['cf-aig-event-id'] = settings.eventId
    await next()
  }
}
