import { randomBytes } from 'node:crypto'
import { gunzipSync } from 'node:zlib'
import { request } from 'undici'
import { afterAll, describe, expect, it } from 'vitest'
import { type AdminOptions, createAdmin } from '../../src/admin/index.js'
import { createKeyRing } from '../../src/keys/key-ring.js'
import { createMemorySecretStore } from '../../src/keys/memory-store.js'
import { createMemoryLogStore } from '../../src/logs/memory-store.js'
import type { LogRecord } from '../../src/logs/types.js'
import { ADMIN_MOUNTS, type BuildAdminApp } from '../helpers/admin-apps.js'
import { type RunningApp, send } from '../helpers/http.js'
import { sampleRecord } from '../helpers/log-store.js'

const TOKEN = 'admin-token-0123456789abcdef'
const CANARY = 'sk-canary-7f3e9d2b1c8a4e6f0d5b'
const auth = { authorization: `Bearer ${TOKEN}` }
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

/** The headers every admin answer carries, the JSON ones included. */
const SECURITY = {
  'content-security-policy': expect.stringContaining("default-src 'self'"),
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
}

/** The session cookie's value from a `set-cookie` header. */
function cookieOf(setCookie: string | undefined): string {
  const value = /aigw_admin_session=([^;]*)/.exec(setCookie ?? '')?.[1]
  if (value === undefined) throw new Error(`no session cookie in ${setCookie}`)
  return `aigw_admin_session=${value}`
}

/** Asset file names as the page links them. */
function assetsOf(html: string): { style: string; script: string | undefined } {
  const style = /href="assets\/([^"]+\.css)"/.exec(html)?.[1]
  if (style === undefined) throw new Error('the page links no stylesheet')
  return { style, script: /src="assets\/([^"]+\.js)"/.exec(html)?.[1] }
}

