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

/** The response as it goes out: the gateway's own headers (`cf-aig-*`) added, the first-byte time taken. */
export function finishResponse(ctx: GatewayContext, response: GatewayResponse): GatewayResponse {
  Object.assign(response.headers, ctx.responseHeaders)
  ctx.metrics.firstByteMs ??= performance.now() - ctx.startedAt
  return response
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
