import { GatewayError } from '../errors.js'
import { locateUpstream } from '../providers/registry.js'
import type { Step } from '../types.js'
import type { UpstreamTarget } from '../upstream/call.js'
import { buildUpstreamHeaders } from '../upstream/headers.js'

declare module '../types.js' {
  interface GatewayState {
    /** The upstream calls to try, in order; `forward` takes the first that answers. */
    targets?: UpstreamTarget[]
  }
}

const BODYLESS_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * Resolves where the request goes. For provider passthrough that is one target: the provider's base plus
 * the path remainder and query as they came, the body byte for byte, and allowlisted headers.
 */
export function route(): Step {
  return async function route(ctx, next) {
    const { surface, request } = ctx
    const provider = ctx.gateway.providers.get(surface.provider)
    if (provider === undefined) {
      throw new GatewayError('INVALID_PROVIDER', `'${surface.provider}' is not a known provider`)
    }
    const { origin, path } = locateUpstream(provider, surface, request.search)
    const method = request.method.toUpperCase()
    ctx.metrics.provider = provider.spec.id
    ctx.state.targets = [
      {
        provider,
        origin,
        path,
        method,
        headers: buildUpstreamHeaders(request, provider),
        body: BODYLESS_METHODS.has(method) ? undefined : await ctx.readBody(),
      },
    ]
    await next()
  }
}
