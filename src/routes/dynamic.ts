import { costMicros, MICROS_PER_DOLLAR } from '../cost/answer-cost.js'
import type { ConditionInput } from '../dynamic/condition.js'
import type { RateElement, RouteDefinition } from '../dynamic/types.js'
import { type Admitted, walkRoute } from '../dynamic/walk.js'
import { GatewayError } from '../errors.js'
import { notify } from '../events.js'
import { isRecord } from '../json.js'
import { withFields } from '../objects.js'
import { callStore } from '../stores/call.js'
import type { LimitDecision, LimitWindow } from '../stores/types.js'
import type { UpstreamTarget } from '../target.js'
import type { GatewayContext } from '../types.js'
import { type CompatInput, compatTarget, headersFor, keyProviderOf } from './compat.js'

/** The model prefix that names a dynamic route on `/compat` and in universal compat steps. */
export const DYNAMIC_PREFIX = 'dynamic/'
/** How long a rate element waits on its store before admitting the request without it. */
const STORE_TIMEOUT_MS = 250

/** How a request was walked to one model of a dynamic route, for its record. */
export interface RouteTaken {
  readonly name: string
  readonly version: number
  /** Element ids from `start` to the model, both included. */
  readonly path: readonly string[]
  /** Percentage element id → the branch drawn, on the way to the model. */
  readonly variants: Readonly<Record<string, string>>
}

/** A rate element's admission, kept until the answer says what to charge. */
export interface RouteCharge {
  readonly routeName: string
  /** The universal step whose walk counted it (0 otherwise): steps may name the same route. */
  readonly step: number
  readonly element: RateElement
  readonly key: string
  readonly window: LimitWindow
  readonly decision: LimitDecision
}

/**
 * The targets of a request whose model is `dynamic/{name}`: the live version of the route walked for this
 * request (its conditions, splits and limits), one compat target per model it reached, each the fallback of
 * the one before (a model this instance cannot send the request to is passed over). A model's `timeout` and `retries` become its target's first-byte clock and attempts. A
 * caller's own provider key goes to the route's models only when they are all on one provider: the walk's
 * draws and limits decide which model comes first, not the caller.
 */
export async function dynamicTargets(
  ctx: GatewayContext,
  input: CompatInput,
  body: Record<string, unknown>,
  name: string,
): Promise<UpstreamTarget[]> {
  if (body.models !== undefined) {
    throw new GatewayError('INVALID_REQUEST_BODY', "a dynamic route names its own fallbacks: drop 'models'")
  }
  const routes = ctx.gateway.routes
  const route = await routes.live(name)
  // Universal steps may each name a route: their charges are settled together.
  ctx.state.routeCharges ??= []
  const charges = ctx.state.routeCharges
  const walk = await walkRoute(route, {
    input: conditionInput(ctx, body),
    random: Math.random,
    admit: (element, key) => admit(ctx, { routeName: name, step: input.step }, element, key, charges),
  })
  if (walk.stops.length === 0) {
    throw new GatewayError('ROUTE_WITHOUT_MODEL', `route '${name}' chose no model for this request`)
  }
  const keyProvider = keyProviderOf(ctx, modelProviders(route.definition))
  const targets: UpstreamTarget[] = []
  let passedOver: unknown
  for (const { element, path } of walk.stops) {
    const { provider, model, timeout, retries } = element.properties
    const policy = { ...input.policy }
    if (timeout !== undefined) policy.requestTimeoutMs = timeout
    if (retries !== undefined) policy.maxAttempts = retries + 1
    const headers = headersFor(ctx, input.headers, provider, keyProvider)
    const json = withFields(body, { model: `${provider}/${model}` })
    const taken = { name, version: route.version, path, variants: variantsOn(path, walk.variants) }
    try {
      targets.push(
        withFields(compatTarget(ctx, withFields(input, { json, headers, policy })), { route: taken }),
      )
    } catch (error) {
      // A model this instance cannot send the request to (a provider it lacks, as instances sharing a
      // route store may be configured apart; an API that cannot take the request) is passed over like a
      // model that failed. Only when no model can take it is the first refusal the answer.
      if (!(error instanceof GatewayError)) throw error
      passedOver ??= error
    }
  }
  if (targets.length === 0) throw passedOver
  return targets
}

