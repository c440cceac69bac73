import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AdminOptions, createAdmin } from '../../src/admin/index.js'
import { uuidv7 } from '../../src/ids.js'
import { createKeyRing, type KeyRing } from '../../src/keys/key-ring.js'
import { createMemorySecretStore } from '../../src/keys/memory-store.js'
import { KeyStoreError } from '../../src/keys/types.js'
import { createMemoryLogStore } from '../../src/logs/memory-store.js'
import type { LogRecord, LogStore } from '../../src/logs/types.js'
import { createPostgresLogStore } from '../../src/postgres/log-store.js'
import type { GatewayRequest, GatewayResponse } from '../../src/types.js'
import { ADMIN_MOUNTS, type BuildAdminApp, buildExpressAdmin } from '../helpers/admin-apps.js'
import { type RunningApp, send } from '../helpers/http.js'
import { sampleRecord } from '../helpers/log-store.js'
import { DATABASE_URL, uniqueName } from '../helpers/services.js'

const TOKEN = 'admin-token-0123456789abcdef'
const CANARY = 'sk-canary-7f3e9d2b1c8a4e6f0d5b'
const BASE_TIME = Date.UTC(2025, 0, 1)

function logRecord(offsetMs: number, overrides: Partial<LogRecord> = {}): LogRecord {
  return sampleRecord({
    createdAt: BASE_TIME + offsetMs,
    durationMs: 100,
    ttfbMs: 40,
    tokensIn: 10,
    tokensOut: 20,
    cost: 0.001,
    metadata: { team: 'search' },
    requestSize: 120,
    responseSize: 480,
    requestBody: '{"messages":[{"role":"user","content":"hi"}]}',
    responseBody: '{"choices":[{"message":{"content":"hello"}}]}',
    ...overrides,
  })
}

function anthropic(success: boolean): Partial<LogRecord> {
  return {
    provider: 'anthropic',
    model: 'claude-sonnet-4-5',
    metadata: { team: 'ads' },
    success,
    statusCode: success ? 200 : 500,
    outcome: success ? 'success' : 'upstream_error',
  }
}

/** Three OpenAI records and two Anthropic ones (one failed), a second apart. */
function seedRecords(): LogRecord[] {
  return [
    logRecord(1000),
    logRecord(2000),
    logRecord(3000, anthropic(false)),
    logRecord(4000),
    logRecord(5000, anthropic(true)),
  ]
}

async function seededStores(): Promise<{ logs: LogStore; keys: KeyRing; records: LogRecord[] }> {
  const logs = createMemoryLogStore()
  const records = seedRecords()
  await logs.write(records)
  const keys = createKeyRing({ store: createMemorySecretStore(), masterKey: randomBytes(32) })
  return { logs, keys, records }
}

const auth = { authorization: `Bearer ${TOKEN}` }
const filtersParam = (filters: unknown[]) => `filters=${encodeURIComponent(JSON.stringify(filters))}`

