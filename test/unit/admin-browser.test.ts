import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { admit, isCrossOrigin } from '../../src/admin/access.js'
import { readCookie, sessionCookie } from '../../src/admin/cookies.js'
import { findDashboardDir, MANIFEST_NAME } from '../../src/admin/dashboard/assets.js'
import { acceptsGzip, mountPath } from '../../src/admin/dashboard/index.js'
import { escapeHtml } from '../../src/admin/dashboard/pages.js'
import { maskSettings } from '../../src/admin/mask.js'
import { createSessionStore, csrfMatches } from '../../src/admin/sessions.js'
import { parseOptions } from '../../src/options.js'
import type { GatewayRequest } from '../../src/types.js'

function request(init: Partial<GatewayRequest> = {}): GatewayRequest {
  return {
    method: 'GET',
    path: '/logs',
    search: '',
    headers: { host: 'gw.example:8080' },
    signal: new AbortController().signal,
    ...init,
  }
}

describe('dashboard sessions', () => {
  it('finds a session until it is revoked', () => {
    const sessions = createSessionStore({ ttlMs: 60_000 })
    const session = sessions.create()
    expect(session.id).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(session.csrfToken).not.toBe(session.id)
    expect(sessions.find(session.id)).toBe(session)
    expect(sessions.revoke(session.id)).toBe(true)
    expect(sessions.find(session.id)).toBeUndefined()
    expect(sessions.revoke(session.id)).toBe(false)
  })

  it('ends a session at its expiry, used or not', () => {
    let now = 1_000
    const sessions = createSessionStore({ ttlMs: 60_000, now: () => now })
    const session = sessions.create()
    expect(session.expiresAt).toBe(61_000)
    now = 60_999
    expect(sessions.find(session.id)).toBe(session)
    now = 61_000
    expect(sessions.find(session.id)).toBeUndefined()
    expect(sessions.size).toBe(0)
  })

  it('sweeps expired sessions at each login and keeps at most maxSessions, dropping the oldest', () => {
    let now = 0
    const sessions = createSessionStore({ ttlMs: 100, maxSessions: 3, now: () => now })
    const first = sessions.create()
    now = 50
    const [second, third] = [sessions.create(), sessions.create()]
    const fourth = sessions.create()
    expect(sessions.size).toBe(3)
    expect(sessions.find(first.id)).toBeUndefined()
    expect([second, third, fourth].every((session) => sessions.find(session.id) === session)).toBe(true)
    now = 200
    sessions.create()
    expect(sessions.size).toBe(1)
  })

  it('ignores cookie values that cannot be a session id', () => {
    const sessions = createSessionStore({ ttlMs: 60_000 })
    for (const id of [undefined, '', 'short', `${'a'.repeat(43)};`, 'a'.repeat(44)]) {
      expect(sessions.find(id)).toBeUndefined()
    }
  })

  it('compares CSRF tokens whole', () => {
    const session = createSessionStore({ ttlMs: 60_000 }).create()
    expect(csrfMatches(session, session.csrfToken)).toBe(true)
    expect(csrfMatches(session, session.csrfToken.slice(1))).toBe(false)
    expect(csrfMatches(session, `${session.csrfToken}x`)).toBe(false)
    expect(csrfMatches(session, undefined)).toBe(false)
  })
})

describe('the session cookie', () => {
  it('reads one cookie among several', () => {
    expect(readCookie('theme=dark; aigw_admin_session=abc; x=1', 'aigw_admin_session')).toBe('abc')
    expect(readCookie('xaigw_admin_session=abc', 'aigw_admin_session')).toBeUndefined()
    expect(readCookie(undefined, 'aigw_admin_session')).toBeUndefined()
  })

  it('is HttpOnly and SameSite=Strict, Secure when asked, and falls back to / for an unsafe path', () => {
    expect(sessionCookie('v', { path: '/ai-admin', secure: false }, 60)).toBe(
      'aigw_admin_session=v; Path=/ai-admin; Max-Age=60; HttpOnly; SameSite=Strict',
    )
    expect(sessionCookie('v', { path: '/a', secure: true }, 0)).toMatch(
      /; Max-Age=0; HttpOnly; SameSite=Strict; Secure$/,
    )
    expect(sessionCookie('v', { path: '/a;Domain=evil', secure: false }, 1)).toContain('; Path=/;')
    expect(sessionCookie('v', { path: '/a b', secure: false }, 1)).toContain('; Path=/;')
  })
})

describe('cross-origin checks', () => {
  const from = (headers: Record<string, string>) =>
    request({ method: 'POST', headers: { host: 'gw.example:8080', ...headers } })

  it.each([
    [{}, false],
    [{ origin: 'http://gw.example:8080' }, false],
    [{ origin: 'https://GW.example:8080' }, false],
    [{ origin: 'http://gw.example:9090' }, true],
    [{ origin: 'https://evil.example' }, true],
    [{ origin: 'null' }, true],
    [{ origin: 'null', 'sec-fetch-site': 'same-origin' }, false],
    [{ 'sec-fetch-site': 'same-site' }, true],
    [{ 'sec-fetch-site': 'cross-site', origin: 'http://gw.example:8080' }, true],
    [{ 'sec-fetch-site': 'none' }, false],
    [{ origin: 'https://public.example', 'x-forwarded-host': 'public.example, gw.internal' }, false],
    [{ origin: 'not a url' }, true],
  ])('%j is cross-origin: %s', (headers, expected) => {
    expect(isCrossOrigin(from(headers))).toBe(expected)
  })

  it('refuses cross-origin changes on an open admin, never reads', async () => {
    const evil = { host: 'gw.example:8080', origin: 'https://evil.example' }
    await expect(admit(undefined, undefined, request({ headers: evil }))).resolves.toEqual({ via: 'open' })
    await expect(
      admit(undefined, undefined, request({ method: 'PUT', headers: evil })),
    ).rejects.toMatchObject({
      key: 'CROSS_SITE_REFUSED',
      status: 403,
    })
  })
})