/** The providers of every model a route may reach, whatever this request's walk drew. */
function modelProviders(route: RouteDefinition): string[] {
  return route.elements.flatMap((element) => (element.type === 'model' ? [element.properties.provider] : []))
}

function variantsOn(path: readonly string[], variants: Readonly<Record<string, string>>) {
  const on: Record<string, string> = {}
  for (const id of path) if (variants[id] !== undefined) on[id] = variants[id]
  return on
}

/** What a route's conditions and keys read: metadata, the body, headers and the principal. */
function conditionInput(ctx: GatewayContext, body: unknown): ConditionInput {
  return {
    metadata: ctx.state.metadata ?? {},
    body,
    headers: ctx.request.headers,
    principal: ctx.state.principal,
  }
}

/**
 * Counts the request at a rate element: one request, or for a budget one micro-dollar, corrected to the
 * real cost once the answer is read (`settleRoute`). A store that fails or is slow admits the request, as
 * the reference lets traffic through when it cannot evaluate a limit, and is reported.
 */
async function admit(
  ctx: GatewayContext,
  walk: Pick<RouteCharge, 'routeName' | 'step'>,
  element: RateElement,
  key: string,
  charges: RouteCharge[],
): Promise<Admitted> {
  const { limitType, limit, interval, technique } = element.properties
  const window: LimitWindow = {
    limit: limitType === 'cost' ? Math.round(limit * MICROS_PER_DOLLAR) : limit,
    windowMs: interval * 1000,
    technique,
  }
  const store = ctx.gateway.routes.limitStore
  let decision: LimitDecision
  try {
    decision = await callStore(
      () => store.consume(key, 1, window, ctx.gateway.now(), { timeoutMs: STORE_TIMEOUT_MS }),
      STORE_TIMEOUT_MS,
    )
  } catch (error) {
    notify(ctx.gateway.events, 'store:error', { id: ctx.id, store: 'limit', operation: 'consume', error })
    return { admitted: true }
  }
  if (!decision.allowed) return { admitted: false, retryAfterMs: decision.resetMs }
  charges.push({ ...walk, element, key, window, decision })
  return { admitted: true }
}

/**
 * Settles a request's rate elements once it is answered: what it counted at elements off the path to the
 * model that answered (a branch not taken, a cache hit) is given back, and a budget on that path is charged
 * the answer's cost.
 */
export function settleRoute(ctx: GatewayContext): void {
  const charges = ctx.state.routeCharges
  if (charges === undefined || charges.length === 0) return
  const answered = ctx.response !== undefined && ctx.response.status < 400 ? ctx.state.target : undefined
  const route = answered?.route
  const taken = (charge: RouteCharge) =>
    route !== undefined &&
    answered?.step === charge.step &&
    route.name === charge.routeName &&
    route.path.includes(charge.element.id)
  const usage = ctx.state.usage
  for (const charge of charges) {
    if (!taken(charge)) correct(ctx, charge, -1)
    else if (charge.element.properties.limitType === 'cost') {
      if (usage === undefined) continue
      void usage.then((used) => {
        const micros = used === undefined ? undefined : costMicros(ctx, answered, used)
        // Without a price or a usage report the reservation stands: a budget is never under-charged to 0.
        if (micros !== undefined) correct(ctx, charge, micros - 1)
      })
    }
  }
}

function correct(ctx: GatewayContext, charge: RouteCharge, delta: number): void {
  const { reservation } = charge.decision
  if (delta === 0 || reservation === undefined) return
  const store = ctx.gateway.routes.limitStore
  Promise.resolve()
    .then(() =>
      callStore(
        () =>
          store.adjust(charge.key, reservation, delta, charge.window, ctx.gateway.now(), {
            timeoutMs: STORE_TIMEOUT_MS,
          }),
        STORE_TIMEOUT_MS,
      ),
    )
    .catch((error) =>
      notify(ctx.gateway.events, 'store:error', { id: ctx.id, store: 'limit', operation: 'adjust', error }),
    )
}

/** Whether a compat body's model names a dynamic route, and which. */
export function routeNameOf(body: unknown): string | undefined {
  if (!isRecord(body) || typeof body.model !== 'string' || !body.model.startsWith(DYNAMIC_PREFIX))
    return undefined
  return body.model.slice(DYNAMIC_PREFIX.length)
}
