/** What the server put in the app's shell: its setup and, with a login, the session's CSRF token. */
import { type AppConfig, CONFIG_META, CSRF_META } from '../../src/admin/browser-contract.js'

function meta(name: string): string | undefined {
  return document.querySelector(`meta[name="${name}"]`)?.getAttribute('content') ?? undefined
}

export const config: AppConfig = JSON.parse(meta(CONFIG_META) ?? 'null') ?? {
  logs: false,
  keys: false,
  routes: false,
  auth: false,
  providers: [],
  sessionExpiresAt: null,
}

export const csrfToken: string | undefined = meta(CSRF_META)
