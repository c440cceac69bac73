import { isDeepStrictEqual } from 'node:util'
import { GatewayError } from '../errors.js'
import { type GatewayEmitter, notify } from '../events.js'
import type { ResolvedOptions } from '../options.js'
import { callStore } from '../stores/call.js'
import { createMemoryLimitStore } from '../stores/memory-limits.js'
import { createMemoryRouteStore } from '../stores/memory-routes.js'
import type { LimitStore } from '../stores/types.js'
import { parseRouteDefinition, ROUTE_NAME } from './definition.js'
import type { RouteDefinition, RouteDeployment, RouteStore, RouteSummary, RouteVersion } from './types.js'
import { type CompiledRoute, compileRoute } from './walk.js'

export interface DynamicRoutesSettings {
  readonly store: RouteStore
  /** Where rate and budget elements count. */
  readonly limitStore: LimitStore
  /** How long a deployed route is served from memory before the store is asked again. */
  readonly refreshMs: number
  /** The longest wait for one store call: past it the call counts as failed. */
  readonly storeTimeoutMs: number
  /** Routes defined in code: saved and deployed when the store's live version differs. */
  readonly definitions: readonly unknown[]
}

/** What a gateway's routes offer its host and the admin API; see `DynamicRoutes`. */
export type GatewayRoutes = Pick<
  DynamicRoutes,
  'save' | 'deploy' | 'versions' | 'version' | 'deployed' | 'list' | 'delete'
>

/**
 * How many names of routes found missing an instance remembers. Any caller can name any route, so the
 * misses are bounded: past this many, the oldest is forgotten (and read from the store again if named).
 */
const MAX_ABSENT = 1024

interface Cached {
  readonly route: CompiledRoute | undefined
  readonly fetchedAt: number
}

/**
 * The routes of one gateway: saving (validated), versions, deployments, and the live version of each route
 * for the requests that name it, read from the store again at most every `refreshMs`, so every instance
 * serves a deployment within that long. When the store fails, or takes over `storeTimeoutMs` (a stalled
 * store is a failed one: requests must not wait on it), the last version read is served on (and the failure
 * reported); a route never read answers 503 (code 2128).
 */
export class DynamicRoutes {
  readonly #settings: DynamicRoutesSettings
  readonly #knownProvider: (id: string) => boolean
  readonly #now: () => number
  readonly #events: GatewayEmitter
  readonly #cache = new Map<string, Cached>()
  // The names in `#cache` whose route was missing, oldest first: see MAX_ABSENT.
  readonly #absent = new Set<string>()
  readonly #loading = new Map<string, Promise<CompiledRoute | undefined>>()
  // Bumped by every deploy and delete: a read begun before one must not cache what it read, or this
  // instance would serve the old version until the next refresh, after the admin was told it was live.
  readonly #changes = new Map<string, number>()
  #seeded: Promise<void> | undefined
  #servedBudget = false

  constructor(
    settings: DynamicRoutesSettings,
    services: { knownProvider: (id: string) => boolean; now: () => number; events: GatewayEmitter },
  ) {
    this.#settings = settings
    this.#knownProvider = services.knownProvider
    this.#now = services.now
    this.#events = services.events
    // Checked at once, so a wrong route in code fails at startup rather than on its first request.
    for (const definition of settings.definitions) parseRouteDefinition(definition, this.#knownProvider)
  }

  get limitStore(): LimitStore {
    return this.#settings.limitStore
  }

  /**
   * Whether a route this instance served has a budget (a `cost` rate element): its answers' usage is then
   * watched, since a budget charges it. Known only from the routes read, as routes may be deployed at any
   * time; a route's first request is walked after it was read, so it is watched too.
   */
  get watchesUsage(): boolean {
    return this.#servedBudget
  }

  /** The deployed version of `name`, ready to walk. */
  async live(name: string): Promise<CompiledRoute> {
    // No route can be saved under such a name: refused without asking the store, and not echoed back whole.
    if (!ROUTE_NAME.test(name)) {
      throw new GatewayError('ROUTE_NOT_FOUND', "a route's name is 1 to 64 letters, digits, '.', '_' or '-'")
    }
    await this.#seed()
    const now = this.#now()
    const cached = this.#cache.get(name)
    const fresh = cached !== undefined && now - cached.fetchedAt < this.#settings.refreshMs
    const route = fresh ? cached.route : await this.#load(name, cached)
    if (route === undefined) {
      throw new GatewayError('ROUTE_NOT_FOUND', `no route named '${name}' is deployed`)
    }
    return route
  }

  /** Validates a definition and saves it as the route's next version; nothing is deployed. */
  async save(raw: unknown): Promise<RouteVersion> {
    const definition = parseRouteDefinition(raw, this.#knownProvider)
    await this.#seed()
    return this.#store('save', () => this.#settings.store.save(definition, this.#now()))
  }

  async deploy(name: string, version: number): Promise<RouteDeployment | undefined> {
    await this.#seed()
    const deployment = await this.#store('deploy', () =>
      this.#settings.store.deploy(name, version, this.#now()),
    )
    // This instance serves it at once; the others within `refreshMs`.
    this.#forget(name)
    return deployment
  }

  async versions(name: string): Promise<RouteVersion[]> {
    await this.#seed()
    return this.#store('versions', () => this.#settings.store.versions(name))
  }

  async version(name: string, version: number): Promise<RouteVersion | undefined> {
    await this.#seed()
    return this.#store('version', () => this.#settings.store.version(name, version))
  }

  async deployed(name: string): Promise<(RouteDeployment & { definition: RouteDefinition }) | undefined> {
    await this.#seed()
    return this.#store('deployed', () => this.#settings.store.deployed(name))
  }

  async list(): Promise<RouteSummary[]> {
    await this.#seed()
    return this.#store('list', () => this.#settings.store.list())
  }

  async delete(name: string): Promise<boolean> {
    await this.#seed()
    const deleted = await this.#store('delete', () => this.#settings.store.delete(name))
    this.#forget(name)
    return deleted
  }

  /** Drops the copy of a route that changed, and any read begun before the change, which may predate it. */
  #forget(name: string): void {
    this.#changes.set(name, (this.#changes.get(name) ?? 0) + 1)
    this.#cache.delete(name)
    this.#absent.delete(name)
    this.#loading.delete(name)
  }

