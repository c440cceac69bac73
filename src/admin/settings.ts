/**
 * `GET /settings`: how this admin and the gateway behind it are set up, for the dashboard's Settings page
 * and for scripts. The gateway part is whatever the host's `settings` option returns (typically
 * `parseOptions(options)`: the options with every default filled in), masked by `maskSettings`.
 */

import { GatewayError } from '../errors.js'
import type { GatewayResponse, MaybePromise } from '../types.js'
import { type AdminCall, jsonResponse, queryObject } from './http.js'
import { maskSettings } from './mask.js'

/** Returns the settings to show; called on every `GET /settings`, so it may read live values. */
export type SettingsSource = () => MaybePromise<unknown>

/** The admin's own setup, as `GET /settings` reports it under `admin`. */
export interface AdminDescription {
  readonly authentication: 'token' | 'verify' | 'token or verify' | 'none'
  readonly dashboard: boolean
  /** Seconds; null without a dashboard or without authentication (no login, no sessions). */
  readonly sessionTtl: number | null
  readonly serves: readonly string[]
}

export interface SettingsView {
  readonly source: SettingsSource | undefined
  readonly admin: AdminDescription
}

/**
 * Answers `{ admin, settings }`: `settings` is the host's, masked, or null when the admin was given none.
 *
 * @example
 * await getSettings({ source: () => parseOptions(options), admin }, call)
 */
export async function getSettings(view: SettingsView, { request }: AdminCall): Promise<GatewayResponse> {
  const extra = Object.keys(queryObject(request.search))
  if (extra.length > 0) {
    throw new GatewayError('INVALID_QUERY', `unknown parameter ${JSON.stringify(extra[0]!.slice(0, 64))}`)
  }
  const settings = view.source === undefined ? null : maskSettings(await view.source())
  return jsonResponse(200, { admin: view.admin, settings })
}