function runDashboardScenarios(framework: string, build: BuildAdminApp, host: { bodyParser: boolean }): void {
  describe(`${framework}: admin dashboard (host body parser ${host.bodyParser ? 'present' : 'absent'})`, () => {
    const running: RunningApp[] = []
    afterAll(() => Promise.all(running.map((app) => app.close())))

    async function start(options: Partial<AdminOptions> = {}) {
      const logs = createMemoryLogStore()
      const record: LogRecord = sampleRecord({ principal: 'alice', cost: 0.002 })
      await logs.write([record])
      const keys = createKeyRing({ store: createMemorySecretStore(), masterKey: randomBytes(32) })
      const app = await build(createAdmin({ logs, keys, token: TOKEN, ...options }), host)
      running.push(app)
      const base = `${app.url}/ai-admin`
      const origin = app.url
      return { base, origin, record, keys }
    }

    /** Logs in through the form, as a browser does, and returns the cookie and the app's CSRF token. */
    async function login(base: string, origin: string) {
      const res = await send(`${base}/session`, {
        method: 'POST',
        body: `token=${encodeURIComponent(TOKEN)}`,
        headers: { ...FORM, origin, 'sec-fetch-site': 'same-origin' },
      })
      expect(res.status, res.text).toBe(303)
      const cookie = cookieOf(res.headers['set-cookie'])
      const page = await send(`${base}/`, { headers: { cookie } })
      const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(page.text)?.[1]
      if (csrf === undefined) throw new Error(`no CSRF token in ${page.text}`)
      return { cookie, csrf, page }
    }

    it('sends the mount without its slash to the mount with it, keeping the query', async () => {
      const { base } = await start()
      const res = await send(`${base}?from=mail&next=/logs?id=1`)
      expect(res.status).toBe(302)
      expect(res.headers.location).toBe('./ai-admin/?from=mail&next=/logs?id=1')
      expect(new URL(res.headers.location!, base).pathname).toBe('/ai-admin/')
    })

    it('serves only the login page and its stylesheet to a browser without a session', async () => {
      const { base } = await start()
      const page = await send(`${base}/`)
      expect(page.status).toBe(200)
      expect(page.headers).toMatchObject({
        ...SECURITY,
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
      })
      expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'")
      expect(page.headers['content-security-policy']).not.toContain('unsafe-inline')
      expect(page.text).toContain('<form method="post" action="session">')
      // Nothing inline, and no script at all: the login works without one.
      expect(page.text).not.toMatch(/<script|<style|style=|\son\w+=/i)

      const { style } = assetsOf(page.text)
      const css = await send(`${base}/assets/${style}`)
      expect(css.status).toBe(200)
      expect(css.headers['content-type']).toBe('text/css; charset=utf-8')
      expect(css.headers['cache-control']).toBe('public, max-age=31536000, immutable')

      for (const path of ['/logs', '/settings', '/keys']) {
        const res = await send(`${base}${path}`)
        expect(res.status, path).toBe(401)
        expect(res.headers).toMatchObject(SECURITY)
      }
      expect(page.text).not.toContain('csrf-token')
    })

    it('gzips its files for clients that accept it', async () => {
      const { base } = await start()
      const { style } = assetsOf((await send(`${base}/`)).text)
      const plain = await request(`${base}/assets/${style}`)
      const plainBody = Buffer.from(await plain.body.arrayBuffer())
      const zipped = await request(`${base}/assets/${style}`, { headers: { 'accept-encoding': 'gzip, br' } })
      const zippedBody = Buffer.from(await zipped.body.arrayBuffer())
      expect(zipped.headers['content-encoding']).toBe('gzip')
      expect(zipped.headers.vary).toBe('accept-encoding')
      expect(zippedBody.length).toBeLessThan(plainBody.length / 3)
      expect(gunzipSync(zippedBody).equals(plainBody)).toBe(true)
      const missing = await send(`${base}/assets/nothing-here.js`)
      expect(missing.status).toBe(404)
    })

    it('refuses a wrong token at the login form, saying so, and sets no cookie', async () => {
      const { base, origin } = await start()
      const res = await send(`${base}/session`, {
        method: 'POST',
        body: 'token=not-the-admin-token-at-all',
        headers: { ...FORM, origin },
      })
      expect(res.status).toBe(401)
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8')
      expect(res.text).toContain('That token was not accepted.')
      expect(res.text).not.toContain('not-the-admin-token-at-all')
      expect(res.headers['set-cookie']).toBeUndefined()
    })

    it('exchanges the token for an HttpOnly, SameSite=Strict cookie scoped to the mount', async () => {
      const { base, origin } = await start()
      const res = await send(`${base}/session`, {
        method: 'POST',
        body: `token=%20${TOKEN}%0A`,
        headers: { ...FORM, origin, 'sec-fetch-site': 'same-origin' },
      })
      expect(res.status).toBe(303)
      expect(res.headers.location).toBe('./')
      const cookie = res.headers['set-cookie']!
      expect(cookie).toMatch(/^aigw_admin_session=[A-Za-z0-9_-]{43}; /)
      expect(cookie).toContain('; Path=/ai-admin;')
      expect(cookie).toContain('; HttpOnly')
      expect(cookie).toContain('; SameSite=Strict')
      expect(cookie).toContain('; Max-Age=28800')
      expect(cookie).not.toContain('Secure')
      // Behind a proxy that ends TLS, the cookie is for https only.
      const proxied = await send(`${base}/session`, {
        method: 'POST',
        body: `token=${TOKEN}`,
        headers: { ...FORM, 'x-forwarded-proto': 'https' },
      })
      expect(proxied.headers['set-cookie']).toMatch(/; Secure$/)
    })

    it('serves the app with its CSRF token to a session, and its script only then', async () => {
      const { base, origin } = await start()
      const anonymous = await send(`${base}/`)
      const { page, cookie, csrf } = await login(base, origin)
      expect(page.text).toContain('<div id="app"></div>')
      expect(page.headers['cache-control']).toBe('no-store')
      expect(page.text).not.toMatch(/<style|style=|<script>/i)
      const { script } = assetsOf(page.text)
      expect(script).toBeDefined()
      expect(csrf).toMatch(/^[A-Za-z0-9_-]{43}$/)
      const config = JSON.parse(
        /<meta name="aigw-config" content="([^"]+)">/.exec(page.text)![1]!.replaceAll('&quot;', '"'),
      )
      expect(config).toMatchObject({ logs: true, keys: true, routes: false, auth: true })
      expect(config.providers).toContain('openai')

      const refused = await send(`${base}/assets/${script}`)
      expect(refused.status).toBe(401)
      const served = await send(`${base}/assets/${script}`, { headers: { cookie } })
      expect(served.status).toBe(200)
      expect(served.headers['content-type']).toBe('text/javascript; charset=utf-8')
      expect(served.headers['cache-control']).toBe('private, max-age=31536000, immutable')
      expect(anonymous.text).not.toContain(script!)
    })

    it('reads with the session cookie, and changes only with its CSRF token from the same origin', async () => {
      const { base, origin, record } = await start()
      const { cookie, csrf } = await login(base, origin)
      const list = await send(`${base}/logs`, { headers: { cookie } })
      expect(list.status).toBe(200)
      expect((list.json() as { records: LogRecord[] }).records.map((r) => r.id)).toEqual([record.id])

      const url = `${base}/logs/${record.id}`
      const patch = (headers: Record<string, string>) =>
        send(url, { method: 'PATCH', body: { feedback: 1 }, headers: { cookie, ...headers } })
      for (const [why, headers] of [
        ['no CSRF token', {}],
        ['a wrong CSRF token', { 'x-csrf-token': `${csrf.slice(0, -1)}x` }],
        ['another origin', { 'x-csrf-token': csrf, origin: 'https://evil.example' }],
        ['a cross-site fetch', { 'x-csrf-token': csrf, 'sec-fetch-site': 'cross-site' }],
        ['an opaque origin', { 'x-csrf-token': csrf, origin: 'null' }],
      ] as const) {
        const res = await patch(headers)
        expect(res.status, why).toBe(403)
        expect(res.json()).toMatchObject({ internalCode: 2133 })
      }
      expect((await send(url, { headers: auth })).json()).toMatchObject({ feedback: null })

      // What the dashboard sends: its token, with `Origin: null` (its pages send no referrer) vouched for
      // by Sec-Fetch-Site.
      const ok = await patch({ 'x-csrf-token': csrf, origin: 'null', 'sec-fetch-site': 'same-origin' })
      expect(ok.status, ok.text).toBe(200)
      expect(ok.json()).toMatchObject({ feedback: 1 })
      const sameOrigin = await send(url, {
        method: 'PATCH',
        body: { score: 80 },
        headers: { cookie, 'x-csrf-token': csrf, origin },
      })
      expect(sameOrigin.json()).toMatchObject({ feedback: 1, score: 80 })
    })

    it('keeps the bearer-token API working for scripts, without CSRF tokens', async () => {
      const { base, record } = await start()
      const patched = await send(`${base}/logs/${record.id}`, {
        method: 'PATCH',
        body: { score: 5 },
        headers: auth,
      })
      expect(patched.status).toBe(200)
      expect(patched.headers).toMatchObject(SECURITY)
      const stored = await send(`${base}/keys/openai/default`, {
        method: 'PUT',
        body: { secret: CANARY },
        headers: auth,
      })
      expect(stored.status).toBe(201)
      // A wrong bearer token is refused even next to a valid cookie.
      const { cookie } = await loginJson(base)
      const wrong = await send(`${base}/logs`, { headers: { cookie, authorization: 'Bearer wrong-token' } })
      expect(wrong.status).toBe(401)
    })

    it('logs in from a script with JSON, and refuses a login from another origin', async () => {
      const { base, origin } = await start()
      const { cookie, body } = await loginJson(base)
      expect(body).toEqual({ csrfToken: expect.any(String), expiresAt: expect.any(Number) })
      expect((await send(`${base}/settings`, { headers: { cookie } })).status).toBe(200)
      const wrong = await send(`${base}/session`, { method: 'POST', body: { token: 'wrong-wrong-wrong' } })
      expect(wrong.status).toBe(401)
      expect(wrong.json()).toMatchObject({ internalCode: 2009 })
      const crossSite = await send(`${base}/session`, {
        method: 'POST',
        body: `token=${TOKEN}`,
        headers: { ...FORM, origin: 'https://evil.example' },
      })
      expect(crossSite.status).toBe(403)
      expect(crossSite.headers['set-cookie']).toBeUndefined()
      const method = await send(`${base}/session`, { headers: { origin } })
      expect(method.status).toBe(405)
      expect(method.headers.allow).toBe('POST, DELETE')
    })

    it('ends the session at logout: the cookie no longer opens anything', async () => {
      const { base, origin } = await start()
      const { cookie, csrf } = await login(base, origin)
      const withoutToken = await send(`${base}/session`, { method: 'DELETE', headers: { cookie } })
      expect(withoutToken.status).toBe(403)
      expect((await send(`${base}/logs`, { headers: { cookie } })).status).toBe(200)

      const out = await send(`${base}/session`, {
        method: 'DELETE',
        headers: { cookie, 'x-csrf-token': csrf, origin },
      })
      expect(out.status).toBe(204)
      expect(out.headers['set-cookie']).toMatch(/^aigw_admin_session=; Path=\/ai-admin; Max-Age=0; HttpOnly/)
      expect((await send(`${base}/logs`, { headers: { cookie } })).status).toBe(401)
      const page = await send(`${base}/`, { headers: { cookie } })
      expect(page.text).toContain('action="session"')
      expect(page.text).not.toContain('csrf-token')
    })

    it("shows the host's settings with every secret masked", async () => {
      const connection = 'postgres://gateway:pg-password-4242@db.internal:5432/logs'
      const { base } = await start({
        settings: () => ({
          providers: { openai: { apiKey: CANARY, baseURL: 'https://api.openai.com/v1?key=abc123secret' } },
          authentication: { tokens: ['gateway-token-aaaaaaaaaaaaaaaa'] },
          database: connection,
          masterKey: Buffer.from('0123456789abcdef0123456789abcdef'),
          timeouts: { firstByteMs: 30_000 },
          identify: function identify() {},
        }),
      })
      const res = await send(`${base}/settings`, { headers: auth })
      expect(res.status).toBe(200)
      for (const secret of [
        CANARY,
        'pg-password-4242',
        'abc123secret',
        'gateway-token-aaaaaaaa',
        '0123456789',
      ]) {
        expect(res.text).not.toContain(secret)
      }
      expect(res.json()).toEqual({
        admin: { authentication: 'token', dashboard: true, sessionTtl: 28_800, serves: ['logs', 'keys'] },
        settings: {
          providers: { openai: { apiKey: '[REDACTED]', baseURL: 'https://api.openai.com/v1?[REDACTED]' } },
          authentication: { tokens: ['[REDACTED]'] },
          database: '[REDACTED]',
          masterKey: '[REDACTED]',
          timeouts: { firstByteMs: 30_000 },
          identify: '[function identify]',
        },
      })
    })

    it('accepts at the login whatever verify accepts, showing it the login request', async () => {
      const seen: string[] = []
      const app = await build(
        createAdmin({
          logs: createMemoryLogStore(),
          verify: (token, request) => {
            seen.push(`${request.method} ${request.path} ${token}`)
            return token === 'from-the-host-verify'
          },
        }),
        host,
      )
      running.push(app)
      const base = `${app.url}/ai-admin`
      const origin = app.url
      const res = await send(`${base}/session`, {
        method: 'POST',
        body: 'token=from-the-host-verify',
        headers: { ...FORM, origin },
      })
      expect(res.status).toBe(303)
      expect(seen).toEqual(['POST /session from-the-host-verify'])
    })

    it('leaves the root to the host with dashboard: false', async () => {
      const { base } = await start({ dashboard: false })
      const root = await send(`${base}/`)
      expect(root.text).toBe('host:/ai-admin/')
      const session = await send(`${base}/session`, { method: 'POST', body: `token=${TOKEN}`, headers: FORM })
      expect(session.text).toBe('host:/ai-admin/session')
      expect((await send(`${base}/logs`, { headers: auth })).status).toBe(200)
    })

    it('serves an open admin its app without a login, still refusing cross-site changes', async () => {
      const app = await build(createAdmin({ logs: createMemoryLogStore() }), host)
      running.push(app)
      const base = `${app.url}/ai-admin`
      const page = await send(`${base}/`)
      expect(page.text).toContain('<div id="app"></div>')
      expect(page.text).not.toContain('csrf-token')
      const { script } = assetsOf(page.text)
      expect((await send(`${base}/assets/${script}`)).status).toBe(200)
      const login = await send(`${base}/session`, { method: 'POST', body: { token: TOKEN } })
      expect(login.status).toBe(404)
      const cross = await send(`${base}/logs?all=true`, {
        method: 'DELETE',
        headers: { origin: 'https://evil.example' },
      })
      expect(cross.status).toBe(403)
      expect((await send(`${base}/logs?all=true`, { method: 'DELETE' })).status).toBe(200)
    })
  })
}

async function loginJson(base: string): Promise<{ cookie: string; body: unknown }> {
  const res = await send(`${base}/session`, { method: 'POST', body: { token: TOKEN } })
  expect(res.status, res.text).toBe(200)
  return { cookie: cookieOf(res.headers['set-cookie']), body: res.json() }
}

for (const { name, build, host } of ADMIN_MOUNTS) runDashboardScenarios(name, build, host)
