// The dynamic route of `gateway-fastify-route-memory` and what its requests must carry to walk it, shared by
// the server (which defines the route) and the runner (which sends the requests and checks the answers). No
// side effects: the runner imports this module.

/** The route's name: its requests name the model `dynamic/bench`. */
export const ROUTE_NAME = 'bench'
/** The model at the end of the walk: what `compat-json` names, so the upstream answers exactly as there. */
export const ROUTE_PROVIDER = 'anthropic'
export const ROUTE_MODEL = 'claude-sonnet-4-5'
/**
 * The request's `cf-aig-metadata`: `plan` passes the condition, and `user` keys the split and the rate
 * counter. `user-1` lands in the split's 50% branch (sticky: hashed with the route and element ids), the one
 * that leads on to `ROUTE_MODEL`; the other branches end at another model, so the answer's `cf-aig-model`
 * shows the walk took the intended path.
 */
export const ROUTE_METADATA = { plan: 'pro', user: 'user-1' } as const
/** Where a walk off the intended path ends: the upstream answers it too, but under another `cf-aig-model`. */
const OFF_PATH_MODEL = 'claude-haiku-4-5'
/** A limit no run comes near, so that every request is counted and none is refused. */
const NEVER_REACHED = 1e9
const LIMIT_WINDOW_SECONDS = 60

/**
 * start → conditional (`metadata.plan` in pro, team) → percentage (50%, sticky on `metadata.user`) → rate
 * (a count per `metadata.user`) → model → end. `technique` is the rate element's, as for the limit rows.
 */
export function benchRoute(technique: 'fixed' | 'sliding') {
  return {
    name: ROUTE_NAME,
    elements: [
      { id: 'start', type: 'start', outputs: { next: { elementId: 'plan' } } },
      {
        id: 'plan',
        type: 'conditional',
        properties: { condition: { 'metadata.plan': { $in: ['pro', 'team'] } } },
        outputs: { true: { elementId: 'split' }, false: { elementId: 'off-path' } },
      },
      {
        id: 'split',
        type: 'percentage',
        properties: { key: 'metadata.user' },
        outputs: { '50%': { elementId: 'budget' }, else: { elementId: 'off-path' } },
      },
      {
        id: 'budget',
        type: 'rate',
        properties: {
          limitType: 'count',
          limit: NEVER_REACHED,
          interval: LIMIT_WINDOW_SECONDS,
          key: 'metadata.user',
          technique,
        },
        // No fallback: a limit reached after all would show as refused requests, not pass unnoticed.
        outputs: { success: { elementId: 'model' } },
      },
      {
        id: 'model',
        type: 'model',
        properties: { provider: ROUTE_PROVIDER, model: ROUTE_MODEL },
        outputs: { success: { elementId: 'end' } },
      },
      {
        id: 'off-path',
        type: 'model',
        properties: { provider: ROUTE_PROVIDER, model: OFF_PATH_MODEL },
        outputs: { success: { elementId: 'end' } },
      },
      { id: 'end', type: 'end', outputs: {} },
    ],
  }
}
