/**
 * The page shown, from the URL's hash (`#/logs`, `#/logs/<id>`, `#/analytics`, …): the server serves one
 * page at the mount's root, and links, reloads and the back button keep working.
 */
import { useEffect, useState } from 'preact/hooks'

export interface Route {
  /** The first segment: `logs`, `analytics`, …; `logs` for an empty hash. */
  readonly page: string
  /** The segments after it, decoded. */
  readonly params: readonly string[]
}

/**
 * The route a hash names.
 *
 * @example
 * parseHash('#/logs/0190a5e2-…') // { page: 'logs', params: ['0190a5e2-…'] }
 */
export function parseHash(hash: string): Route {
  const segments = hash
    .replace(/^#\/?/, '')
    .split('/')
    .filter((segment) => segment !== '')
    .map((segment) => {
      try {
        return decodeURIComponent(segment)
      } catch {
        return segment
      }
    })
  return { page: segments[0] ?? 'logs', params: segments.slice(1) }
}

/**
 * A hash link to a page and its parameters, encoded.
 *
 * @example
 * href('routes', 'support') // '#/routes/support'
 */
export function href(page: string, ...params: string[]): string {
  return `#/${[page, ...params].map(encodeURIComponent).join('/')}`
}

/** The current route, updated on every hash change. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash))
  useEffect(() => {
    const onChange = () => setRoute(parseHash(location.hash))
    addEventListener('hashchange', onChange)
    return () => removeEventListener('hashchange', onChange)
  }, [])
  return route
}
