/**
 * The dashboard's own paths on the admin mount: `GET /` (the app, or the login page without a session),
 * `GET /assets/:file` (the built script and stylesheet, cached for a year under hashed names) and
 * `/session` (`POST` logs in with the admin token, `DELETE` logs out). Everything else on the mount stays
 * the JSON API, which the app calls with its session cookie and CSRF token.
 */

import { GatewayError } from '../../errors.js'
import { isRecord, parseJson } from '../../json.js'
import type { GatewayRequest, GatewayResponse } from '../../types.js'
import { splitQuery } from '../../url.js'
import { firstValue, refuseCrossOrigin, sessionOf } from '../access.js'
import type { CheckAdminToken } from '../auth.js'
import { CSRF_HEADER } from '../browser-contract.js'
import { type CookieScope, sessionCookie } from '../cookies.js'
import { readBodyText } from '../http.js'
import { csrfMatches, type SessionStore } from '../sessions.js'
import { dashboardAssets } from './assets.js'
import { type AppConfig, appPage, loginPage, notBuiltPage } from './pages.js'

export interface DashboardSettings {
  /** How long a session lasts after its login, in seconds. */
  readonly sessionTtl: number
  /** Forces the cookie's `Secure` attribute on or off; by default it is set for https requests. */
  readonly secureCookie?: boolean | undefined
}

export interface Dashboard {
  /** Answers the dashboard's paths; `undefined` for the JSON API's and anything else. */
  handle(request: GatewayRequest): Promise<GatewayResponse | undefined>
}

interface DashboardParts {
  /** The admin's token check and its sessions; `undefined` for an open admin, which needs no login. */
  readonly login: { readonly check: CheckAdminToken; readonly sessions: SessionStore } | undefined
  readonly config: Omit<AppConfig, 'sessionExpiresAt'>
  readonly settings: DashboardSettings
}

const YEAR_SECONDS = 31_536_000
const MAX_LOGIN_BYTES = 8192
const MAX_TOKEN_LENGTH = 4096

/**
 * Builds the dashboard's handler over the admin's token check and session store.
 *
 * @example
 * const dashboard = createDashboard({ login: { check, sessions }, config, settings: { sessionTtl: 28_800 } })
 * const response = await dashboard.handle(request) // undefined: a JSON API path
 */
export function createDashboard(parts: DashboardParts): Dashboard {
  async function handle(request: GatewayRequest): Promise<GatewayResponse | undefined> {
    const { path } = request
    if (path === '/') return page(parts, request)
    if (path === '/session') return session(parts, request)
    if (path.startsWith('/assets/') && path.indexOf('/', 8) === -1)
      return asset(parts, request, path.slice(8))
    return undefined
  }
  return { handle }
}

async function page(parts: DashboardParts, request: GatewayRequest): Promise<GatewayResponse> {
  readOnly(request, '/')
  const redirect = trailingSlashRedirect(request)
  if (redirect !== undefined) return redirect
  const assets = await dashboardAssets()
  if (assets === undefined) return htmlResponse(503, notBuiltPage())
  if (parts.login === undefined) return htmlResponse(200, appPage(assets, appConfig(parts, null), undefined))
  const current = sessionOf(parts.login.sessions, request)
  if (current === undefined) return htmlResponse(200, loginPage(assets))
  return htmlResponse(200, appPage(assets, appConfig(parts, current.expiresAt), current.csrfToken))
}

function appConfig(parts: DashboardParts, sessionExpiresAt: number | null): AppConfig {
  return { ...parts.config, sessionExpiresAt }
}

async function asset(parts: DashboardParts, request: GatewayRequest, name: string): Promise<GatewayResponse> {
  readOnly(request, '/assets/:file')
  const assets = await dashboardAssets()
  const file = assets?.files.get(name)
  if (assets === undefined || file === undefined)
    throw new GatewayError('NOT_FOUND', 'no such dashboard file')
  // The stylesheet dresses the login page; the app's script is for signed-in browsers only.
  const open = name === assets.style || parts.login === undefined
  if (!open && sessionOf(parts.login?.sessions, request) === undefined) {
    throw new GatewayError('UNAUTHORIZED')
  }
  const gzip = acceptsGzip(request.headers['accept-encoding'])
  const headers: Record<string, string> = {
    'content-type': file.type,
    'content-length': String((gzip ? file.gzip : file.body).byteLength),
    // Names change with their content, so a copy never goes stale; `private` keeps the app's script out
    // of shared caches, which would hand it to browsers that never signed in.
    'cache-control': `${open ? 'public' : 'private'}, max-age=${YEAR_SECONDS}, immutable`,
    vary: 'accept-encoding',
  }
  if (gzip) headers['content-encoding'] = 'gzip'
  return { status: 200, headers, body: gzip ? file.gzip : file.body }
}

async function session(parts: DashboardParts, request: GatewayRequest): Promise<GatewayResponse> {
  if (request.method === 'POST') return login(parts, request)
  if (request.method === 'DELETE') return logout(parts, request)
  throw new GatewayError('METHOD_NOT_ALLOWED', '/session accepts POST, DELETE', {
    headers: { allow: 'POST, DELETE' },
  })
}

/**
 * Exchanges the admin token for a session. The login form posts it as `token=…` and is answered with a
 * redirect to the app (or the form again, saying the token was refused); a script posts `{ "token": … }`
 * as JSON and gets `{ csrfToken, expiresAt }`. The token is checked as a bearer token would be: against
 * `token`, then `verify`, which sees this login request.
 */
