import type { Principal, Step } from '../types.js'

declare module '../types.js' {
  interface GatewayState {
    /** Who is calling, as the host's `identify` said; `undefined` without it or for anonymous callers. */
    principal?: Principal | undefined
  }
}

/** Asks the host who is calling, once per request; the answer keys limits, scopes the cache and is logged. */
export function identify(): Step {
  return async function identify(ctx, next) {
    const ask = ctx.gateway.options.identify
    // The host's answer wins; without one, the principal `verifyToken` returned (if any) stays.
    const principal = ask === undefined ? undefined : await ask(ctx.request.host, ctx.request)
    if (principal) ctx.state.principal = principal
    await next()
  }
}
