/**
 * Who may call the admin: a script with the bearer token, or a browser with a dashboard session. A
 * browser sends its cookie by itself, so a session alone is not enough for a call that changes something:
 * it must also carry the session's CSRF token in `x-csrf-token` (a header no other site's page can set
 * without a CORS preflight, which the admin never grants) and must not come from another origin.
 */
import { GatewayError } from '../errors.js'
import type { GatewayRequest } from '../types.js'
import type { Authorize } from './auth.js'
import { CSRF_HEADER } from './browser-contract.js'
import { readCookie, SESSION_COOKIE } from './cookies.js'
import { type AdminSession, csrfMatches, type SessionStore } from './sessions.js'

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** How a call was admitted. */
export type Access =
  | { readonly via: 'token' | 'open' }
  | { readonly via: 'session'; readonly session: AdminSession }

/**
 * The first value of a header a proxy may have appended to (`x-forwarded-host: a, b`).
 *
 * @example
 * firstValue('example.com, proxy.internal') // 'example.com'
 */
export function firstValue(header: string | undefined): string | undefined {
  const value = header?.split(',')[0]?.trim()
  return value === '' ? undefined : value
}

/**
 * Whether a browser says the request comes from another origin. `Sec-Fetch-Site` and `Origin` are read
 * when present (browsers send them; scripts usually send neither): the origin's host must be the one the
 * request was sent to (`x-forwarded-host` behind a proxy, else `host`, or `:authority` over HTTP/2, where
 * browsers send no `host`). A page with
 * `Referrer-Policy: no-referrer`, as the dashboard's, sends `Origin: null` on its own posts; that counts
 * as same-origin only when `Sec-Fetch-Site: same-origin` vouches for it (a header no page can set).
 *
 * @example
 * isCrossOrigin({ ...request, headers: { host: 'gw.example', origin: 'https://evil.example' } }) // true
 */
export function isCrossOrigin(request: GatewayRequest): boolean {
  const site = request.headers['sec-fetch-site']
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return true
  const origin = request.headers.origin
  if (origin === undefined) return false
  if (origin === 'null') return site !== 'same-origin'
  const host =
    firstValue(request.headers['x-forwarded-host']) ?? request.headers.host ?? request.headers[':authority']
  try {
    return host === undefined || new URL(origin).host !== host.toLowerCase()
  } catch {
    return true
  }
}

/**
 * Refuses a browser's call that changes something (any method but GET, HEAD, OPTIONS) from another origin.
 *
 * @example
 * refuseCrossOrigin(request) // throws CROSS_SITE_REFUSED for a POST with `Origin: https://evil.example`
 */
export function refuseCrossOrigin(request: GatewayRequest): void {
  if (SAFE_METHODS.has(request.method)) return
  if (isCrossOrigin(request))
    throw new GatewayError('CROSS_SITE_REFUSED', 'the request comes from another origin')
}

/** The live dashboard session the request's cookie names, if any. */
export function sessionOf(
  sessions: SessionStore | undefined,
  request: GatewayRequest,
): AdminSession | undefined {
  return sessions?.find(readCookie(request.headers.cookie, SESSION_COOKIE))
}

/**
 * Admits a call or throws: `UNAUTHORIZED` (401) without valid credentials, `CROSS_SITE_REFUSED` (403) for
 * a session's state-changing call without its CSRF token or from another origin. A bearer header is
 * judged on its own, cookie or not. An open admin (no `authorize`) admits everyone, but still refuses
 * cross-origin changes from browsers.
 *
 * @example
 * const access = await admit(authorize, sessions, request) // { via: 'session', session } from the dashboard
 */
export async function admit(
  authorize: Authorize | undefined,
  sessions: SessionStore | undefined,
  request: GatewayRequest,
): Promise<Access> {
  if (authorize === undefined) {
    refuseCrossOrigin(request)
    return { via: 'open' }
  }
  if (request.headers.authorization !== undefined) {
    if (await authorize(request)) return { via: 'token' }
    throw unauthorized()
  }
  const session = sessionOf(sessions, request)
  if (session === undefined) throw unauthorized()
  refuseCrossOrigin(request)
  if (!SAFE_METHODS.has(request.method) && !csrfMatches(session, request.headers[CSRF_HEADER])) {
    throw new GatewayError('CROSS_SITE_REFUSED', `missing or wrong ${CSRF_HEADER}`)
  }
  return { via: 'session', session }
}

// No detail: whether the header was missing, malformed or wrong would only help a guesser.
function unauthorized(): GatewayError {
  return new GatewayError('UNAUTHORIZED', undefined, { headers: { 'www-authenticate': 'Bearer' } })
}