async function login(parts: DashboardParts, request: GatewayRequest): Promise<GatewayResponse> {
  refuseCrossOrigin(request)
  if (parts.login === undefined) {
    throw new GatewayError('NOT_FOUND', 'this admin has no token: its dashboard needs no login')
  }
  const { check, sessions } = parts.login
  const form = !isJson(request.headers['content-type'])
  const token = await loginToken(request, form)
  const accepted = token !== undefined && (await check(token, request))
  if (!accepted) {
    if (!form) throw new GatewayError('UNAUTHORIZED')
    const assets = await dashboardAssets()
    return htmlResponse(401, assets === undefined ? notBuiltPage() : loginPage(assets, { failed: true }))
  }
  const created = sessions.create()
  const cookie = sessionCookie(created.id, cookieScope(parts, request), parts.settings.sessionTtl)
  if (form) {
    return {
      status: 303,
      headers: { location: './', 'set-cookie': cookie, 'cache-control': 'no-store' },
      body: null,
    }
  }
  const body = JSON.stringify({ csrfToken: created.csrfToken, expiresAt: created.expiresAt })
  return {
    status: 200,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', 'set-cookie': cookie },
    body,
  }
}

/** Ends the session at once, and tells the browser to forget its cookie. */
async function logout(parts: DashboardParts, request: GatewayRequest): Promise<GatewayResponse> {
  refuseCrossOrigin(request)
  const current = sessionOf(parts.login?.sessions, request)
  if (current !== undefined) {
    if (!csrfMatches(current, request.headers[CSRF_HEADER])) {
      throw new GatewayError('CROSS_SITE_REFUSED', `missing or wrong ${CSRF_HEADER}`)
    }
    parts.login?.sessions.revoke(current.id)
  }
  const cookie = sessionCookie('', cookieScope(parts, request), 0)
  return { status: 204, headers: { 'set-cookie': cookie, 'cache-control': 'no-store' }, body: null }
}

async function loginToken(request: GatewayRequest, form: boolean): Promise<string | undefined> {
  const text = await readBodyText(request, MAX_LOGIN_BYTES)
  let token: unknown
  if (form) {
    token = new URLSearchParams(text).get('token') ?? undefined
  } else {
    const body = parseJson(text)
    if (!isRecord(body))
      throw new GatewayError('INVALID_REQUEST_BODY', 'expected { "token": "<admin token>" }')
    token = body.token
  }
  if (typeof token !== 'string') return undefined
  // Pasted tokens often come with a space or a line break around them; a token never holds one.
  const trimmed = token.trim()
  return trimmed === '' || trimmed.length > MAX_TOKEN_LENGTH ? undefined : trimmed
}

function isJson(contentType: string | undefined): boolean {
  return contentType !== undefined && /^application\/(?:[\w.+-]+\+)?json\b/i.test(contentType)
}

function readOnly(request: GatewayRequest, path: string): void {
  if (request.method === 'GET' || request.method === 'HEAD') return
  throw new GatewayError('METHOD_NOT_ALLOWED', `${path} accepts GET`, { headers: { allow: 'GET' } })
}

/**
 * The mount point's path as the client addressed it (`/ai-admin`; `''` at the root), from the request's
 * original target; undefined when the adapter did not say.
 *
 * @example
 * mountPath({ path: '/logs', originalUrl: '/ai-admin/logs?limit=5', ... }) // '/ai-admin'
 */
export function mountPath(request: GatewayRequest): string | undefined {
  const original = request.originalUrl?.split('?')[0]
  if (original === undefined) return undefined
  if (request.path === '/') return original.endsWith('/') ? original.slice(0, -1) : original
  return original.endsWith(request.path) ? original.slice(0, -request.path.length) : undefined
}

/**
 * `/ai-admin` without its slash would resolve the page's relative links one level too high: it is sent
 * to `/ai-admin/`, relative to where the browser is (so a proxy's prefix in front stays in the URL).
 */
function trailingSlashRedirect(request: GatewayRequest): GatewayResponse | undefined {
  const original = request.originalUrl
  if (original === undefined) return undefined
  const { path: pathname, search } = splitQuery(original)
  if (pathname.endsWith('/')) return undefined
  const segment = pathname.slice(pathname.lastIndexOf('/') + 1)
  // `./` first: a segment with a colon would otherwise read as a URL scheme.
  const location = `./${segment}/${search}`
  return { status: 302, headers: { location, 'cache-control': 'no-store' }, body: null }
}

function cookieScope(parts: DashboardParts, request: GatewayRequest): CookieScope {
  const secure =
    parts.settings.secureCookie ??
    (request.secure === true || firstValue(request.headers['x-forwarded-proto'])?.toLowerCase() === 'https')
  return { path: mountPath(request) || '/', secure }
}

/**
 * Whether `accept-encoding` allows gzip (listed, or `*`, with a quality above zero).
 *
 * @example
 * acceptsGzip('br, gzip;q=0.8') // true
 * acceptsGzip('gzip;q=0') // false
 */
export function acceptsGzip(header: string | undefined): boolean {
  if (header === undefined) return false
  return header.split(',').some((part) => {
    const [coding = '', ...params] = part.split(';').map((piece) => piece.trim().toLowerCase())
    if (coding !== 'gzip' && coding !== '*') return false
    const quality = params.find((param) => param.startsWith('q='))
    return quality === undefined || Number(quality.slice(2)) > 0
  })
}

function htmlResponse(status: number, html: string): GatewayResponse {
  return {
    status,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(Buffer.byteLength(html)),
      'cache-control': 'no-store',
    },
    body: html,
  }
}
