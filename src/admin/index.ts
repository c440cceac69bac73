/**
 * The admin API: request logs (list, read, feedback, delete, analytics), stored provider keys, dynamic
 * routes (save, versions, deploy, roll back) and settings over HTTP, framework-free like the gateway, with
 * the dashboard that uses them at its root (`./dashboard/`). Adapters mount it with `aiGatewayAdmin`.
 */
import { z } from 'zod'
import type { GatewayRoutes } from '../dynamic/routes.js'
import { GatewayError, GatewayOptionsError, KeyStoreError, LogQueryError, renderError } from '../errors.js'
import { isRecord } from '../json.js'
import type { KeyRing } from '../keys/key-ring.js'
import type { LogStore } from '../logs/types.js'
import type { GatewayMetrics } from '../metrics/index.js'
import { PROVIDERS } from '../providers/catalog.js'
import type { GatewayRequest, GatewayResponse } from '../types.js'
import { admit } from './access.js'
import { type CheckAdminToken, createAuthorizer, createTokenCheck, type VerifyAdminToken } from './auth.js'
import { createDashboard, type Dashboard } from './dashboard/index.js'
import { type AdminCall, matchRoute, type Route } from './routes.js'
import { withSecurityHeaders } from './security-headers.js'
import { createSessionStore, type SessionStore } from './sessions.js'
import type { AdminDescription, SettingsSource, SettingsView } from './settings.js'

export type { VerifyAdminToken } from './auth.js'
export { CSRF_HEADER } from './browser-contract.js'
export { MAX_ADMIN_BODY_BYTES } from './http.js'
export type { SettingsSource } from './settings.js'

/** How the dashboard served at the admin's mount behaves; see `AdminOptions.dashboard`. */
export interface DashboardOptions {
  /** How long a login lasts, in seconds (60 to 30 days); 8 hours by default. Logout ends it sooner. */
  sessionTtl?: number
  /**
   * The session cookie's `Secure` attribute. By default it is set when the request came over https (the
   * socket's own TLS, or `x-forwarded-proto: https` from a proxy in front); `true` sets it always.
   */
  secureCookie?: boolean
}

/**
 * What the admin serves and who may call it. Without `token` and `verify` it is open to anyone who reaches
 * it: put your own authentication in front then.
 */
export interface AdminOptions {
  /** Serves `/logs` and `/analytics`; without it those answer 404. */
  logs?: LogStore | undefined
  /** Serves `/keys`; without it those answer 404. */
  keys?: KeyRing | undefined
  /** Serves `/routes` (give `gateway.routes`); without it those answer 404. */
  routes?: GatewayRoutes | undefined
  /** Serves `GET /metrics` in Prometheus's format (give `gateway.metrics`); without it, 404. */
  metrics?: GatewayMetrics | undefined
  /**
   * Accepted `authorization: Bearer <token>` values, each at least 16 printable ASCII characters. Several
   * tokens allow a rotation without downtime.
   */
  token?: string | readonly string[]
  /**
   * Checks a bearer token that `token` does not hold (or one typed into the dashboard's login page, with
   * the login request); only `true` admits. A throw rejects `handle()`.
   */
  verify?: VerifyAdminToken
  /**
   * The dashboard at the mount's root (`GET /`): on by default, `false` leaves `/` to the host and serves
   * the JSON API only. With `token` or `verify` it asks for a login first.
   */
  dashboard?: boolean | DashboardOptions
  /**
   * What the Settings page and `GET /settings` show, masked (keys, tokens, passwords and connection
   * strings never leave): typically `() => parseOptions(gatewayOptions)`, the gateway's options with
   * their defaults.
   */
  settings?: SettingsSource
}

/**
 * The admin API, mounted by an adapter or driven directly through `handle`.
 *
 * @example
 * const admin = createAdmin({ logs, keys, routes: gateway.routes, token: process.env.GATEWAY_ADMIN_TOKEN! })
 * const response = await admin.handle(request) // undefined: not an admin path
 */
export interface Admin {
  /**
   * Answers an admin request; resolves `undefined` for paths the admin does not serve (call the host's
   * next handler). Refusals and invalid input resolve as error responses; errors it cannot classify (a
   * failing log store, a throwing `verify`, a bug) reject, for the host's error handling.
   */
  handle(request: GatewayRequest): Promise<GatewayResponse | undefined>
}

const kAdmin = Symbol.for('ai-gateway-middleware.admin')

const hasMethods =
  (...names: string[]) =>
  (value: unknown) =>
    typeof value === 'object' &&
    value !== null &&
    names.every((name) => typeof (value as Record<string, unknown>)[name] === 'function')