describe('maskSettings()', () => {
  it("masks every secret in the gateway's resolved options and keeps the rest", () => {
    const options = parseOptions({
      providers: {
        openai: { apiKey: 'sk-live-abcdefghijklmnopqrstuvwx', baseURL: 'https://proxy.example/v1' },
      },
      authentication: { tokens: ['gateway-token-0123456789abcdef'] },
      callerKeys: 'ignore',
      rateLimit: { limit: 60, window: 60 },
    })
    const masked = maskSettings(options) as Record<string, Record<string, unknown>>
    const text = JSON.stringify(masked)
    expect(text).not.toContain('sk-live')
    expect(text).not.toContain('gateway-token')
    expect(masked.providers).toEqual({
      openai: { apiKey: '[REDACTED]', baseURL: 'https://proxy.example/v1' },
    })
    expect(masked.callerKeys).toBe('ignore')
    expect(masked.rateLimit).toMatchObject({ limit: 60, window: 60 })
    expect(masked.timeouts).toMatchObject({ connectMs: 10_000 })
    expect(masked.now).toBe('[function now]')
  })

  it('masks connection strings, keys in URLs, bytes and key-shaped text wherever they are', () => {
    class Pool {}
    const cycle: Record<string, unknown> = { name: 'loop' }
    cycle.self = cycle
    expect(
      maskSettings({
        store: 'redis://:hunter2@cache.internal:6379',
        postgres: 'postgres://app:pw@db/logs',
        upstream: 'https://user:pw@api.example/v1',
        gemini: 'https://generativelanguage.googleapis.com/v1beta?key=AIzaSyA-secret',
        note: 'use Bearer abcdefghijklmnopqrstuvwxyz123456 here',
        masterKey: 'plain words are still masked under a secret name',
        bytes: new Uint8Array([1, 2, 3]),
        pool: new Pool(),
        methods: { get() {}, set() {} },
        when: new Date(0),
        cycle,
        list: Array.from({ length: 102 }, (_, i) => i),
      }),
    ).toEqual({
      store: '[REDACTED]',
      postgres: '[REDACTED]',
      upstream: '[REDACTED]',
      gemini: 'https://generativelanguage.googleapis.com/v1beta?[REDACTED]',
      note: 'use Bearer [REDACTED] here',
      masterKey: '[REDACTED]',
      bytes: '[REDACTED]',
      pool: '[Pool]',
      methods: '[object]',
      when: '1970-01-01T00:00:00.000Z',
      cycle: { name: 'loop', self: '[…]' },
      list: [...Array.from({ length: 100 }, (_, i) => i), '[… 2 more]'],
    })
  })
})

describe('dashboard helpers', () => {
  it('reads accept-encoding', () => {
    expect(acceptsGzip('gzip, deflate, br')).toBe(true)
    expect(acceptsGzip('br;q=1.0, gzip;q=0.8')).toBe(true)
    expect(acceptsGzip('*')).toBe(true)
    expect(acceptsGzip('gzip;q=0')).toBe(false)
    expect(acceptsGzip('br')).toBe(false)
    expect(acceptsGzip(undefined)).toBe(false)
  })

  it('finds the mount from the original URL', () => {
    expect(mountPath(request({ path: '/logs', originalUrl: '/ai-admin/logs?limit=5' }))).toBe('/ai-admin')
    expect(mountPath(request({ path: '/', originalUrl: '/ai-admin/' }))).toBe('/ai-admin')
    expect(mountPath(request({ path: '/', originalUrl: '/ai-admin' }))).toBe('/ai-admin')
    expect(mountPath(request({ path: '/', originalUrl: '/' }))).toBe('')
    expect(mountPath(request({ path: '/logs' }))).toBeUndefined()
  })

  it('escapes HTML', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe(
      '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;',
    )
  })

  it("finds the built dashboard in its package's dist, and nowhere else", () => {
    const root = mkdtempSync(join(tmpdir(), 'aigw-dashboard-'))
    writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'ai-gateway-middleware' }))
    mkdirSync(join(root, 'dist', 'dashboard', 'assets'), { recursive: true })
    mkdirSync(join(root, 'dist', 'src'), { recursive: true })
    expect(findDashboardDir(join(root, 'dist', 'src'))).toBeUndefined()
    writeFileSync(join(root, 'dist', 'dashboard', 'manifest.json'), JSON.stringify({ name: MANIFEST_NAME }))
    expect(findDashboardDir(join(root, 'dist', 'src'))).toBe(join(root, 'dist', 'dashboard'))
    expect(findDashboardDir(join(root, 'dist'))).toBe(join(root, 'dist', 'dashboard'))
    const other = mkdtempSync(join(tmpdir(), 'aigw-other-'))
    writeFileSync(join(other, 'package.json'), JSON.stringify({ name: 'someone-else' }))
    expect(findDashboardDir(other)).toBeUndefined()
  })
})
