import type {
  RouteDefinition,
  RouteDeployment,
  RouteStore,
  RouteSummary,
  RouteVersion,
} from '../dynamic/types.js'

interface StoredRoute {
  /** Oldest first, so version n is at index n - 1. */
  readonly versions: RouteVersion[]
  deployment: RouteDeployment | undefined
  updatedAt: number
}

/**
 * A {@link RouteStore} in process memory, for tests and single-instance gateways: every route, version and
 * deployment is lost on restart, and other instances never see them. Definitions are copied on the way in
 * and on the way out, so neither the caller that saved one nor one that read it can change what is stored.
 *
 * @example
 * const routes = createMemoryRouteStore()
 * const { version } = await routes.save(definition, Date.now())
 * await routes.deploy(definition.name, version, Date.now())
 */
export function createMemoryRouteStore(): RouteStore {
  const routes = new Map<string, StoredRoute>()

  return {
    save(definition, now) {
      const name = definition.name
      let route = routes.get(name)
      if (route === undefined) {
        route = { versions: [], deployment: undefined, updatedAt: now }
        routes.set(name, route)
      }
      const saved: RouteVersion = {
        name,
        version: route.versions.length + 1,
        definition: copy(definition),
        createdAt: now,
      }
      route.versions.push(saved)
      route.updatedAt = Math.max(route.updatedAt, now)
      return withCopy(saved)
    },

    versions(name) {
      const route = routes.get(name)
      return route === undefined ? [] : route.versions.map(withCopy).reverse()
    },

    version(name, version) {
      const saved = find(name, version)
      return saved === undefined ? undefined : withCopy(saved)
    },

    deploy(name, version, now) {
      const route = routes.get(name)
      if (route === undefined || find(name, version) === undefined) return undefined
      route.deployment = { name, version, deployedAt: now }
      route.updatedAt = Math.max(route.updatedAt, now)
      return { ...route.deployment }
    },

    deployed(name) {
      const deployment = routes.get(name)?.deployment
      if (deployment === undefined) return undefined
      const saved = find(name, deployment.version)
      return saved === undefined ? undefined : { ...deployment, definition: copy(saved.definition) }
    },

    list() {
      const summaries: RouteSummary[] = []
      for (const [name, route] of routes) {
        summaries.push({
          name,
          latestVersion: route.versions.length,
          deployedVersion: route.deployment?.version,
          updatedAt: route.updatedAt,
        })
      }
      // Code-unit order, as the other stores list (SQL `COLLATE "C"`).
      return summaries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    },

    delete(name) {
      return routes.delete(name)
    },
  }

  function find(name: string, version: number): RouteVersion | undefined {
    if (!Number.isSafeInteger(version) || version < 1) return undefined
    return routes.get(name)?.versions[version - 1]
  }
}

function copy(definition: RouteDefinition): RouteDefinition {
  return structuredClone(definition)
}

function withCopy(saved: RouteVersion): RouteVersion {
  return { ...saved, definition: copy(saved.definition) }
}
