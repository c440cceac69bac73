/**
 * Dynamic routes, in the reference's element schema: a named graph of elements, each with its properties
 * and its outputs, an output naming the element it leads to. A request addresses a route as the model
 * `dynamic/{name}`; the graph decides which model answers it.
 */
export interface RouteDefinition {
  readonly name: string
  readonly elements: readonly RouteElement[]
}

/** An output: the element it leads to. */
export interface RouteOutput {
  readonly elementId: string
}

export type RouteElement =
  | StartElement
  | ConditionalElement
  | PercentageElement
  | RateElement
  | ModelElement
  | EndElement

interface ElementBase {
  readonly id: string
  /** Output name → where it leads. */
  readonly outputs: Readonly<Record<string, RouteOutput>>
}

/** The entry point, exactly one per route: output `next`. */
export interface StartElement extends ElementBase {
  readonly type: 'start'
}

/** A filter over the request (see `Condition`): output `true` when it matches, `false` otherwise. */
export interface ConditionalElement extends ElementBase {
  readonly type: 'conditional'
  readonly properties: { readonly condition: Condition }
}

/**
 * A split: outputs named by percentages (`"10%"`, `"50%"`; at most five, summing to at most 100) and an
 * optional `else` taking the rest. Random per request, or sticky by `key` (`principal.id`,
 * `metadata.user_id`): the same key value lands in the same branch on every instance.
 */
export interface PercentageElement extends ElementBase {
  readonly type: 'percentage'
  readonly properties?: { readonly key?: string | undefined } | undefined
}

/**
 * A rate or budget limit: `count` requests or `cost` in USD per `interval` seconds, one counter per value
 * of `key` (a path as in conditions; none: one counter for the route). Output `success` under the limit,
 * `fallback` over it; with no `fallback` the request ends in 429 (code 2041).
 */
export interface RateElement extends ElementBase {
  readonly type: 'rate'
  readonly properties: {
    readonly limitType: 'count' | 'cost'
    readonly key?: string | undefined
    readonly limit: number
    readonly interval: number
    readonly technique: 'fixed' | 'sliding'
  }
}

/**
 * A model to ask: `provider` and `model` as on `/compat`, with an optional first-byte `timeout` (ms) and
 * `retries` (attempts after the first). Output `success` once it answered (usually to `end`), `fallback`
 * when it failed after its retries.
 */
export interface ModelElement extends ElementBase {
  readonly type: 'model'
  readonly properties: {
    readonly provider: string
    readonly model: string
    readonly timeout?: number | undefined
    readonly retries?: number | undefined
  }
}

/** Ends the route: the last model's answer, or an error when none answered. */
export interface EndElement extends ElementBase {
  readonly type: 'end'
}

/**
 * A MongoDB-style filter over the request: paths (`metadata.plan`, `body.temperature`, `headers.x-tier`,
 * `principal.id`) mapped to a value (equality) or operators (`$eq $ne $gt $gte $lt $lte $in $nin $exists`),
 * combined with `$and`, `$or` (lists of filters) and `$not` (one filter).
 */
export type Condition = { readonly [pathOrOperator: string]: unknown }

/** One saved version of a route. Versions count from 1 per route name. */
export interface RouteVersion {
  readonly name: string
  readonly version: number
  readonly definition: RouteDefinition
  /** Milliseconds since the epoch. */
  readonly createdAt: number
}

/** The version of a route that is live, and since when. */
export interface RouteDeployment {
  readonly name: string
  readonly version: number
  /** Milliseconds since the epoch. */
  readonly deployedAt: number
}

/** A route as listed: its latest saved version and its deployed one (none until deployed). */
export interface RouteSummary {
  readonly name: string
  readonly latestVersion: number
  readonly deployedVersion: number | undefined
  readonly updatedAt: number
}

type MaybePromise<T> = T | Promise<T>

/**
 * Where routes, their versions and their deployments live: in memory for one instance, or in Redis or
 * PostgreSQL shared by all instances (each instance reads the deployed version again after a bounded delay).
 * Definitions are validated before they reach a store; a store keeps what it is given.
 */
export interface RouteStore {
  /** Saves `definition` as the next version of its route (1 for a new route); nothing is deployed. */
  save(definition: RouteDefinition, now: number): MaybePromise<RouteVersion>
  /** Every saved version of a route, newest first; empty for an unknown route. */
  versions(name: string): MaybePromise<RouteVersion[]>
  version(name: string, version: number): MaybePromise<RouteVersion | undefined>
  /**
   * Makes a saved version live (deploying an older one is a rollback). `undefined` when the route or the
   * version does not exist.
   */
  deploy(name: string, version: number, now: number): MaybePromise<RouteDeployment | undefined>
  /** The live version with its definition; `undefined` when the route is unknown or was never deployed. */
  deployed(name: string): MaybePromise<(RouteDeployment & { definition: RouteDefinition }) | undefined>
  /** Every route, by name. */
  list(): MaybePromise<RouteSummary[]>
  /** Deletes a route with all its versions; `false` when it did not exist. */
  delete(name: string): MaybePromise<boolean>
  /** Releases what the store holds; called by the gateway only on stores it made. */
  close?(): MaybePromise<void>
}
