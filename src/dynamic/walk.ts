import { createHash } from 'node:crypto'
import { GatewayError } from '../errors.js'
import {
  type CompiledCondition,
  type ConditionInput,
  compileCondition,
  compilePath,
  type PathReader,
} from './condition.js'
import type {
  ModelElement,
  PercentageElement,
  RateElement,
  RouteDefinition,
  RouteElement,
  RouteOutput,
} from './types.js'

/** A deployed route made ready to walk: its elements by id, its conditions compiled. */
export interface CompiledRoute {
  readonly definition: RouteDefinition
  readonly version: number
  readonly start: RouteElement
  readonly byId: ReadonlyMap<string, RouteElement>
  readonly conditions: ReadonlyMap<string, CompiledCondition>
  /** The `key` paths of percentage and rate elements, parsed once rather than for every request. */
  readonly keys: ReadonlyMap<string, PathReader>
}

export function compileRoute(definition: RouteDefinition, version: number): CompiledRoute {
  const byId = new Map(definition.elements.map((element) => [element.id, element]))
  const conditions = new Map<string, CompiledCondition>()
  const keys = new Map<string, PathReader>()
  for (const element of definition.elements) {
    const at = `element '${element.id}': `
    if (element.type === 'conditional')
      conditions.set(element.id, compileCondition(element.properties.condition, at))
    const key = element.type === 'percentage' || element.type === 'rate' ? element.properties?.key : undefined
    if (key !== undefined) keys.set(element.id, compilePath(key, at))
  }
  const start = definition.elements.find((element) => element.type === 'start')
  if (start === undefined) throw new GatewayError('INVALID_ROUTE', 'a route needs a start element')
  return { definition, version, start, byId, conditions, keys }
}

/** What a walk asks of the request and of the gateway. */
export interface WalkServices {
  readonly input: ConditionInput
  /** A draw in [0, 1) for a percentage element without a key. */
  readonly random: () => number
  /** Admits the request at a rate element for the counter `key`, or says when it may be admitted again. */
  admit(element: RateElement, key: string): Promise<Admitted>
}

export type Admitted =
  | { readonly admitted: true }
  | { readonly admitted: false; readonly retryAfterMs: number }

/** A model the route asks, with the elements walked to reach it. */
export interface RouteStop {
  readonly element: ModelElement
  /** Element ids from `start` to this model, both included. */
  readonly path: readonly string[]
}

export interface RouteWalk {
  /** The models in the order they are tried: each next one is where the one before falls back to. */
  readonly stops: readonly RouteStop[]
  /** The branch drawn at each percentage element walked: element id → output name. */
  readonly variants: Readonly<Record<string, string>>
}

/**
 * Walks a route for one request, from `start`: conditions are read, percentages drawn, rate elements
 * admit or send the request to their fallback. At a model the walk records a stop and goes on along the
 * model's `fallback` output, so the whole chain of models is known before the first call: each is where the
 * one before falls back to. The walk ends at an `end`, or where an output is missing.
 *
 * A rate element over its limit with no `fallback` ends the route with 429 (code 2041) when no model was
 * reached yet; after one, it ends the chain of fallbacks there.
 */
export async function walkRoute(route: CompiledRoute, services: WalkServices): Promise<RouteWalk> {
  const stops: RouteStop[] = []
  const variants: Record<string, string> = {}
  const path: string[] = []
  let element: RouteElement | undefined = route.start
  // A saved route has no cycle; the bound keeps a store's corrupted copy from looping.
  for (let steps = 0; element !== undefined && steps <= route.byId.size; steps++) {
    path.push(element.id)
    let next: RouteOutput | undefined
    switch (element.type) {
      case 'start':
        next = element.outputs.next
        break
      case 'conditional':
        next = route.conditions.get(element.id)!.matches(services.input)
          ? element.outputs.true
          : element.outputs.false
        break
      case 'percentage': {
        const branch = pickBranch(element, draw(route, element, services))
        variants[element.id] = branch
        next = element.outputs[branch]
        break
      }
      case 'rate': {
        const decision = await services.admit(element, counterKey(route, element, services.input))
        next = decision.admitted ? element.outputs.success : element.outputs.fallback
        if (!decision.admitted && next === undefined && stops.length === 0) {
          throw overLimit(route, element, decision.retryAfterMs)
        }
        break
      }
      case 'model':
        stops.push({ element, path: [...path] })
        next = element.outputs.fallback
        break
      case 'end':
        next = undefined
        break
    }
    element = next === undefined ? undefined : route.byId.get(next.elementId)
  }
  return { stops, variants }
}

/**
 * The draw for a percentage element: random, or from its key's value, hashed with the route and element,
 * so that the same value takes the same branch on every instance and every request.
 */
function draw(route: CompiledRoute, element: PercentageElement, services: WalkServices): number {
  const value = route.keys.get(element.id)?.(services.input)
  if (value === undefined || value === null || value === '') return services.random()
  const digest = createHash('sha256')
    .update(`${route.definition.name}\0${element.id}\0${String(value)}`)
    .digest()
  // 48 bits: a uniform draw in [0, 1) with room to spare for hundredths of a percent.
  return digest.readUIntBE(0, 6) / 2 ** 48
}

/** The branch a draw in [0, 1) falls in: named branches in their order, then `else` for the rest. */
export function pickBranch(element: PercentageElement, drawn: number): string {
  let upTo = 0
  for (const name of Object.keys(element.outputs)) {
    if (name === 'else') continue
    upTo += Number.parseFloat(name) / 100
    if (drawn < upTo) return name
  }
  return 'else'
}

/** One counter per route, element and value of the element's key. */
function counterKey(route: CompiledRoute, element: RateElement, input: ConditionInput): string {
  const value = route.keys.get(element.id)?.(input)
  const part = value === undefined || value === null ? '' : String(value)
  // Hashed: a key's value comes from the request, and must not make counter keys unbounded.
  const digest = createHash('sha256').update(part).digest('base64url').slice(0, 22)
  return `route:${route.definition.name}:${element.id}:${digest}`
}

function overLimit(route: CompiledRoute, element: RateElement, retryAfterMs: number): GatewayError {
  const { limitType, limit, interval, technique } = element.properties
  const amount = limitType === 'cost' ? `cost limit ${limit} USD` : `limit ${limit} requests`
  return new GatewayError(
    'SPEND_LIMITED',
    `route '${route.definition.name}' element '${element.id}': ${amount} per ${interval}s, ${technique}`,
    { headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) } },
  )
}
