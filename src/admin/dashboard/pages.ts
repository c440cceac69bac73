/**
 * The dashboard's two HTML pages, rendered on the server: the login form, which works without a script,
 * and the app's shell, which hands the script its CSRF token and what this admin serves in `<meta>` tags
 * (the CSP forbids inline scripts). Links are relative, so they resolve under the mount however deep it is.
 */
import { type AppConfig, CONFIG_META, CSRF_META } from '../browser-contract.js'
import type { DashboardAssets } from './assets.js'

export type { AppConfig } from '../browser-contract.js'

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
}

/**
 * Text made safe inside HTML, in element content and quoted attributes alike.
 *
 * @example
 * escapeHtml('<b title="x">') // '&lt;b title=&quot;x&quot;&gt;'
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char]!)
}

function head(title: string, assets: DashboardAssets, extra = ''): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="assets/${assets.style}">${extra}
</head>`
}

/**
 * The login page; `failed` adds the message for a token that was not accepted.
 *
 * @example
 * loginPage(assets, { failed: true })
 */
export function loginPage(assets: DashboardAssets, { failed = false }: { failed?: boolean } = {}): string {
  const error = failed
    ? '\n<p class="login-error" role="alert" id="login-error">That token was not accepted.</p>'
    : ''
  return `${head('Sign in · AI Gateway', assets)}
<body class="login">
<main class="container">
<article>
<header><h1>AI Gateway</h1><p>Sign in with the admin token.</p></header>
<form method="post" action="session">
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus${failed ? ' aria-invalid="true" aria-describedby="login-error"' : ''}>${error}
<button type="submit">Sign in</button>
</form>
</article>
</main>
</body>
</html>
`
}

/**
 * The app's shell: the script builds the page from the config and, with a session, its CSRF token.
 *
 * @example
 * appPage(assets, config, session.csrfToken)
 */
export function appPage(assets: DashboardAssets, config: AppConfig, csrfToken: string | undefined): string {
  const meta =
    `\n<meta name="${CONFIG_META}" content="${escapeHtml(JSON.stringify(config))}">` +
    (csrfToken === undefined ? '' : `\n<meta name="${CSRF_META}" content="${escapeHtml(csrfToken)}">`) +
    `\n<script type="module" src="assets/${assets.script}"></script>`
  return `${head('AI Gateway', assets, meta)}
<body>
<div id="app"></div>
</body>
</html>
`
}

/**
 * The page for a package built without its dashboard.
 *
 * @example
 * notBuiltPage() // "… run npm run build …"
 */
export function notBuiltPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AI Gateway</title></head>
<body><p>The dashboard is not built. Run <code>npm run build</code> in the ai-gateway-middleware package; the JSON API works without it.</p></body>
</html>
`
}