/** One table of admin scenarios, run against every framework so the mounts cannot drift apart. */
function runAdminScenarios(framework: string, build: BuildAdminApp, host: { bodyParser: boolean }): void {
  describe(`${framework}: admin API (host body parser ${host.bodyParser ? 'present' : 'absent'})`, () => {
    const running: RunningApp[] = []
    afterAll(() => Promise.all(running.map((app) => app.close())))

    async function start(options: Partial<AdminOptions> = {}) {
      const { logs, keys, records } = await seededStores()
      const app = await build(createAdmin({ logs, keys, token: TOKEN, ...options }), host)
      running.push(app)
      return { keys, records, base: `${app.url}/ai-admin` }
    }

    it('answers 401 (code 2009) without a token and with a wrong one, and tells nothing more', async () => {
      const { base } = await start()
      const answers = await Promise.all([
        send(`${base}/logs`),
        send(`${base}/logs`, { headers: { authorization: `Bearer ${TOKEN.slice(0, -1)}x` } }),
        send(`${base}/logs`, { headers: { authorization: 'Bearer short' } }),
        send(`${base}/keys`, { headers: { authorization: TOKEN } }),
      ])
      for (const res of answers) {
        expect(res.status).toBe(401)
        expect(res.json()).toMatchObject({ error: [{ code: 2009, message: 'Unauthorized' }] })
        expect(res.headers['www-authenticate']).toBe('Bearer')
      }
      expect(new Set(answers.map((res) => res.text)).size).toBe(1)
    })

    it('lists logs with a filter, newest first, page by page', async () => {
      const { base, records } = await start()
      const openai = filtersParam([{ field: 'provider', op: 'eq', value: 'openai' }])
      const first = await send(`${base}/logs?${openai}&limit=2`, { headers: auth })
      expect(first.status).toBe(200)
      expect(first.headers['content-type']).toBe('application/json')
      expect(Number(first.headers['content-length'])).toBe(Buffer.byteLength(first.text))
      const page = first.json() as { records: LogRecord[]; nextCursor: string | null }
      expect(page.records.map((record) => record.id)).toEqual([records[3]!.id, records[1]!.id])
      expect(page.records[0]?.requestBody).toBeNull()
      expect(page.nextCursor).toEqual(expect.any(String))

      const cursor = encodeURIComponent(page.nextCursor!)
      const second = await send(`${base}/logs?${openai}&limit=2&cursor=${cursor}&includeBodies=true`, {
        headers: auth,
      })
      expect(second.json()).toEqual({
        records: [expect.objectContaining({ id: records[0]!.id, requestBody: records[0]!.requestBody })],
        nextCursor: null,
      })
    })

    it('refuses a bad query with 400 (code 2120) naming the field', async () => {
      const { base } = await start()
      const res = await send(`${base}/logs?${filtersParam([{ field: 'cost', op: 'contains', value: 1 }])}`, {
        headers: auth,
      })
      expect(res.status).toBe(400)
      expect(res.json()).toMatchObject({ internalCode: 2120 })
      expect(res.json()).toMatchObject({ message: expect.stringContaining('filters.0.op') })
      const unknown = await send(`${base}/logs?colour=red`, { headers: auth })
      expect(unknown.status).toBe(400)
      expect(unknown.json()).toMatchObject({ internalCode: 2120 })
    })

    it('reads one log with its bodies, and answers 404 (code 2118) for an unknown id', async () => {
      const { base, records } = await start()
      const res = await send(`${base}/logs/${records[2]!.id}`, { headers: auth })
      expect(res.status).toBe(200)
      expect(res.json()).toMatchObject({
        id: records[2]!.id,
        provider: 'anthropic',
        requestBody: records[2]!.requestBody,
      })
      const missing = await send(`${base}/logs/${uuidv7()}`, { headers: auth })
      expect(missing.status).toBe(404)
      expect(missing.json()).toMatchObject({ internalCode: 2118 })
    })

    it('patches feedback and score; a bad score is 400 (code 2120), bad JSON 400 (code 2112)', async () => {
      const { base, records } = await start()
      const url = `${base}/logs/${records[0]!.id}`
      const patched = await send(url, { method: 'PATCH', body: { feedback: 1, score: 90 }, headers: auth })
      expect(patched.status).toBe(200)
      expect(patched.json()).toMatchObject({ id: records[0]!.id, feedback: 1, score: 90 })
      expect((await send(url, { headers: auth })).json()).toMatchObject({ feedback: 1, score: 90 })

      const badScore = await send(url, { method: 'PATCH', body: { score: 101 }, headers: auth })
      expect(badScore.status).toBe(400)
      expect(badScore.json()).toMatchObject({ internalCode: 2120, message: expect.stringContaining('score') })

      // As text it passes any host parser; as JSON a host parser refuses it, and the handler answers.
      for (const contentType of ['text/plain', 'application/json']) {
        const badJson = await send(url, {
          method: 'PATCH',
          body: '{"score": ',
          headers: { ...auth, 'content-type': contentType },
        })
        expect(badJson.status, contentType).toBe(400)
        expect(badJson.json()).toMatchObject({ internalCode: 2112 })
      }

      const missing = await send(`${base}/logs/${uuidv7()}`, {
        method: 'PATCH',
        body: { score: 1 },
        headers: auth,
      })
      expect(missing.status).toBe(404)
    })

    it('deletes by filter, and deletes everything only with all=true', async () => {
      const { base } = await start()
      const anthropic = filtersParam([{ field: 'provider', op: 'eq', value: 'anthropic' }])
      const byFilter = await send(`${base}/logs?${anthropic}`, { method: 'DELETE', headers: auth })
      expect(byFilter.status).toBe(200)
      expect(byFilter.json()).toEqual({ deleted: 2 })

      const unguarded = await send(`${base}/logs`, { method: 'DELETE', headers: auth })
      expect(unguarded.status).toBe(400)
      expect(unguarded.json()).toMatchObject({
        internalCode: 2120,
        message: expect.stringContaining('all=true'),
      })
      const emptyFilters = await send(`${base}/logs?filters=%5B%5D`, { method: 'DELETE', headers: auth })
      expect(emptyFilters.status).toBe(400)

      const all = await send(`${base}/logs?all=true`, { method: 'DELETE', headers: auth })
      expect(all.json()).toEqual({ deleted: 3 })
      expect((await send(`${base}/logs`, { headers: auth })).json()).toEqual({
        records: [],
        nextCursor: null,
      })
    })

    it('reports analytics grouped by provider', async () => {
      const { base } = await start()
      const res = await send(`${base}/analytics?groupBy=provider`, { headers: auth })
      expect(res.status).toBe(200)
      const { rows } = res.json() as { rows: Array<Record<string, unknown>> }
      expect(rows).toEqual([
        expect.objectContaining({ group: { provider: 'anthropic' }, requests: 2, errors: 1, tokensIn: 20 }),
        expect.objectContaining({ group: { provider: 'openai' }, requests: 3, errors: 0, tokensOut: 60 }),
      ])
      const bad = await send(`${base}/analytics?groupBy=colour`, { headers: auth })
      expect(bad.status).toBe(400)
      expect(bad.json()).toMatchObject({ internalCode: 2120 })
    })

    it('stores, lists and deletes provider keys without ever answering with the secret', async () => {
      const { base, keys } = await start()
      const texts: string[] = []
      const call = async (path: string, init: Parameters<typeof send>[1] = {}) => {
        const res = await send(`${base}${path}`, { ...init, headers: { ...auth, ...init.headers } })
        texts.push(res.text, JSON.stringify(res.headers))
        return res
      }

      const created = await call('/keys/openai/default', { method: 'PUT', body: { secret: CANARY } })
      expect(created.status).toBe(201)
      expect(created.json()).toMatchObject({ provider: 'openai', alias: 'default', hint: 'sk-…0d5b' })
      const replaced = await call('/keys/openai/default', { method: 'PUT', body: { secret: `${CANARY}-2` } })
      expect(replaced.status).toBe(200)
      await call('/keys/anthropic/team-a', { method: 'PUT', body: { secret: CANARY } })
      expect(await keys.getSecret('openai', 'default')).toBe(`${CANARY}-2`)

      const listed = await call('/keys')
      expect((listed.json() as { keys: unknown[] }).keys).toEqual([
        expect.objectContaining({ provider: 'anthropic', alias: 'team-a' }),
        expect.objectContaining({ provider: 'openai', alias: 'default' }),
      ])
      const openaiOnly = await call('/keys?provider=openai')
      expect((openaiOnly.json() as { keys: unknown[] }).keys).toHaveLength(1)

      const unsafe = await call('/keys/openai/other', { method: 'PUT', body: { secret: `${CANARY}\n` } })
      expect(unsafe.status).toBe(400)
      expect(unsafe.json()).toMatchObject({ internalCode: 2112 })
      const extra = await call('/keys/openai/other', {
        method: 'PUT',
        body: { secret: CANARY, note: CANARY },
      })
      expect(extra.status).toBe(400)
      const broken = await call('/keys/openai/other', {
        method: 'PUT',
        body: `{"secret": "${CANARY}`,
        headers: { 'content-type': 'text/plain' },
      })
      expect(broken.status).toBe(400)
      const badAlias = await call('/keys/openai/Not%20A%20Slug', { method: 'PUT', body: { secret: CANARY } })
      expect(badAlias.status).toBe(400)
      expect(badAlias.json()).toMatchObject({ internalCode: 2120 })

      expect((await call('/keys/openai/default', { method: 'DELETE' })).status).toBe(204)
      const gone = await call('/keys/openai/default', { method: 'DELETE' })
      expect(gone.status).toBe(404)
      expect(gone.json()).toMatchObject({ internalCode: 2118 })

      // The hint shows the first 3 and last 4 characters; nothing between them may ever come back.
      for (const text of texts) expect(text).not.toContain(CANARY.slice(3, -4))
    })

    it('answers 405 (code 2119) with allow for a known path and a wrong method', async () => {
      const { base } = await start()
      const logs = await send(`${base}/logs`, { method: 'PATCH', body: {}, headers: auth })
      expect(logs.status).toBe(405)
      expect(logs.headers.allow).toBe('GET, DELETE')
      expect(logs.json()).toMatchObject({ internalCode: 2119 })
      const key = await send(`${base}/keys/openai/default`, { method: 'POST', body: {}, headers: auth })
      expect(key.status).toBe(405)
      expect(key.headers.allow).toBe('PUT, DELETE')
    })

    it('leaves paths it does not serve to the host', async () => {
      const { base } = await start()
      for (const path of ['/status', '/logs/', '/assets']) {
        const res = await send(`${base}${path}?x=1`)
        expect(res.status).toBe(200)
        expect(res.text).toBe(`host:/ai-admin${path}?x=1`)
      }
    })

    it('answers 404 naming what is missing when the admin has no log store or key ring', async () => {
      const app = await build(createAdmin({ token: TOKEN }), host)
      running.push(app)
      const logs = await send(`${app.url}/ai-admin/logs`, { headers: auth })
      expect(logs.status).toBe(404)
      expect(logs.json()).toMatchObject({
        internalCode: 2118,
        message: expect.stringContaining('no log store'),
      })
      const keys = await send(`${app.url}/ai-admin/keys`, { headers: auth })
      expect(keys.json()).toMatchObject({ message: expect.stringContaining('no key ring') })
    })
  })
}

