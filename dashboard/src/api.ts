/**
 * Calls to the admin's JSON API, relative to the page (the app is served at the mount's root). The
 * session cookie goes along by itself; calls that change something also carry the CSRF token. A 401
 * means the session ended (logout elsewhere, expiry, a restart): the page reloads into the login form.
 */
import { CSRF_HEADER } from '../../src/admin/browser-contract.js'
import { csrfToken } from './config.js'

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message)
  }
}

export type Query = Record<string, string | number | boolean | undefined | null>

/**
 * A path with its query string; parameters that are undefined or null are left out.
 *
 * @example
 * withQuery('logs', { limit: 50, cursor: undefined }) // 'logs?limit=50'
 */
export function withQuery(path: string, query: Query = {}): string {
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null) params.set(key, String(value))
  }
  const text = params.toString()
  return text === '' ? path : `${path}?${text}`
}

/**
 * Calls the API and resolves with its JSON answer (undefined for 204); an error answer rejects with
 * its message.
 *
 * @example
 * const { records } = await api<{ records: LogRecord[] }>(withQuery('logs', { limit: 20 }))
 * await api(`logs/${id}`, { method: 'PATCH', body: { feedback: 1 } })
 */
export async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const method = init.method ?? 'GET'
  const headers: Record<string, string> = { accept: 'application/json' }
  if (init.body !== undefined) headers['content-type'] = 'application/json'
  if (method !== 'GET' && csrfToken !== undefined) headers[CSRF_HEADER] = csrfToken
  const response = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  })
  if (response.status === 401 && csrfToken !== undefined) {
    location.replace('./')
    throw new ApiError('Your session has ended. Sign in again.', 401)
  }
  if (response.status === 204) return undefined as T
  const text = await response.text()
  const json = text === '' ? undefined : JSON.parse(text)
  if (!response.ok) {
    const message =
      typeof json?.message === 'string' ? json.message : `${response.status} ${response.statusText}`
    throw new ApiError(message, response.status)
  }
  return json as T
}

/** Ends the session on the server, then loads the login page. */
export async function logout(): Promise<void> {
  await api('session', { method: 'DELETE' })
  location.replace('./')
}
