/**
 * The admin's dynamic route handlers, in the shape of the reference's management API (`/routes`,
 * `/routes/{id}/versions`, `/routes/{id}/deployments`), the route's name standing for its id.
 */
import { ROUTE_NAME } from '../dynamic/definition.js'
import type { GatewayRoutes } from '../dynamic/routes.js'
import type { RouteDeployment, RouteSummary, RouteVersion } from '../dynamic/types.js'
import { GatewayError } from '../errors.js'
import type { GatewayResponse } from '../types.js'
import { type AdminCall, jsonResponse, noContent, pathParam, queryObject, readJsonObject } from './http.js'

/** A version number in a path: a positive integer, no sign, no leading zero. */
const VERSION = /^[1-9]\d{0,14}$/

/** The query parameters of one call, refusing any other (as `GET /keys` does). */
function query(search: string, allowed: readonly string[]): Record<string, string> {
  const params = queryObject(search)
  const extra = Object.keys(params).find((key) => !allowed.includes(key))
  if (extra !== undefined) {
    throw new GatewayError('INVALID_QUERY', `unknown parameter ${JSON.stringify(extra.slice(0, 64))}`)
  }
  return params
}

function deployParam(search: string): boolean {
  const { deploy } = query(search, ['deploy'])
  if (deploy !== undefined && deploy !== 'true' && deploy !== 'false') {
    throw new GatewayError('INVALID_QUERY', 'deploy must be true or false')
  }
  return deploy === 'true'
}

function routeName(segment: string): string {
  const name = pathParam(segment)
  // Not quoted: a name that fails the pattern may be anything a client sent.
  if (!ROUTE_NAME.test(name)) {
    throw new GatewayError(
      'INVALID_QUERY',
      "a route name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
    )
  }
  return name
}

function versionParam(segment: string): number {
  const text = pathParam(segment)
  if (!VERSION.test(text)) throw new GatewayError('INVALID_QUERY', 'a version is a positive integer')
  return Number(text)
}

// Each answer copies the listed fields only, so what a store keeps besides them stays inside.
function version({ name, version, definition, createdAt }: RouteVersion): RouteVersion {
  return { name, version, definition, createdAt }
}

function deployment({ name, version, deployedAt }: RouteDeployment): RouteDeployment {
  return { name, version, deployedAt }
}

function summary(route: RouteSummary) {
  const { name, latestVersion, deployedVersion, updatedAt } = route
  // null rather than a missing key, so every listed route has the same fields.
  return { name, latestVersion, deployedVersion: deployedVersion ?? null, updatedAt }
}

function unknownRoute(name: string): GatewayError {
  return new GatewayError('NOT_FOUND', `no route named '${name}'`)
}

/** Saves a definition, deploying it as well with `deploy=true`. */
async function saveDefinition(
  routes: GatewayRoutes,
  definition: Record<string, unknown>,
  deploy: boolean,
): Promise<GatewayResponse> {
  const saved = await routes.save(definition)
  if (!deploy) return jsonResponse(201, { version: version(saved) })
  const live = await routes.deploy(saved.name, saved.version)
  // Only a delete racing this call leaves nothing to deploy.
  if (live === undefined) throw unknownRoute(saved.name)
  return jsonResponse(201, { version: version(saved), deployment: deployment(live) })
}

async function listRoutes(routes: GatewayRoutes, { request }: AdminCall): Promise<GatewayResponse> {
  query(request.search, [])
  const listed = await routes.list()
  return jsonResponse(200, { routes: listed.map(summary) })
}

async function createRoute(routes: GatewayRoutes, { request }: AdminCall): Promise<GatewayResponse> {
  const deploy = deployParam(request.search)
  return saveDefinition(routes, await readJsonObject(request), deploy)
}

