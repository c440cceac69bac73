import { GatewayError } from '../errors.js'
import { locateUpstream } from '../providers/registry.js'
import type { UpstreamTarget } from '../target.js'
import type { GatewayContext } from '../types.js'
import { buildUpstreamHeaders } from '../upstream/headers.js'
import { nativeTarget } from './native.js'

const BODYLESS_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * `/{provider}/{...rest}`: one target, the provider's base plus the path remainder and query as they came,
 * the body byte for byte, allowlisted headers.
 */
export async function passthroughTargets(
  ctx: GatewayContext,
  providerName: string,
  rest: string,
): Promise<UpstreamTarget[]> {
  const { request } = ctx
  const provider = ctx.gateway.providers.get(providerName)
  if (provider === undefined)
    throw new GatewayError('INVALID_PROVIDER', `'${providerName}' is not a known provider`)
  const { origin, path } = locateUpstream(provider, rest, request.search, ctx.surface.account)
  const method = request.method.toUpperCase()
  const bodyless = BODYLESS_METHODS.has(method)
  // One wait for both: the JSON is read from the body, so once it is parsed the body is at hand.
  const json = bodyless ? undefined : await ctx.readJson()
  const draft = {
    provider,
    origin,
    path,
    method,
    headers: buildUpstreamHeaders(request.headers, provider),
    body: bodyless ? undefined : ctx.bodyIfRead(),
    step: 0,
    policy: ctx.state.settings?.target ?? {},
    clientDialect: provider.spec.dialect,
  }
  return [nativeTarget(ctx, draft, json)]
}
