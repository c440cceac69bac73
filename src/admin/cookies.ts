/**
 * The dashboard's session cookie: read from a `cookie` header, written as `Set-Cookie`. It is HttpOnly (no
 * script reads it), SameSite=Strict (no other site's page sends it) and Secure whenever the request came
 * over https, and its path is the admin's mount, so the host's other pages never receive it.
 */

/** The session cookie's name. */
export const SESSION_COOKIE = 'aigw_admin_session'

// What a cookie's Path may hold here: no `;` (it would start another attribute), no space or control byte.
const SAFE_PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,=:@/%]*$/

/**
 * The value of the cookie `name` in a `cookie` header, or undefined. A cookie given twice (one per path,
 * say) yields the first, which browsers send for the longest path.
 *
 * @example
 * readCookie('theme=dark; aigw_admin_session=abc', 'aigw_admin_session') // 'abc'
 */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  for (const part of header.split(';')) {
    const at = part.indexOf('=')
    if (at !== -1 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim()
  }
  return undefined
}

export interface CookieScope {
  /** Where the admin is mounted, e.g. `/ai-admin`; anything unsafe in a cookie attribute falls back to `/`. */
  readonly path: string
  /** Adds `Secure`: the browser then sends it over https only. */
  readonly secure: boolean
}

/**
 * A `Set-Cookie` value for the session cookie, kept `maxAgeSeconds` (0 clears it).
 *
 * @example
 * sessionCookie('k3y', { path: '/ai-admin', secure: true }, 28_800)
 * // 'aigw_admin_session=k3y; Path=/ai-admin; Max-Age=28800; HttpOnly; SameSite=Strict; Secure'
 */
export function sessionCookie(value: string, scope: CookieScope, maxAgeSeconds: number): string {
  const path = SAFE_PATH.test(scope.path) ? scope.path : '/'
  const secure = scope.secure ? '; Secure' : ''
  return `${SESSION_COOKIE}=${value}; Path=${path}; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Strict${secure}`
}
