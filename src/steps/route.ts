import { GatewayError } from '../errors.js'
import { compatTargets } from '../routes/compat.js'
import { attachStoredKeys } from '../routes/credentials.js'
import { passthroughTargets } from '../routes/passthrough.js'
import { universalTargets } from '../routes/universal.js'
import type { GatewayContext, Step } from '../types.js'

/** Resolves where the request goes, as an ordered list of targets, from the surface the path addressed. */
export function route(): Step {
  return async function route(ctx, next) {
    const { surface } = ctx
    if (surface.kind === 'provider') {
      ctx.state.targets = await passthroughTargets(ctx, surface.provider, surface.rest)
    } else if (surface.kind === 'compat') {
      const json = await readJson(ctx, 'INVALID_REQUEST_BODY')
      const { headers } = ctx.request
      ctx.state.targets = compatTargets(ctx, {
        operation: surface.operation,
        json,
        headers,
        policy: ctx.state.settings?.target ?? {},
        step: 0,
      })
    } else {
      ctx.state.targets = universalTargets(ctx, await readJson(ctx, 'INVALID_UNIVERSAL_REQUEST'))
      ctx.responseHeaders['cf-aig-step'] = '0'
    }
    // Before the keys: a request refused for its credentials (2040, 2044, 2122) is logged with its provider.
    ctx.metrics.provider = ctx.state.targets[0]?.provider.spec.id
    ctx.state.targets = await attachStoredKeys(ctx, ctx.state.targets)
    await next()
  }
}

async function readJson(
  ctx: GatewayContext,
  error: 'INVALID_REQUEST_BODY' | 'INVALID_UNIVERSAL_REQUEST',
): Promise<unknown> {
  const json = await ctx.readJson()
  if (json !== undefined) return json
  const body = await ctx.readBody()
  throw new GatewayError(error, body === undefined ? 'the body must be JSON' : 'the body is not valid JSON')
}
