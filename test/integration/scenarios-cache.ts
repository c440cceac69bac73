import { once } from 'node:events'
import { type IncomingMessage, request as rawRequest } from 'node:http'
import { expect, it, onTestFinished } from 'vitest'
import {
  openaiChunk,
  openaiStream,
  pump,
  SSE_HEADERS,
  startFaultServer,
  startRawServer,
  writeAsync,
  writeEvents,
} from '../helpers/fault-server.js'
import { send } from '../helpers/http.js'
import { chat, type World } from './scenarios.js'

const CHAT = '/ai/openai/chat/completions'
const CACHE_ON = { cache: { ttl: 600 } }
const byTenantHeader = {
  identify: (_host: unknown, request: { headers: Record<string, string | undefined> }) => ({
    tenant: request.headers['x-tenant'],
  }),
}

/** Cache and rate limits: the same table for every framework. */
export function cacheScenarios(world: World): void {
  it('cache: a repeated request is a HIT with the same answer and no provider call', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start(CACHE_ON)
    const body = chat('cache me')
    const first = await send(`${url}${CHAT}`, { body })
    const second = await send(`${url}${CHAT}`, { body })
    expect(first.headers['cf-aig-cache-status']).toBe('MISS')
    expect(second.headers['cf-aig-cache-status']).toBe('HIT')
    expect(second.status).toBe(200)
    expect(second.text).toBe(first.text)
    expect(second.headers['content-type']).toBe(first.headers['content-type'])
    expect(second.headers['cf-aig-request-id']).not.toBe(first.headers['cf-aig-request-id'])
    expect(mock.calls).toHaveLength(1)
  })

  it('cache: off without a TTL; key order in the body does not split entries', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start()
    const off = await send(`${url}${CHAT}`, { body: chat('no cache') })
    expect(off.headers['cf-aig-cache-status']).toBeUndefined()
    const withTtl = { 'cf-aig-cache-ttl': '60' }
    await send(`${url}${CHAT}`, { body: '{"model":"m","messages":[],"n":1}', headers: withTtl })
    const reordered = await send(`${url}${CHAT}`, {
      body: '{"n":1,"messages":[],"model":"m"}',
      headers: withTtl,
    })
    expect(reordered.headers['cf-aig-cache-status']).toBe('HIT')
    expect(mock.calls).toHaveLength(2)
  })

  it('cache: integers past 2^53 that differ (a seed) are different requests, not one entry', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start(CACHE_ON)
    // Both read as 9007199254740992 once parsed; a provider keeping integers whole sees two seeds.
    const seeded = (seed: string) => `{"model":"gpt-4o-mini","messages":[],"seed":${seed}}`
    const first = await send(`${url}${CHAT}`, { body: seeded('9007199254740993') })
    const second = await send(`${url}${CHAT}`, { body: seeded('9007199254740992') })
    expect([first, second].map((res) => res.headers['cf-aig-cache-status'])).toEqual(['MISS', 'MISS'])
    expect(
      (await send(`${url}${CHAT}`, { body: seeded('9007199254740993') })).headers['cf-aig-cache-status'],
    ).toBe('HIT')
    expect(mock.calls).toHaveLength(2)
  })

  it('cache: cf-aig-skip-cache goes to the provider and writes the fresh answer back', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start(CACHE_ON)
    const body = chat('skip')
    await send(`${url}${CHAT}`, { body })
    mock.enqueue({ reply: 'fresh answer' })
    const skipped = await send(`${url}${CHAT}`, { body, headers: { 'cf-aig-skip-cache': 'true' } })
    expect(skipped.headers['cf-aig-cache-status']).toBe('MISS')
    expect(skipped.text).toContain('fresh answer')
    const after = await send(`${url}${CHAT}`, { body })
    expect(after.headers['cf-aig-cache-status']).toBe('HIT')
    expect(after.text).toContain('fresh answer')
    expect(mock.calls).toHaveLength(2)
  })

  it('cache: cf-aig-cache-key opts in without a gateway TTL and shares one entry across bodies', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start()
    const headers = { 'cf-aig-cache-key': 'greeting-v1' }
    const first = await send(`${url}${CHAT}`, { body: chat('hello'), headers })
    const second = await send(`${url}${CHAT}`, { body: chat('a different prompt'), headers })
    expect(first.headers['cf-aig-cache-status']).toBe('MISS')
    expect(second.headers['cf-aig-cache-status']).toBe('HIT')
    expect(second.text).toContain('mock reply to: hello')
    expect(mock.calls).toHaveLength(1)
  })

  it('cache: TTL and skip headers out of range are a 400 naming the header', async () => {
    const url = await world.start()
    for (const [header, value] of [
      ['cf-aig-cache-ttl', '59'],
      ['cf-aig-cache-ttl', '2592001'],
      ['cf-aig-cache-ttl', 'soon'],
      ['cf-aig-skip-cache', 'yes'],
      ['cf-aig-cache-key', 'has space'],
    ] as const) {
      const res = await send(`${url}${CHAT}`, { body: chat('x'), headers: { [header]: value } })
      expect(res.status, `${header}: ${value}`).toBe(400)
      expect(res.json()).toMatchObject({ error: [{ code: 2100, message: expect.stringContaining(header) }] })
    }
    const zero = await send(`${url}${CHAT}`, { body: chat('x'), headers: { 'cf-aig-cache-ttl': '0' } })
    expect(zero.headers['cf-aig-cache-status']).toBeUndefined()
  })

  it('cache: tenants and provider keys never share entries, custom keys included', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start({ ...CACHE_ON, ...byTenantHeader })
    const body = chat('tenant question')
    const ask = (headers: Record<string, string>) => send(`${url}${CHAT}`, { body, headers })
    expect((await ask({ 'x-tenant': 'acme' })).headers['cf-aig-cache-status']).toBe('MISS')
    expect((await ask({ 'x-tenant': 'globex' })).headers['cf-aig-cache-status']).toBe('MISS')
    expect((await ask({ 'x-tenant': 'acme' })).headers['cf-aig-cache-status']).toBe('HIT')
    const own = { 'x-tenant': 'acme', authorization: 'Bearer sk-client-1' }
    expect((await ask(own)).headers['cf-aig-cache-status']).toBe('MISS')
    expect((await ask({ ...own, authorization: 'Bearer sk-client-2' })).headers['cf-aig-cache-status']).toBe(
      'MISS',
    )
    const custom = { 'cf-aig-cache-key': 'shared-name' }
    expect((await ask({ 'x-tenant': 'acme', ...custom })).headers['cf-aig-cache-status']).toBe('MISS')
    expect((await ask({ 'x-tenant': 'globex', ...custom })).headers['cf-aig-cache-status']).toBe('MISS')
    expect(mock.calls).toHaveLength(6)
  })

  it('cache: a tenant and a user named alike never share entries; an empty tenant or a numeric id still scopes', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start({
      ...CACHE_ON,
      identify: (_host: unknown, request: { headers: Record<string, string | undefined> }) => {
        const { 'x-user': id, 'x-tenant': tenant, 'x-number': number } = request.headers
        // A host in plain JavaScript may hand over its database's numeric ids.
        if (number !== undefined) return { id: Number(number) } as unknown as { id: string }
        return { id, tenant }
      },
    })
    const body = chat('whose answer')
    const ask = async (headers: Record<string, string>) => {
      const res = await send(`${url}${CHAT}`, { body, headers })
      return `${res.status} ${res.headers['cf-aig-cache-status']}`
    }
    expect(await ask({ 'x-tenant': '7' })).toBe('200 MISS')
    expect(await ask({ 'x-user': '7' })).toBe('200 MISS')
    expect(await ask({})).toBe('200 MISS')
    expect(await ask({ 'x-user': 'ann', 'x-tenant': '' })).toBe('200 MISS')
    expect(await ask({ 'x-number': '42' })).toBe('200 MISS')
    expect(await ask({ 'x-number': '42' })).toBe('200 HIT')
    expect(await ask({ 'x-user': '42' })).toBe('200 HIT')
    expect(mock.calls).toHaveLength(5)
  })

  it('cache: a stream is recorded and replayed as SSE; a whole answer never serves a stream', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start(CACHE_ON)
    const streamed = chat('stream it', { stream: true })
    const first = await send(`${url}${CHAT}`, { body: streamed })
    const replay = await send(`${url}${CHAT}`, { body: streamed })
    expect(replay.headers['cf-aig-cache-status']).toBe('HIT')
    expect(replay.headers['content-type']).toBe('text/event-stream')
    expect(replay.text).toBe(first.text)
    expect(replay.text.endsWith('data: [DONE]\n\n')).toBe(true)
    const whole = await send(`${url}${CHAT}`, { body: chat('stream it', { stream: false }) })
    expect(whole.headers['cf-aig-cache-status']).toBe('MISS')
    expect(whole.json()).toMatchObject({ object: 'chat.completion' })
    expect(mock.calls).toHaveLength(2)
  })

  it('cache: a cut stream and an error answer are not stored', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start(CACHE_ON)
    const streamed = chat('cut me', { stream: true })
    mock.enqueue({ cutAfterEvents: 2 })
    const cut = await send(`${url}${CHAT}`, { body: streamed })
    expect(cut.text).not.toContain('[DONE]')
    const again = await send(`${url}${CHAT}`, { body: streamed })
    expect(again.headers['cf-aig-cache-status']).toBe('MISS')
    // Ends cleanly, but before its last event: the client gets a terminal error event, the cache nothing.
    const unfinished = chat('no done', { stream: true })
    const firstEvent = 'data: {"id":"x","object":"chat.completion.chunk","choices":[]}\n\n'
    mock.enqueue({ body: firstEvent, headers: { 'content-type': 'text/event-stream' } })
    const early = await send(`${url}${CHAT}`, { body: unfinished })
    expect(early.text).toContain('"error"')
    const afterEarly = await send(`${url}${CHAT}`, { body: unfinished })
    expect(afterEarly.headers['cf-aig-cache-status']).toBe('MISS')
    mock.enqueue({ status: 500 })
    const failed = await send(`${url}${CHAT}`, { body: chat('fails once') })
    expect(failed.status).toBe(500)
    const retried = await send(`${url}${CHAT}`, { body: chat('fails once') })
    expect([retried.status, retried.headers['cf-aig-cache-status']]).toEqual([200, 'MISS'])
    expect(mock.calls).toHaveLength(6)
  })

  it('cache: a JSON answer cut where its length could not tell (the connection closed) is not stored', async () => {
    // No content-length, no chunks: the body ends when the connection does, here halfway through.
    const upstream = await startRawServer(async (connection) => {
      await connection.request
      connection.socket.end(
        'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{"id":"x","choi',
      )
    })
    onTestFinished(() => upstream.close())
    const url = await world.start({ ...CACHE_ON, providers: openaiAt(upstream) })
    const body = chat('cut by a close')
    expect((await send(`${url}${CHAT}`, { body })).headers['cf-aig-cache-status']).toBe('MISS')
    expect((await send(`${url}${CHAT}`, { body })).headers['cf-aig-cache-status']).toBe('MISS')
    expect(upstream.connections).toHaveLength(2)
  })

  it('cache: concurrent identical misses share one provider call', async () => {
    const { mock } = world
    mock.reset()
    mock.enqueue({ latencyMs: 200 })
    const url = await world.start(CACHE_ON)
    const body = chat('everyone at once')
    const answers = await Promise.all(Array.from({ length: 6 }, () => send(`${url}${CHAT}`, { body })))
    expect(mock.calls).toHaveLength(1)
    expect(answers.map((a) => a.status)).toEqual(Array(6).fill(200))
    expect(new Set(answers.map((a) => a.text)).size).toBe(1)
    expect(answers.filter((a) => a.headers['cf-aig-cache-status'] === 'MISS')).toHaveLength(1)
  })

  it('cache: concurrent identical streams share one provider call and each get the whole stream', async () => {
    const { mock } = world
    mock.reset()
    mock.enqueue({ chunkDelayMs: 20 })
    const url = await world.start(CACHE_ON)
    const body = chat('stream for all', { stream: true })
    const answers = await Promise.all(Array.from({ length: 4 }, () => send(`${url}${CHAT}`, { body })))
    expect(mock.calls).toHaveLength(1)
    expect(new Set(answers.map((a) => a.text)).size).toBe(1)
    expect(answers[0]!.text.endsWith('data: [DONE]\n\n')).toBe(true)
    expect(answers.every((a) => a.headers['content-type'] === 'text/event-stream')).toBe(true)
  })

  it('cache: when the shared call fails, the waiters are not left hanging and one of them calls again', async () => {
    const { mock } = world
    mock.reset()
    mock.enqueue({ latencyMs: 150, status: 500 }, { latencyMs: 50 })
    const url = await world.start(CACHE_ON)
    const body = chat('leader fails')
    const answers = await Promise.all(Array.from({ length: 4 }, () => send(`${url}${CHAT}`, { body })))
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 500])
    expect(mock.calls).toHaveLength(2)
  })

  it('cache: a waiter does not wait on a first request whose client holds its answer back', async () => {
    // The first answer is endless: only its client's reading paces it. The second is short.
    const upstream = await startFaultServer(async (request, res) => {
      if (request.index > 0) return writeEvents(res, openaiStream(['second']))
      res.writeHead(200, SSE_HEADERS)
      await pump(res, (i) => openaiChunk(`piece ${i} `.repeat(100)))
    })
    onTestFinished(() => upstream.close())
    const url = await world.start({
      ...CACHE_ON,
      providers: openaiAt(upstream),
    })
    const body = chat('one slow reader', { stream: true })
    const leader = await postUnread(`${url}${CHAT}`, body)
    const second = await send(`${url}${CHAT}`, { body })
    expect(second.status).toBe(200)
    expect(second.text).toContain('second')
    expect(upstream.requests).toHaveLength(2)
    expect(leader.complete).toBe(false)
    // The first client goes without a reset: its provider leaves, and it reads its cut stream to the end.
    await upstream.close()
    leader.resume()
    await once(leader, 'end')
  })

  it('cache: waiters stop waiting as soon as the answer passes maxEntryBytes', async () => {
    // The first answer passes the cap, then ends only once the second request reached the provider.
    const upstream = await startFaultServer(async (request, res) => {
      if (request.index > 0) return writeEvents(res, openaiStream(['second']))
      res.writeHead(200, SSE_HEADERS)
      await writeAsync(res, openaiChunk('x'.repeat(4096)))
      await upstream.request(1)
      await writeEvents(res, openaiStream(['end']))
    })
    onTestFinished(() => upstream.close())
    const url = await world.start({
      cache: { ttl: 600, maxEntryBytes: 1024 },
      providers: openaiAt(upstream),
    })
    const body = chat('too large to keep', { stream: true })
    const [first, second] = await Promise.all([
      send(`${url}${CHAT}`, { body }),
      upstream.request(0).then(() => send(`${url}${CHAT}`, { body })),
    ])
    expect(first.text).toContain('end')
    expect(second.text).toContain('second')
    expect(upstream.requests).toHaveLength(2)
  })

  it('limits: over the limit is a 429 with code 2003, Retry-After and RateLimit headers, not forwarded', async () => {
    const { mock } = world
    mock.reset()
    const instant = Date.now()
    const url = await world.start({
      rateLimit: { name: 'burst', limit: 2, window: 60, technique: 'fixed' },
      // The clock stands still: the wall clock could end the fixed window between these requests.
      now: () => instant,
    })
    const ok = await send(`${url}${CHAT}`, { body: chat('1') })
    expect(ok.headers['ratelimit-policy']).toBe('"burst";q=2;w=60')
    expect(ok.headers.ratelimit).toMatch(/^"burst";r=1;t=\d+$/)
    await send(`${url}${CHAT}`, { body: chat('2') })
    const limited = await send(`${url}${CHAT}`, { body: chat('3') })
    expect(limited.status).toBe(429)
    expect(limited.json()).toMatchObject({ success: false, error: [{ code: 2003 }], name: 'AiGatewayError' })
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1)
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60)
    expect(limited.headers.ratelimit).toMatch(/^"burst";r=0;t=\d+$/)
    expect(mock.calls).toHaveLength(2)
  })

  it('limits: per-principal counters, with cache hits not counted', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start({
      ...CACHE_ON,
      identify: (_host: unknown, request: { headers: Record<string, string | undefined> }) => ({
        id: request.headers['x-user'],
      }),
      rateLimit: { key: 'principal', limit: 1, window: 60 },
    })
    const as = (user: string, text: string) =>
      send(`${url}${CHAT}`, { body: chat(text), headers: { 'x-user': user } })
    expect((await as('ann', 'one')).status).toBe(200)
    expect((await as('ann', 'one')).headers['cf-aig-cache-status']).toBe('HIT')
    expect((await as('ann', 'two')).status).toBe(429)
    expect((await as('bob', 'two')).status).toBe(200)
  })
}

function openaiAt(upstream: { url: string }) {
  return { openai: { apiKey: 'sk-stored', baseURL: `${upstream.url}/v1` } }
}

/** POSTs JSON and resolves at the response headers, leaving the body unread (destroyed at the end). */
async function postUnread(url: string, body: unknown): Promise<IncomingMessage> {
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const sent = rawRequest(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, resolve)
    sent.on('error', reject).end(JSON.stringify(body))
  })
  response.pause()
  onTestFinished(() => {
    response.destroy()
  })
  return response
}
