/**
 * The admin API: request logs (list, read, feedback, delete, analytics), stored provider keys and dynamic
 * routes (save, versions, deploy, roll back) over HTTP, framework-free like the gateway. Adapters mount it
 * with `aiGatewayAdmin`.
 */
import { z } from 'zod'
import type { GatewayRoutes } from '../dynamic/routes.js'
import { GatewayError, GatewayOptionsError, KeyStoreError, LogQueryError, renderError } from '../errors.js'
import { isRecord } from '../json.js'
import type { KeyRing } from '../keys/key-ring.js'
import type { LogStore } from '../logs/types.js'
import type { GatewayRequest, GatewayResponse } from '../types.js'
import { type Authorize, createAuthorizer, type VerifyAdminToken } from './auth.js'
import { type AdminCall, matchRoute, type Route } from './routes.js'

export type { VerifyAdminToken } from './auth.js'
export { MAX_ADMIN_BODY_BYTES } from './http.js'

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
  /**
   * Accepted `authorization: Bearer <token>` values, each at least 16 printable ASCII characters. Several
   * tokens allow a rotation without downtime.
   */
  token?: string | readonly string[]
  /** Checks a bearer token that `token` does not hold; only `true` admits. A throw rejects `handle()`. */
  verify?: VerifyAdminToken
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
})

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
 * `GET|POST /routes/:name/deployments`.
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
  const { logs, keys, routes, token, verify } = parseAdminOptions(options)
  const tokens = token === undefined ? [] : typeof token === 'string' ? [token] : token
  const authorize = createAuthorizer(tokens, verify)
  const stores: Stores = { logs, keys, routes }

  async function handle(request: GatewayRequest): Promise<GatewayResponse | undefined> {
    const match = matchRoute(request.path)
    if (match === undefined) return undefined
    try {
      await checkAccess(authorize, request)
      return await dispatch(match.route, { request, params: match.params }, stores)
    } catch (error) {
      const response = renderError(toAdminError(error))
      response.headers['cache-control'] = 'no-store'
      return response
    }
  }

  return { handle, [kAdmin]: true } as Admin
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

async function checkAccess(authorize: Authorize | undefined, request: GatewayRequest): Promise<void> {
  if (authorize === undefined || (await authorize(request))) return
  // No detail: whether the header was missing, malformed or wrong would only help a guesser.
  throw new GatewayError('UNAUTHORIZED', undefined, { headers: { 'www-authenticate': 'Bearer' } })
}

interface Stores {
  readonly logs: LogStore | undefined
  readonly keys: KeyRing | undefined
  readonly routes: GatewayRoutes | undefined
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
