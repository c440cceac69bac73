import { GatewayError } from '../errors.js'
import { parseMetadata, readRequestSettings } from '../settings.js'
import type { GatewayContext, Step } from '../types.js'

/**
 * Checks the gateway name of Cloudflare's long URL form and reads the `cf-aig-*` headers into
 * `ctx.state.settings` and `ctx.state.metadata`; a bad value is a 400 that names the header.
 */
export function parse(): Step {
  // Not an async function: it waits on nothing, and one that waited on `next()` would add a turn of the
  // microtask queue to every request.
  return function parse(ctx, next) {
    try {
      checkGatewayName(ctx)
      const settings = readRequestSettings(ctx.request.headers)
      ctx.state.settings = settings
      ctx.state.metadata = parseMetadata(ctx.request.headers['cf-aig-metadata'])
      if (settings.eventId !== undefined) ctx.responseHeaders['cf-aig-event-id'] = settings.eventId
    } catch (error) {
      return Promise.reject(error)
    }
    return next()
  }
}

/** Refuses Cloudflare's long URL form when it names a gateway other than this one. */
export function checkGatewayName(ctx: Pick<GatewayContext, 'surface' | 'gateway'>): void {
  const { gatewayName } = ctx.surface
  if (gatewayName !== undefined && gatewayName !== ctx.gateway.options.name) {
    throw new GatewayError('GATEWAY_NOT_FOUND', `no gateway named '${gatewayName}' is mounted here`)
  }
}