for (const { name, build, host } of ADMIN_MOUNTS) runAdminScenarios(name, build, host)

function adminRequest(path: string, init: Partial<GatewayRequest> = {}): GatewayRequest {
  const [pathname = path, query] = path.split('?')
  return {
    method: 'GET',
    path: pathname,
    search: query === undefined ? '' : `?${query}`,
    headers: { authorization: `Bearer ${TOKEN}` },
    signal: new AbortController().signal,
    ...init,
  }
}

function json(response: GatewayResponse | undefined): Record<string, unknown> {
  return JSON.parse(String(response?.body))
}

type StoreKind = 'memory' | 'postgres'

/** Reference-shaped filters and cost sums, through the admin's HTTP API, against both log stores. */
for (const kind of ['memory', 'postgres'] as const satisfies readonly StoreKind[]) {
  describe.skipIf(kind === 'postgres' && !DATABASE_URL)(`admin API on the ${kind} log store`, () => {
    const schema = uniqueName('admin')
    const running: RunningApp[] = []
    let pool: pg.Pool | undefined
    let tables = 0

    beforeAll(() => {
      if (kind === 'postgres') pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 })
    })
    afterAll(async () => {
      await Promise.all(running.map((app) => app.close()))
      if (pool === undefined) return
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      await pool.end()
    })

    async function start(records: LogRecord[]) {
      const logs =
        pool === undefined
          ? createMemoryLogStore()
          : await createPostgresLogStore(pool, { schema, table: `logs_${++tables}` })
      await logs.write(records)
      const app = await buildExpressAdmin(createAdmin({ logs, token: TOKEN }), { bodyParser: false })
      running.push(app)
      return `${app.url}/ai-admin`
    }

    const ids = async (url: string) => {
      const res = await send(url, { headers: auth })
      expect(res.status, res.text).toBe(200)
      return (res.json() as { records: LogRecord[] }).records.map((record) => record.id)
    }

    it("lists, deletes and reports analytics with the reference's { key, operator, value: [v] } filters", async () => {
      const records = seedRecords()
      const base = await start(records)
      const id = (i: number) => records[i]!.id
      const reference = (key: string, operator: string, value: unknown) => ({ key, operator, value: [value] })
      expect(await ids(`${base}/logs?${filtersParam([reference('provider', 'eq', 'anthropic')])}`)).toEqual([
        id(4),
        id(2),
      ])
      // Both shapes in one list, ANDed.
      const mixed = [reference('success', 'eq', false), { field: 'metadata.team', op: 'eq', value: 'ads' }]
      expect(await ids(`${base}/logs?${filtersParam(mixed)}`)).toEqual([id(2)])
      const since = reference('created_at', 'gt', new Date(BASE_TIME + 3000).toISOString())
      expect(await ids(`${base}/logs?${filtersParam([since])}`)).toEqual([id(4), id(3)])
      const byMs = reference('created_at', 'lt', BASE_TIME + 2000)
      expect(await ids(`${base}/logs?${filtersParam([byMs])}`)).toEqual([id(0)])
      const ads = reference('metadata.value', 'contains', 'ad')
      expect(await ids(`${base}/logs?${filtersParam([ads])}`)).toEqual([id(4), id(2)])
      const tokens = reference('tokens_in', 'gt', '5')
      expect(await ids(`${base}/logs?${filtersParam([tokens])}`)).toHaveLength(5)

      const notOpenai = filtersParam([reference('provider', 'neq', 'openai')])
      const analytics = await send(`${base}/analytics?groupBy=provider&${notOpenai}`, { headers: auth })
      expect((analytics.json() as { rows: unknown[] }).rows).toEqual([
        expect.objectContaining({ group: { provider: 'anthropic' }, requests: 2 }),
      ])
      const claude = filtersParam([reference('model', 'contains', 'claude')])
      const deleted = await send(`${base}/logs?${claude}`, { method: 'DELETE', headers: auth })
      expect(deleted.json()).toEqual({ deleted: 2 })
      expect(await ids(`${base}/logs`)).toEqual([id(3), id(1), id(0)])
    })

    it("filters on guard actions, the reference's dlp_action among them", async () => {
      const finding = {
        check: 'REQUEST' as const,
        profileId: 'pii',
        entryId: 'credit-card',
        policyIds: ['block-pii'],
        path: '/messages/0/content',
        start: 0,
        end: 19,
      }
      const records = [
        logRecord(1000, { guard: { dlp: { action: 'BLOCK', findings: [finding] } } }),
        logRecord(2000, { guard: { guardrails: { action: 'UNAVAILABLE', unavailable: ['prompt'] } } }),
        logRecord(3000),
      ]
      const base = await start(records)
      const dlpAction = (value: string) =>
        filtersParam([{ key: 'dlp_action', operator: 'eq', value: [value] }])
      expect(await ids(`${base}/logs?${dlpAction('BLOCK')}`)).toEqual([records[0]!.id])
      expect(await ids(`${base}/logs?${dlpAction('FLAG')}`)).toEqual([])
      const listed = await send(`${base}/logs?${dlpAction('BLOCK')}`, { headers: auth })
      expect((listed.json() as { records: LogRecord[] }).records[0]?.guard).toEqual(records[0]!.guard)
      const notDown = filtersParam([{ field: 'guardrailAction', op: 'neq', value: 'UNAVAILABLE' }])
      expect(await ids(`${base}/logs?${notDown}`)).toEqual([records[2]!.id, records[0]!.id])
      const analytics = await send(`${base}/analytics?${dlpAction('BLOCK')}`, { headers: auth })
      expect((analytics.json() as { rows: unknown[] }).rows).toEqual([
        expect.objectContaining({ requests: 1 }),
      ])
      const wrong = await send(`${base}/logs?${dlpAction('ALLOW')}`, { headers: auth })
      expect(wrong.status).toBe(400)
      expect(wrong.json()).toMatchObject({
        internalCode: 2120,
        message: expect.stringContaining('FLAG, REDACT, BLOCK'),
      })
    })

    it.each([
      [
        [{ key: 'user_agent', operator: 'eq', value: ['x'] }],
        "filters.0: filter on 'user_agent': the gateway does not record user_agent",
      ],
      [
        [{ key: 'colour', operator: 'eq', value: ['red'] }],
        "filters.0: filter on 'colour': unknown key; expected created_at, success",
      ],
      [
        [{ key: 'provider', operator: 'like', value: ['x'] }],
        'operator must be one of eq, neq, contains, lt, gt, got "like"',
      ],
      [[{ key: 'provider', operator: 'eq', value: 'openai' }], 'value must be an array of exactly one value'],
      [
        [{ key: 'provider', operator: 'eq', value: ['openai', 'anthropic'] }],
        'value must be an array of exactly one value',
      ],
      [[{ key: 'feedback', operator: 'eq', value: [null] }], 'must be a string, number or boolean, got null'],
      [
        [{ key: 'cost', operator: 'contains', value: [1] }],
        "'contains' does not apply to cost; use eq, neq, lt, gt",
      ],
      [
        [{ key: 'created_at', operator: 'gt', value: ['2025-01-01T00:00:00'] }],
        'ISO 8601 date-time with its zone',
      ],
      // Not rolled over into March 1.
      [[{ key: 'created_at', operator: 'lt', value: ['2024-02-30'] }], 'ISO 8601 date-time with its zone'],
      [[{ key: 'created_at', operator: 'lt', value: ['2023-02-29T00:00Z'] }], 'ISO 8601 date-time'],
      [[{ key: 'provider', operator: 'eq', value: ['x'], values: ['y'] }], 'unexpected "values"'],
      [
        [
          { field: 'provider', op: 'eq', value: 'openai' },
          { key: 7, operator: 'eq', value: ['x'] },
        ],
        'filters.1: filter: key must be a string',
      ],
      [[{ key: 'tokens_in', operator: 'lt', value: ['many'] }], 'filters.0.value'],
    ])(
      'refuses a malformed reference filter with 400 (code 2120) naming it: %j',
      async (filters, message) => {
        const base = await start([])
        for (const [method, path] of [
          ['GET', '/logs'],
          ['DELETE', '/logs'],
          ['GET', '/analytics'],
        ] as const) {
          const res = await send(`${base}${path}?${filtersParam(filters)}`, { method, headers: auth })
          expect(res.status, `${method} ${path}`).toBe(400)
          expect(res.json()).toMatchObject({ internalCode: 2120, message: expect.stringContaining(message) })
        }
      },
    )

    it('sums costs exactly in analytics', async () => {
      // 22 gpt-4o-mini prompt tokens each: summed as floats, 1000 of them are 0.003299999999999948.
      const records = Array.from({ length: 1000 }, (_, i) => logRecord(i, { cost: 0.0000033 }))
      const base = await start([...records, logRecord(2000, anthropic(true))])
      const res = await send(`${base}/analytics?groupBy=provider`, { headers: auth })
      expect((res.json() as { rows: unknown[] }).rows).toEqual([
        expect.objectContaining({ group: { provider: 'anthropic' }, cost: 0.001 }),
        expect.objectContaining({ group: { provider: 'openai' }, requests: 1000, cost: 0.0033 }),
      ])
      expect(res.text).toContain('"cost":0.0033,')
    })
  })
}