async function getRoute(routes: GatewayRoutes, { request, params }: AdminCall): Promise<GatewayResponse> {
  const name = routeName(params[0]!)
  query(request.search, [])
  const [latest] = await routes.versions(name)
  if (latest === undefined) throw unknownRoute(name)
  const live = await routes.deployed(name)
  const deployed =
    live === undefined
      ? null
      : { version: live.version, deployedAt: live.deployedAt, definition: live.definition }
  return jsonResponse(200, { name, latestVersion: latest.version, deployed })
}

async function deleteRoute(routes: GatewayRoutes, { request, params }: AdminCall): Promise<GatewayResponse> {
  const name = routeName(params[0]!)
  query(request.search, [])
  if (!(await routes.delete(name))) throw unknownRoute(name)
  return noContent()
}

async function listVersions(routes: GatewayRoutes, { request, params }: AdminCall): Promise<GatewayResponse> {
  const name = routeName(params[0]!)
  query(request.search, [])
  const versions = await routes.versions(name)
  if (versions.length === 0) throw unknownRoute(name)
  return jsonResponse(200, { versions: versions.map(version) })
}

async function createVersion(
  routes: GatewayRoutes,
  { request, params }: AdminCall,
): Promise<GatewayResponse> {
  const name = routeName(params[0]!)
  const deploy = deployParam(request.search)
  const body = await readJsonObject(request)
  if (body.name !== undefined && body.name !== name) {
    // The body's name is not quoted: it is whatever the client sent.
    throw new GatewayError('INVALID_ROUTE', `'name' must be '${name}', the route in the path, or left out`)
  }
  return saveDefinition(routes, { ...body, name }, deploy)
}

async function getVersion(routes: GatewayRoutes, { request, params }: AdminCall): Promise<GatewayResponse> {
  const name = routeName(params[0]!)
  const number = versionParam(params[1]!)
  query(request.search, [])
  const found = await routes.version(name, number)
  if (found === undefined) throw new GatewayError('NOT_FOUND', `route '${name}' has no version ${number}`)
  return jsonResponse(200, version(found))
}

async function getDeployment(
  routes: GatewayRoutes,
  { request, params }: AdminCall,
): Promise<GatewayResponse> {
  const name = routeName(params[0]!)
  query(request.search, [])
  const live = await routes.deployed(name)
  if (live !== undefined) return jsonResponse(200, { deployment: deployment(live) })
  // A store answers alike for a route never deployed and one that does not exist; only the first is null.
  if ((await routes.versions(name)).length === 0) throw unknownRoute(name)
  return jsonResponse(200, { deployment: null })
}

async function deploy(routes: GatewayRoutes, { request, params }: AdminCall): Promise<GatewayResponse> {
  const name = routeName(params[0]!)
  query(request.search, [])
  const { version: wanted, ...extra } = await readJsonObject(request)
  if (!Number.isSafeInteger(wanted) || (wanted as number) < 1 || Object.keys(extra).length > 0) {
    throw new GatewayError(
      'INVALID_REQUEST_BODY',
      'expected { "version": <a positive integer> } and nothing else',
    )
  }
  const number = wanted as number
  const live = await routes.deploy(name, number)
  if (live === undefined) throw new GatewayError('NOT_FOUND', `route '${name}' has no version ${number}`)
  return jsonResponse(201, { deployment: deployment(live) })
}

type Handler = (routes: GatewayRoutes, call: AdminCall) => Promise<GatewayResponse>

interface RoutePath {
  readonly path: string
  readonly methods: Record<string, Handler>
}

/** The dynamic route paths and their handlers by method; `:name` is the route's name. */
export const ROUTE_PATHS: readonly RoutePath[] = [
  { path: '/routes', methods: { GET: listRoutes, POST: createRoute } },
  { path: '/routes/:name', methods: { GET: getRoute, DELETE: deleteRoute } },
  { path: '/routes/:name/versions', methods: { GET: listVersions, POST: createVersion } },
  { path: '/routes/:name/versions/:version', methods: { GET: getVersion } },
  { path: '/routes/:name/deployments', methods: { GET: getDeployment, POST: deploy } },
]
