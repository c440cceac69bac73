import type { GatewayRoutes } from '../dynamic/routes.js'
import { GatewayError } from '../errors.js'
import type { KeyRing } from '../keys/key-ring.js'
import { assertSlugs, type MaskedKey } from '../keys/types.js'
import { parseAnalyticsQuery, parseLogPatch, parseLogQuery, parseLogSelection } from '../logs/query.js'
import { fromReferenceFilters } from '../logs/reference-filters.js'
import type { LogSelection, LogStore } from '../logs/types.js'
import type { GatewayMetrics } from '../metrics/index.js'
import type { GatewayResponse } from '../types.js'
import { ROUTE_PATHS } from './dynamic-routes.js'
import { type AdminCall, jsonResponse, noContent, pathParam, queryObject, readJsonObject } from './http.js'
import { getSettings, type SettingsView } from './settings.js'

export type { AdminCall } from './http.js'

type Handler<Store> = (store: Store, call: AdminCall) => Promise<GatewayResponse>

/** A path the admin serves, the store its handlers need, and a handler per method. */
export type Route =
  | { readonly path: string; readonly store: 'logs'; readonly methods: Record<string, Handler<LogStore>> }
  | { readonly path: string; readonly store: 'keys'; readonly methods: Record<string, Handler<KeyRing>> }
  | {
      readonly path: string
      readonly store: 'routes'
      readonly methods: Record<string, Handler<GatewayRoutes>>
    }
  | {
      readonly path: string
      readonly store: 'settings'
      readonly methods: Record<string, Handler<SettingsView>>
    }
  | {
      readonly path: string
      readonly store: 'metrics'
      readonly methods: Record<string, Handler<GatewayMetrics>>
    }

/**
 * The query string as the log parsers take it, with filters in the reference's shape
 * (`{ key, operator, value: [v] }`) read as native ones.
 */
function logQueryObject(search: string, what: string): Record<string, unknown> {
  const query: Record<string, unknown> = queryObject(search)
  if (query.filters !== undefined) query.filters = fromReferenceFilters(query.filters, what)
  return query
}

/** The gateway's metrics in Prometheus's text format, for a scraper holding an admin token. */
async function getMetrics(metrics: GatewayMetrics): Promise<GatewayResponse> {
  const body = await metrics.text()
  return {
    status: 200,
    headers: {
      'content-type': metrics.contentType,
      'content-length': String(Buffer.byteLength(body)),
      'cache-control': 'no-store',
    },
    body,
  }
}

async function listLogs(logs: LogStore, { request }: AdminCall): Promise<GatewayResponse> {
  const page = await logs.list(parseLogQuery(logQueryObject(request.search, 'log query')))
  return jsonResponse(200, { records: page.records, nextCursor: page.nextCursor ?? null })
}

async function getLog(logs: LogStore, { params }: AdminCall): Promise<GatewayResponse> {
  const record = await logs.get(pathParam(params[0]!))
  if (record === undefined) throw new GatewayError('NOT_FOUND', 'no log has this id')
  return jsonResponse(200, record)
}

async function patchLog(logs: LogStore, { request, params }: AdminCall): Promise<GatewayResponse> {
  const id = pathParam(params[0]!)
  const patch = parseLogPatch(await readJsonObject(request))
  const record = await logs.patch(id, patch)
  if (record === undefined) throw new GatewayError('NOT_FOUND', 'no log has this id')
  return jsonResponse(200, record)
}

function selectsEverything(selection: LogSelection): boolean {
  return !selection.filters?.length && selection.from === undefined && selection.to === undefined
}

async function deleteLogs(logs: LogStore, { request }: AdminCall): Promise<GatewayResponse> {
  const { all, ...rest } = logQueryObject(request.search, 'log selection')
  if (all !== undefined && all !== 'true' && all !== 'false') {
    throw new GatewayError('INVALID_QUERY', 'all must be true or false')
  }
  const selection = parseLogSelection(rest)
  // A forgotten filter would otherwise wipe every log; deleting everything has to be asked for by name.
  if (all !== 'true' && selectsEverything(selection)) {
    throw new GatewayError(
      'INVALID_QUERY',
      'refusing to delete every log: give filters, from or to, or all=true',
    )
  }
  return jsonResponse(200, { deleted: await logs.delete(selection) })
}