describe('createAdmin()', () => {
  it('refuses wrong options with a TypeError naming the option, never quoting a token', () => {
    expect(() => createAdmin({ token: 'too-short' })).toThrow(TypeError)
    expect(() => createAdmin({ token: 'too-short' })).toThrow(/token/)
    expect(() => createAdmin({ token: 'too-short' })).not.toThrow(/too-short/)
    expect(() => createAdmin({ token: [] })).toThrow(/token/)
    expect(() => createAdmin({ logs: {} as LogStore })).toThrow(/logs: expected a LogStore/)
    expect(() => createAdmin({ keys: {} as KeyRing })).toThrow(/keys: expected a KeyRing/)
    expect(() => createAdmin({ verify: 'yes' as never })).toThrow(/verify/)
    // An unset environment variable or a misspelt option would otherwise leave the admin open.
    expect(() => createAdmin({ token: process.env.UNSET_ADMIN_TOKEN_VARIABLE! })).toThrow(
      /token: is undefined/,
    )
    expect(() => createAdmin({ tokens: TOKEN } as AdminOptions)).toThrow(/tokens/)
  })

  it('is open without token and verify', async () => {
    const { logs } = await seededStores()
    const admin = createAdmin({ logs })
    const response = await admin.handle(adminRequest('/logs?limit=1', { headers: {} }))
    expect(response?.status).toBe(200)
    expect(response?.headers['cache-control']).toBe('no-store')
  })

  it('accepts any of several tokens, then asks verify', async () => {
    const { logs } = await seededStores()
    const other = 'second-token-0123456789abcdef'
    const seen: string[] = []
    const admin = createAdmin({
      logs,
      token: [TOKEN, other],
      verify: (token) => {
        seen.push(token)
        return token === 'from-verify'
      },
    })
    const as = (token: string) =>
      admin.handle(adminRequest('/logs', { headers: { authorization: `bearer ${token}` } }))
    expect((await as(TOKEN))?.status).toBe(200)
    expect((await as(other))?.status).toBe(200)
    expect((await as('from-verify'))?.status).toBe(200)
    expect((await as('nope'))?.status).toBe(401)
    expect(seen).toEqual(['from-verify', 'nope'])
  })

  it('answers undefined for paths it does not serve, before checking the token', async () => {
    const admin = createAdmin({ token: TOKEN })
    for (const path of ['/other', '/logs/', '/keys/openai', '//logs', '/assets', '/assets/a/b.js']) {
      expect(await admin.handle(adminRequest(path, { headers: {} }))).toBeUndefined()
    }
  })

  it('caps the body at 1 MiB', async () => {
    const { logs, records } = await seededStores()
    const admin = createAdmin({ logs })
    const body = JSON.stringify({ metadata: { note: 'x'.repeat(1024 * 1024) } })
    const response = await admin.handle(adminRequest(`/logs/${records[0]!.id}`, { method: 'PATCH', body }))
    expect(response?.status).toBe(413)
    let askedFor = 0
    const reader = async (limitBytes: number) => {
      askedFor = limitBytes
      return Buffer.from('{"score":5}')
    }
    const patched = await admin.handle(
      adminRequest(`/logs/${records[0]!.id}`, { method: 'PATCH', body: reader }),
    )
    expect(askedFor).toBe(1024 * 1024)
    expect(json(patched)).toMatchObject({ score: 5 })
  })

  it('answers 503 (code 2117) without backend detail when the key store is down', async () => {
    const keys = {
      ...createKeyRing({ store: createMemorySecretStore(), masterKey: randomBytes(32) }),
      listKeys: () =>
        Promise.reject(
          new KeyStoreError('store-unavailable', 'Redis secret store call failed: 10.0.0.7:6379'),
        ),
    }
    const response = await createAdmin({ keys }).handle(adminRequest('/keys'))
    expect(response?.status).toBe(503)
    expect(json(response)).toMatchObject({ internalCode: 2117 })
    expect(String(response?.body)).not.toContain('10.0.0.7')
  })

  it('rejects on errors it cannot classify, for the host to handle', async () => {
    const { logs } = await seededStores()
    const failing = { ...logs, list: () => Promise.reject(new Error('connection refused')) }
    await expect(createAdmin({ logs: failing }).handle(adminRequest('/logs'))).rejects.toThrow(
      'connection refused',
    )
  })
})
