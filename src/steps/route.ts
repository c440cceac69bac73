import { GatewayError } from '../errors.js'
import { compatTargets } from '../routes/compat.js'
import { attachStoredKeys } from '../routes/credentials.js'
import { dynamicTargets, routeNameOf, settleRoute } from '../routes/dynamic.js'
import { passthroughTargets } from '../routes/passthrough.js'
import { universalTargets } from '../routes/universal.js'
import type { UpstreamTarget } from '../target.js'
import type { GatewayContext, Step } from '../types.js'

/**
 * Resolves where the request goes, as an ordered list of targets, from the surface the path addressed. A
 * dynamic route counts the request at its rate elements as it is walked; once the request is answered,
 * what it counted is settled (see `settleRoute`), whatever happened in between.
 */
export function route(): Step {
  return async function route(ctx, next) {
    try {
      ctx.state.targets = await resolveTargets(ctx)
      // Before the keys: a request refused for its credentials (2040, 2044, 2122) is logged with its provider.
      ctx.metrics.provider = ctx.state.targets[0]?.provider.spec.id
      const attached = attachStoredKeys(ctx, ctx.state.targets)
      // Awaited only when a key was looked up: an await of what is at hand still costs a turn.
      ctx.state.targets = attached instanceof Promise ? await attached : attached
      await next()
    } finally {
      settleRoute(ctx)
    }
  }
}

/**
 * Not an async function itself: one that returns another's promise waits on it with two more turns of the
 * microtask queue, on every request.
 */
function resolveTargets(ctx: GatewayContext): Promise<UpstreamTarget[]> {
  const { surface } = ctx
  if (surface.kind === 'provider') return passthroughTargets(ctx, surface.provider, surface.rest)
  if (surface.kind === 'compat') return compatSurfaceTargets(ctx, surface.operation)
  ctx.responseHeaders['cf-aig-step'] = '0'
  return universalSurfaceTargets(ctx)
}

// `return await`: an async function that returns a promise as it is takes two turns more to settle.
async function universalSurfaceTargets(ctx: GatewayContext): Promise<UpstreamTarget[]> {
  return await universalTargets(ctx, await readJson(ctx, 'INVALID_UNIVERSAL_REQUEST'))
}

async function compatSurfaceTargets(ctx: GatewayContext, operation: string): Promise<UpstreamTarget[]> {
  const json = await readJson(ctx, 'INVALID_REQUEST_BODY')
  const input = {
    operation,
    json,
    headers: ctx.request.headers,
    policy: ctx.state.settings?.target ?? {},
    step: 0,
  }
  const routeName = routeNameOf(json)
  return routeName === undefined
    ? compatTargets(ctx, input)
    : await dynamicTargets(ctx, input, json as Record<string, unknown>, routeName)
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