// No message here may quote a value: a token is a secret even when it is the wrong type.
const tokenSchema = z
  .string({ error: 'expected a string' })
  .regex(/^[\x21-\x7e]{16,}$/, 'expected at least 16 printable ASCII characters without spaces')

const adminOptionsSchema = z.strictObject({
  logs: z
    .custom<LogStore>(
      hasMethods('get', 'list', 'patch', 'delete', 'analytics'),
      'expected a LogStore (createMemoryLogStore)',
    )
    .optional(),
  keys: z
    .custom<KeyRing>(
      hasMethods('listKeys', 'putSecret', 'deleteSecret', 'aliases'),
      'expected a KeyRing (createKeyRing)',
    )
    .optional(),
  routes: z
    .custom<GatewayRoutes>(
      hasMethods('save', 'deploy', 'versions', 'version', 'deployed', 'list', 'delete'),
      "expected a gateway's routes (gateway.routes)",
    )
    .optional(),
  token: z.union([tokenSchema, z.array(tokenSchema).min(1, 'expected at least one token')]).optional(),
  verify: z
    .custom<VerifyAdminToken>((value) => typeof value === 'function', 'expected a function')
    .optional(),
  dashboard: z
    .union([
      z.boolean(),
      z.strictObject({
        sessionTtl: z
          .number()
          .int()
          .min(60)
          .max(30 * 86_400)
          .optional(),
        secureCookie: z.boolean().optional(),
      }),
    ])
    .default(true),
  settings: z
    .custom<SettingsSource>((value) => typeof value === 'function', 'expected a function')
    .optional(),
  metrics: z
    .custom<GatewayMetrics>(hasMethods('text'), 'expected gateway.metrics (a gateway made with `metrics` on)')
    .optional(),
})

const DEFAULT_SESSION_TTL = 8 * 3600

// `token: process.env.ADMIN_TOKEN` with the variable unset must not quietly leave the admin open.
function refuseExplicitUndefined(options: unknown): void {
  for (const name of ['token', 'verify']) {
    if (isRecord(options) && Object.hasOwn(options, name) && options[name] === undefined) {
      const hint = 'leave the option out to serve the admin without authentication'
      throw new GatewayOptionsError(`Invalid admin options:\n  - ${name}: is undefined; ${hint}`)
    }
  }
}

function parseAdminOptions(options: unknown): z.output<typeof adminOptionsSchema> {
  refuseExplicitUndefined(options)
  const result = adminOptionsSchema.safeParse(options)
  if (result.success) return result.data
  const lines = result.error.issues.map(
    (issue) => `  - ${issue.path.join('.') || '(options)'}: ${issue.message}`,
  )
  throw new GatewayOptionsError(`Invalid admin options:\n${lines.join('\n')}`)
}

/**
 * Builds the admin API. Options are checked here: a wrong one throws a `GatewayOptionsError` (a
 * `TypeError`) naming it.
 *
 * Routes, relative to the mount: `GET /logs`, `DELETE /logs`, `GET|PATCH /logs/:id`, `GET /analytics`,
 * `GET /keys`, `PUT|DELETE /keys/:provider/:alias`, `GET|POST /routes`, `GET|DELETE /routes/:name`,
 * `GET|POST /routes/:name/versions`, `GET /routes/:name/versions/:version`,
 * `GET|POST /routes/:name/deployments`, `GET /settings`, `GET /metrics` (with `metrics: gateway.metrics`);
 * and the dashboard's `GET /`,
 * `GET /assets/:file`, `POST|DELETE /session`.
 *
 * @example
 * const admin = createAdmin({
 *   logs: createMemoryLogStore(),
 *   keys: createKeyRing({ store: createMemorySecretStore(), masterKey: process.env.GATEWAY_MASTER_KEY! }),
 *   token: process.env.GATEWAY_ADMIN_TOKEN!,
 * })
 * app.use('/ai-admin', aiGatewayAdmin(admin))
 */
export function createAdmin(options: AdminOptions): Admin {
  const {
    logs,
    keys,
    routes,
    token,
    verify,
    dashboard: dashboardOption,
    settings,
    metrics,
  } = parseAdminOptions(options)
  const tokens = token === undefined ? [] : typeof token === 'string' ? [token] : token
  const check = createTokenCheck(tokens, verify)
  const authorize = createAuthorizer(check)
  const { dashboard, sessions, sessionTtl } = dashboardOf(dashboardOption, check, { logs, keys, routes })
  const description: AdminDescription = {
    authentication: tokens.length > 0 ? (verify ? 'token or verify' : 'token') : verify ? 'verify' : 'none',
    dashboard: dashboard !== undefined,
    sessionTtl,
    serves: [logs && 'logs', keys && 'keys', routes && 'routes'].filter((name) => typeof name === 'string'),
  }
  const stores: Stores = {
    logs,
    keys,
    routes,
    metrics,
    settings: { source: settings, admin: description },
  }

  async function handle(request: GatewayRequest): Promise<GatewayResponse | undefined> {
    try {
      const page = await dashboard?.handle(request)
      if (page !== undefined) return withSecurityHeaders(page)
      const match = matchRoute(request.path)
      if (match === undefined) return undefined
      await admit(authorize, sessions, request)
      return withSecurityHeaders(await dispatch(match.route, { request, params: match.params }, stores))
    } catch (error) {
      const response = renderError(toAdminError(error))
      response.headers['cache-control'] = 'no-store'
      return withSecurityHeaders(response)
    }
  }

  return { handle, [kAdmin]: true } as Admin
}

