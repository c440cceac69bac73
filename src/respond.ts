import { performance } from 'node:perf_hooks'
import { type GatewayError, renderError, toGatewayError } from './errors.js'
import { type GatewayEmitter, reportError } from './events.js'
import type { ErrorHook } from './options.js'
import type { GatewayContext, GatewayResponse } from './types.js'

/**
 * The one error path: turns what a step threw into the response sent, as `ctx.response`. Records the error
 * on `ctx.state.error`, reports bugs as `error`, renders it for the surface and lets the `onError` hook
 * replace it. Used by the `record` step (so it logs the final response) and by `handle` for whatever is
 * thrown outside it.
 */
export async function answerWithError(ctx: GatewayContext, error: unknown): Promise<GatewayResponse> {
  const { events, options } = ctx.gateway
  const gatewayError = toGatewayError(error)
  ctx.state.error = gatewayError
  if (gatewayError.key === 'INTERNAL' || gatewayError.key === 'STEP_NEXT_TWICE') reportError(events, error)
  const rendered = renderError(gatewayError, ctx.surface.kind === 'compat' ? 'openai' : 'reference')
  ctx.response =
    options.onError === undefined
      ? rendered
      : await applyErrorHook(options.onError, gatewayError, ctx, rendered, events)
  return ctx.response
}

/**
 * The response as it goes out: the first-byte time taken, the gateway's own headers (`cf-aig-*`, and
 * `server-timing` when asked for) added. `handle` calls this again after the `record` step did: the clock
 * and the timing header are taken once, the first time.
 */
export function finishResponse(ctx: GatewayContext, response: GatewayResponse): GatewayResponse {
  if (ctx.metrics.firstByteMs === undefined) {
    ctx.metrics.firstByteMs = performance.now() - ctx.startedAt
    if (ctx.gateway.options.serverTiming) ctx.responseHeaders['server-timing'] = serverTiming(ctx, response)
  }
  Object.assign(response.headers, ctx.responseHeaders)
  return response
}

/**
 * `gateway;dur` is the time to the first byte less every wait on a provider (`metrics.upstreamWaitMs`):
 * reading the request, the steps, store calls, retry pauses. `upstream;dur` is the wait for the provider's
 * response headers from sending (every attempt's together), present only when a provider was called: a
 * cache hit or a refusal has none. The provider's own metrics follow, except on a cache hit, whose stored
 * ones were measured for another request.
 */
function serverTiming(ctx: GatewayContext, response: GatewayResponse): string {
  const { firstByteMs = 0, upstreamMs, upstreamWaitMs, attempts } = ctx.metrics
  let value = `gateway;dur=${Math.max(0, firstByteMs - upstreamWaitMs).toFixed(3)}`
  if (attempts > 0) value += `, upstream;dur=${upstreamMs.toFixed(3)}`
  const providers = response.headers['server-timing']
  if (providers !== undefined && ctx.state.cacheStatus !== 'HIT') value += `, ${providers}`
  return value
}

/**
 * The `onError` hook's say on a gateway-made error: the response it returns, or the rendered one when it
 * returns nothing. A hook that throws or returns something that is not a response is reported as `error`,
 * and the rendered response is sent: a broken hook must not turn one error into a worse one.
 */
async function applyErrorHook(
  hook: ErrorHook,
  error: GatewayError,
  ctx: GatewayContext,
  rendered: GatewayResponse,
  events: GatewayEmitter,
): Promise<GatewayResponse> {
  try {
    const replacement: unknown = await hook(error, ctx)
    if (replacement === undefined || replacement === null) return rendered
    if (!isResponse(replacement)) {
      throw new TypeError('onError must return a response ({ status, headers, body }) or nothing')
    }
    // A copy of the headers, so the gateway's own headers never land in an object the host keeps.
    return { status: replacement.status, headers: { ...replacement.headers }, body: replacement.body }
  } catch (hookError) {
    reportError(events, hookError)
    return rendered
  }
}

function isResponse(value: unknown): value is GatewayResponse {
  if (typeof value !== 'object' || value === null) return false
  const { status, headers } = value as Partial<GatewayResponse>
  return (
    Number.isInteger(status) &&
    (status as number) >= 200 &&
    (status as number) <= 599 &&
    typeof headers === 'object' &&
    headers !== null
  )
}
