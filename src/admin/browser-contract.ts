/**
 * What the admin and the dashboard's script agree on: the header that carries the CSRF token, the
 * `<meta>` tags the app's shell passes its setup in, and that setup's shape. Types and constants only,
 * so the browser bundle can import it.
 */

/** The header the dashboard sends its session's CSRF token in, on every call that changes something. */
export const CSRF_HEADER = 'x-csrf-token'

/** The `<meta name>` holding the app's setup (`AppConfig` as JSON), and the one holding the CSRF token. */
export const CONFIG_META = 'aigw-config'
export const CSRF_META = 'csrf-token'

/** What the app's shell tells the script: which pages have a store behind them, and the session. */
export interface AppConfig {
  readonly logs: boolean
  readonly keys: boolean
  readonly routes: boolean
  /** The admin asks for a token: the app offers a logout. */
  readonly auth: boolean
  /** Known provider ids, for the key form. */
  readonly providers: readonly string[]
  /** When the session ends, in milliseconds since the epoch; null for an open admin. */
  readonly sessionExpiresAt: number | null
}