/**
 * The dashboard as the `dashboard` option asks, and its sessions: only where there is a login (a token or
 * `verify`); an open admin's dashboard needs none.
 */
function dashboardOf(
  option: z.output<typeof adminOptionsSchema>['dashboard'],
  check: CheckAdminToken | undefined,
  stores: Omit<Stores, 'settings' | 'metrics'>,
): { dashboard?: Dashboard; sessions?: SessionStore; sessionTtl: number | null } {
  if (option === false) return { sessionTtl: null }
  const { sessionTtl = DEFAULT_SESSION_TTL, secureCookie } = option === true ? {} : option
  const login =
    check === undefined ? undefined : { check, sessions: createSessionStore({ ttlMs: sessionTtl * 1000 }) }
  const dashboard = createDashboard({
    login,
    settings: { sessionTtl, secureCookie },
    config: {
      logs: stores.logs !== undefined,
      keys: stores.keys !== undefined,
      routes: stores.routes !== undefined,
      auth: check !== undefined,
      providers: PROVIDERS.map((provider) => provider.id),
    },
  })
  return login === undefined
    ? { dashboard, sessionTtl: null }
    : { dashboard, sessions: login.sessions, sessionTtl }
}

/**
 * True for objects made by `createAdmin`, so adapters can take options or an admin.
 *
 * @example
 * const admin = isAdmin(value) ? value : createAdmin(value)
 */
export function isAdmin(value: unknown): value is Admin {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kAdmin] === true
}

interface Stores {
  readonly logs: LogStore | undefined
  readonly keys: KeyRing | undefined
  readonly routes: GatewayRoutes | undefined
  readonly metrics: GatewayMetrics | undefined
  readonly settings: SettingsView
}

function dispatch(route: Route, call: AdminCall, stores: Stores): Promise<GatewayResponse> {
  const { method } = call.request
  if (!Object.hasOwn(route.methods, method)) {
    const allow = Object.keys(route.methods).join(', ')
    throw new GatewayError('METHOD_NOT_ALLOWED', `${route.path} accepts ${allow}`, { headers: { allow } })
  }
  if (route.store === 'logs') {
    if (stores.logs === undefined) throw new GatewayError('NOT_FOUND', 'this admin has no log store')
    return route.methods[method]!(stores.logs, call)
  }
  if (route.store === 'settings') return route.methods[method]!(stores.settings, call)
  if (route.store === 'metrics') {
    if (stores.metrics === undefined) throw new GatewayError('NOT_FOUND', 'this admin has no metrics')
    return route.methods[method]!(stores.metrics, call)
  }
  if (route.store === 'routes') {
    if (stores.routes === undefined) throw new GatewayError('NOT_FOUND', 'this admin has no routes')
    return route.methods[method]!(stores.routes, call)
  }
  if (stores.keys === undefined) throw new GatewayError('NOT_FOUND', 'this admin has no key ring')
  return route.methods[method]!(stores.keys, call)
}

/**
 * The catalog error for a failure the admin knows; anything else is rethrown. Key store messages name
 * providers and aliases only, never secrets; backend details (hosts, drivers) are left out of 5xx answers.
 */
function toAdminError(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error
  if (error instanceof LogQueryError) {
    const issues = error.issues.map((issue) => `${issue.path || '(root)'}: ${issue.message}`)
    return new GatewayError('INVALID_QUERY', issues.join('; '))
  }
  if (error instanceof KeyStoreError) return fromKeyStoreError(error)
  throw error
}

function fromKeyStoreError(error: KeyStoreError): GatewayError {
  switch (error.reason) {
    case 'invalid-provider':
    case 'invalid-alias':
      return new GatewayError('INVALID_QUERY', error.message)
    case 'invalid-secret':
      return new GatewayError('INVALID_REQUEST_BODY', error.message)
    case 'store-unavailable':
      return new GatewayError('KEY_STORE_UNAVAILABLE', undefined, { cause: error })
    default:
      return new GatewayError('INTERNAL', `key store failed (${error.reason})`, { cause: error })
  }
}
