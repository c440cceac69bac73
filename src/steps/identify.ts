import type { GatewayRequest, MaybePromise, Principal, Step } from '../types.js'

/** The gateway's `identify` option: who is calling, from the host's request object. */
export type IdentifyFn = (host: unknown, request: GatewayRequest) => MaybePromise<Principal | undefined>

/**
 * Asks the host who is calling, once per request; the answer keys limits, scopes the cache and is logged.
 *
 * Precedence: an answer that names someone (a non-empty `id` or `tenant`) is the principal, whatever
 * authentication found; the host knows its callers best. An answer that names no one (nothing, or only
 * other fields such as `plan`) leaves the principal authentication found in place, so holders of
 * different gateway tokens never fall together into one anonymous caller; the answer's other fields are
 * added to it where it has none of its own.
 *
 * @example
 * createGateway({ identify: (req) => req.user && { id: req.user.id, tenant: req.user.org } })
 * identify((req) => req.user && { id: req.user.id }) // the same, as a step of a host's own pipeline
 */
export function identify(ask?: IdentifyFn): Step {
  if (ask !== undefined && typeof ask !== 'function') throw new TypeError('identify() expects a function')
  // Without a question to ask, the step waits on nothing: awaiting `next()` would only add a turn.
  if (ask === undefined) {
    return function identify(_ctx, next) {
      return next()
    }
  }
  return async function identify(ctx, next) {
    const answer = await ask(ctx.request.host, ctx.request)
    if (answer) ctx.state.principal = choosePrincipal(answer, ctx.state.principal)
    await next()
  }
}

function choosePrincipal(answer: Principal, authenticated: Principal | undefined): Principal {
  if (authenticated === undefined || names(answer)) return answer
  const merged: Record<string, unknown> = {}
  for (const source of [answer, authenticated]) {
    for (const [field, value] of Object.entries(source)) if (value !== undefined) merged[field] = value
  }
  return merged
}

// An empty id or tenant names no one either: the cache would scope it with the anonymous callers.
function names(principal: Principal): boolean {
  return Boolean(principal.id) || Boolean(principal.tenant)
}