  /** Keeps what a read found; a miss among at most MAX_ABSENT, the oldest let go first. */
  #cached(name: string, route: CompiledRoute | undefined): void {
    this.#cache.set(name, { route, fetchedAt: this.#now() })
    this.#absent.delete(name)
    if (route !== undefined) return
    this.#absent.add(name)
    if (this.#absent.size > MAX_ABSENT) {
      const [oldest] = this.#absent
      this.#absent.delete(oldest!)
      this.#cache.delete(oldest!)
    }
  }

  #load(name: string, stale: Cached | undefined): Promise<CompiledRoute | undefined> {
    // Concurrent requests for a route whose copy expired wait on one read.
    let loading = this.#loading.get(name)
    if (loading !== undefined) return loading
    const changes = this.#changes.get(name)
    // What the read found is kept only when the route did not change meanwhile.
    const keep = (route: CompiledRoute | undefined) => {
      if (this.#changes.get(name) === changes) this.#cached(name, route)
    }
    loading = (async () => {
      try {
        const deployed = await this.#call(() => this.#settings.store.deployed(name))
        const route =
          deployed === undefined
            ? undefined
            : stale?.route !== undefined &&
                stale.route.version === deployed.version &&
                isDeepStrictEqual(stale.route.definition, deployed.definition)
              ? stale.route
              : compileRoute(deployed.definition, deployed.version)
        if (route !== undefined && hasBudget(route.definition)) this.#servedBudget = true
        keep(route)
        return route
      } catch (error) {
        this.#report('deployed', error)
        if (stale === undefined)
          throw new GatewayError('ROUTE_STORE_UNAVAILABLE', undefined, { cause: error })
        // Served on as it was; asked again after the next interval.
        keep(stale.route)
        return stale.route
      } finally {
        if (this.#loading.get(name) === loading) this.#loading.delete(name)
      }
    })()
    this.#loading.set(name, loading)
    return loading
  }

  /** One store call, bounded: a late answer is dropped (a save or a deploy may still have happened). */
  #call<T>(call: () => T | Promise<T>): T | Promise<T> {
    return callStore(call, this.#settings.storeTimeoutMs)
  }

  async #store<T>(operation: string, call: () => T | Promise<T>): Promise<T> {
    try {
      return await this.#call(call)
    } catch (error) {
      this.#report(operation, error)
      throw new GatewayError('ROUTE_STORE_UNAVAILABLE', undefined, { cause: error })
    }
  }

  #report(operation: string, error: unknown): void {
    notify(this.#events, 'store:error', { store: 'routes', operation, error })
  }

  /** Saves and deploys the routes defined in code whose live version differs, once. */
  #seed(): Promise<void> {
    this.#seeded ??= (async () => {
      const { store, definitions } = this.#settings
      for (const raw of definitions) {
        const definition = parseRouteDefinition(raw, this.#knownProvider)
        const live = await this.#call(() => store.deployed(definition.name))
        if (live !== undefined && isDeepStrictEqual(live.definition, definition)) continue
        const saved = await this.#call(() => store.save(definition, this.#now()))
        await this.#call(() => store.deploy(saved.name, saved.version, this.#now()))
      }
    })().catch((error) => {
      // Tried again by the next call.
      this.#seeded = undefined
      this.#report('seed', error)
      throw new GatewayError('ROUTE_STORE_UNAVAILABLE', undefined, { cause: error })
    })
    return this.#seeded
  }
}

function hasBudget(definition: RouteDefinition): boolean {
  return definition.elements.some(
    (element) => element.type === 'rate' && element.properties.limitType === 'cost',
  )
}

/**
 * The gateway's routes from its options: the route store and the limit store given, else in memory (handed
 * to `own`, so the gateway closes what it made).
 */
export function createDynamicRoutes(
  options: ResolvedOptions,
  services: { providers: ReadonlyMap<string, unknown>; events: GatewayEmitter },
  own: <T extends { close?(): unknown }>(store: T) => T = (store) => store,
): DynamicRoutes {
  const { routes } = options
  return new DynamicRoutes(
    {
      store: routes.store ?? own(createMemoryRouteStore()),
      limitStore: routes.limitStore ?? own(createMemoryLimitStore()),
      refreshMs: routes.refreshMs,
      storeTimeoutMs: routes.storeTimeoutMs,
      definitions: routes.definitions,
    },
    { knownProvider: (id) => services.providers.has(id), now: options.now, events: services.events },
  )
}