async function analytics(logs: LogStore, { request }: AdminCall): Promise<GatewayResponse> {
  const rows = await logs.analytics(parseAnalyticsQuery(logQueryObject(request.search, 'analytics query')))
  return jsonResponse(200, { rows })
}

// Copies the listed fields only, so a key ring that returned more could still not leak a secret here.
function masked(key: MaskedKey): MaskedKey {
  const { provider, alias, hint, keyId, createdAt, updatedAt } = key
  return { provider, alias, hint, keyId, createdAt, updatedAt }
}

async function listKeys(keys: KeyRing, { request }: AdminCall): Promise<GatewayResponse> {
  const { provider, ...unknown } = queryObject(request.search)
  const extra = Object.keys(unknown)
  if (extra.length > 0) {
    throw new GatewayError('INVALID_QUERY', `unknown parameter ${JSON.stringify(extra[0]!.slice(0, 64))}`)
  }
  const listed = await keys.listKeys(provider)
  return jsonResponse(200, { keys: listed.map(masked) })
}

function keyParams(params: readonly string[]): { provider: string; alias: string } {
  const provider = pathParam(params[0]!)
  const alias = pathParam(params[1]!)
  assertSlugs(provider, alias)
  return { provider, alias }
}

async function putKey(keys: KeyRing, { request, params }: AdminCall): Promise<GatewayResponse> {
  const { provider, alias } = keyParams(params)
  const { secret, ...extra } = await readJsonObject(request)
  if (typeof secret !== 'string' || Object.keys(extra).length > 0) {
    throw new GatewayError('INVALID_REQUEST_BODY', 'expected { "secret": "<provider key>" } and nothing else')
  }
  const existed = (await keys.aliases(provider)).includes(alias)
  const key = await keys.putSecret(provider, alias, secret)
  return jsonResponse(existed ? 200 : 201, masked(key))
}

async function deleteKey(keys: KeyRing, { params }: AdminCall): Promise<GatewayResponse> {
  const { provider, alias } = keyParams(params)
  if (!(await keys.deleteSecret(provider, alias))) {
    throw new GatewayError('NOT_FOUND', `no stored key ${provider}/${alias}`)
  }
  return noContent()
}

/** Every admin route; `:name` segments are parameters, handed to the handlers in order. */
export const ROUTES: readonly Route[] = [
  { path: '/logs', store: 'logs', methods: { GET: listLogs, DELETE: deleteLogs } },
  { path: '/logs/:id', store: 'logs', methods: { GET: getLog, PATCH: patchLog } },
  { path: '/analytics', store: 'logs', methods: { GET: analytics } },
  { path: '/keys', store: 'keys', methods: { GET: listKeys } },
  { path: '/keys/:provider/:alias', store: 'keys', methods: { PUT: putKey, DELETE: deleteKey } },
  ...ROUTE_PATHS.map(({ path, methods }) => ({ path, store: 'routes' as const, methods })),
  { path: '/settings', store: 'settings', methods: { GET: getSettings } },
  { path: '/metrics', store: 'metrics', methods: { GET: getMetrics } },
]

const PATTERNS = ROUTES.map((route) => ({ route, parts: route.path.split('/').slice(1) }))

function matchParts(parts: readonly string[], segments: readonly string[]): string[] | undefined {
  if (parts.length !== segments.length) return undefined
  const params: string[] = []
  for (const [index, part] of parts.entries()) {
    const segment = segments[index]!
    if (part.startsWith(':')) params.push(segment)
    else if (part !== segment) return undefined
  }
  return params
}

/**
 * The route a path addresses and its parameters, or undefined when the path is not the admin's. Empty
 * segments (`/logs/`, `//keys`) match nothing.
 *
 * @example
 * matchRoute('/keys/openai/default')?.params // ['openai', 'default']
 */
export function matchRoute(path: string): { route: Route; params: string[] } | undefined {
  const segments = path.split('/').slice(1)
  if (segments.length === 0 || segments.includes('')) return undefined
  for (const { route, parts } of PATTERNS) {
    const params = matchParts(parts, segments)
    if (params !== undefined) return { route, params }
  }
  return undefined
}
