import { request } from 'undici'
import { expect, it } from 'vitest'
import {
  createKeyRing,
  createMemoryLogStore,
  createMemorySecretStore,
  type LogRecord,
} from '../../src/index.js'
import { send } from '../helpers/http.js'
import { observedLogStore } from '../helpers/log-store.js'
import { chat, type World } from './scenarios.js'

const CHAT = '/ai/openai/chat/completions'
const COMPAT = '/ai/compat/chat/completions'
const GATEWAY_TOKEN = 'gw-token-0123456789abcdef'
const MASTER_KEY = 'a'.repeat(64)

async function records(world: World): Promise<LogRecord[]> {
  await world.gateway!.flushLogs()
  const page = await world.gateway!.logs!.list({ limit: 100, includeBodies: true })
  return page.records
}

async function recordOf(world: World, id: string | undefined): Promise<LogRecord> {
  await world.gateway!.flushLogs()
  const record = await world.gateway!.logs!.get(id!)
  expect(record, `log record ${id}`).toBeDefined()
  return record!
}

/** Gateway authentication, stored keys, request logs and cost: the same table for every framework. */
export function logScenarios(world: World): void {
  it('auth: a missing, malformed or wrong gateway token is a bare 401 with code 2009', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start({ authentication: { tokens: [GATEWAY_TOKEN] } })
    for (const header of [
      undefined,
      `Basic ${GATEWAY_TOKEN}`,
      'Bearer nope-nope-nope-nope',
      `Bearer ${GATEWAY_TOKEN}x`,
    ]) {
      const res = await send(`${url}${CHAT}`, {
        body: chat('hi'),
        headers: header === undefined ? {} : { 'cf-aig-authorization': header },
      })
      expect(res.status, String(header)).toBe(401)
      expect(res.json()).toMatchObject({ success: false, error: [{ code: 2009, message: 'Unauthorized' }] })
    }
    expect(mock.calls).toHaveLength(0)
    const ok = await send(`${url}${CHAT}`, {
      body: chat('hi'),
      headers: { 'cf-aig-authorization': `Bearer ${GATEWAY_TOKEN}`, authorization: 'Bearer sk-client-own' },
    })
    expect(ok.status).toBe(200)
    expect(mock.calls[0]?.headers['cf-aig-authorization']).toBeUndefined()
    expect(mock.calls[0]?.headers.authorization).toBe('Bearer sk-client-own')
  })

  it('auth: verifyToken returns the principal that is logged', async () => {
    const url = await world.start({
      authentication: {
        verifyToken: (token) => (token === 'user-token-1234567' ? { id: 'ann', tenant: 'acme' } : undefined),
      },
    })
    const denied = await send(`${url}${CHAT}`, {
      body: chat('x'),
      headers: { 'cf-aig-authorization': 'Bearer other' },
    })
    expect(denied.status).toBe(401)
    const res = await send(`${url}${CHAT}`, {
      body: chat('x'),
      headers: { 'cf-aig-authorization': 'Bearer user-token-1234567' },
    })
    expect(res.status).toBe(200)
    expect((await recordOf(world, res.headers['cf-aig-log-id'])).principal).toBe('ann')
  })

  it('keys: the request key wins, then cf-aig-byok-alias, then the default; an unknown alias is 2040', async () => {
    const { mock } = world
    mock.reset()
    const keys = createKeyRing({ store: createMemorySecretStore(), masterKey: MASTER_KEY })
    await keys.putSecret('openai', 'team-b', 'sk-team-b-secret-value')
    const url = await world.start({ keys })
    await send(`${url}${CHAT}`, { body: chat('default') })
    await send(`${url}${CHAT}`, { body: chat('alias'), headers: { 'cf-aig-byok-alias': 'team-b' } })
    await send(`${url}${CHAT}`, {
      body: chat('own'),
      headers: { 'cf-aig-byok-alias': 'team-b', authorization: 'Bearer sk-client-own' },
    })
    expect(mock.calls.map((call) => call.headers.authorization)).toEqual([
      'Bearer sk-stored',
      'Bearer sk-team-b-secret-value',
      'Bearer sk-client-own',
    ])
    const unknown = await send(`${url}${CHAT}`, {
      body: chat('x'),
      headers: { 'cf-aig-byok-alias': 'team-c' },
    })
    expect(unknown.status).toBe(400)
    expect(unknown.json()).toMatchObject({ error: [{ code: 2040 }] })
    expect(unknown.text).toContain('default, team-b')
    expect(unknown.text).not.toContain('sk-')
  })

  it('keys: with requireCredentials, no key at all is a 400 with code 2044', async () => {
    const url = await world.start({ requireCredentials: true })
    const res = await send(`${url}/ai/groq/chat/completions`, { body: chat('x') })
    expect(res.status).toBe(400)
    expect(res.json()).toMatchObject({ error: [{ code: 2044 }] })
  })

  it('logs: one record per request on every path, with the reference fields', async () => {
    const { mock } = world
    mock.reset()
    const instant = Date.now()
    const url = await world.start({
      cache: { ttl: 600 },
      rateLimit: { limit: 3, window: 60, technique: 'fixed' },
      // The clock stands still: the wall clock could end the fixed window between these requests.
      now: () => instant,
    })
    const metadata = { 'cf-aig-metadata': JSON.stringify({ team: 'red', run: 7, beta: true }) }
    const ok = await send(`${url}${CHAT}`, {
      body: chat('logged'),
      headers: { ...metadata, 'cf-aig-event-id': 'evt-1' },
    })
    const hit = await send(`${url}${CHAT}`, { body: chat('logged') })
    mock.enqueue({ status: 500 })
    const failed = await send(`${url}${CHAT}`, { body: chat('fails') })
    const invalid = await send(`${url}${CHAT}`, { body: chat('x'), headers: { 'cf-aig-max-attempts': '9' } })
    await send(`${url}${CHAT}`, { body: chat('third') })
    const limited = await send(`${url}${CHAT}`, { body: chat('fourth') })

    const success = await recordOf(world, ok.headers['cf-aig-log-id'])
    expect(success).toMatchObject({
      provider: 'openai',
      model: 'gpt-4o-mini',
      path: '/openai/chat/completions',
      success: true,
      statusCode: 200,
      cached: false,
      outcome: 'success',
      metadata: { team: 'red', run: 7, beta: true },
      eventId: 'evt-1',
      attempts: 1,
      errorCode: null,
    })
    expect(success.tokensIn).toBeGreaterThan(0)
    expect(success.tokensOut).toBeGreaterThan(0)
    expect(success.cost).toBeGreaterThan(0)
    expect(success.requestBody).toContain('logged')
    expect(success.responseBody).toContain('mock reply to: logged')
    expect(success.requestSize).toBe(Buffer.byteLength(JSON.stringify(chat('logged'))))
    expect(success.responseSize).toBe(Buffer.byteLength(ok.text))
    expect(success.ttfbMs).toBeGreaterThanOrEqual(0)
    expect(await recordOf(world, hit.headers['cf-aig-log-id'])).toMatchObject({
      cached: true,
      outcome: 'cache_hit',
      cost: 0,
    })
    expect(await recordOf(world, failed.headers['cf-aig-log-id'])).toMatchObject({
      success: false,
      statusCode: 500,
      outcome: 'upstream_error',
      cost: null,
    })
    expect(await recordOf(world, invalid.headers['cf-aig-log-id'])).toMatchObject({
      statusCode: 400,
      outcome: 'gateway_error',
      errorCode: 2100,
      attempts: 0,
    })
    expect(limited.status).toBe(429)
    expect(await recordOf(world, limited.headers['cf-aig-log-id'])).toMatchObject({
      outcome: 'rate_limited',
      errorCode: 2003,
    })
    expect(await records(world)).toHaveLength(6)
  })

  it('logs: a client that leaves mid-stream is logged as aborted', async () => {
    const { mock } = world
    mock.reset()
    mock.enqueue({ stallAfterEvents: 2 })
    // Each record written as soon as it is queued, to a store that says when it has it.
    const logs = observedLogStore()
    const url = await world.start({ logs: { store: logs, batchSize: 1 } })
    const response = await request(`${url}${CHAT}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(chat('leave', { stream: true })),
    })
    const id = response.headers['cf-aig-log-id'] as string
    for await (const _ of response.body) break
    response.body.destroy()
    await expect(mock.calls[0]?.outcome).resolves.toBe('aborted')
    // The gateway queues the record once it sees the request over, which can be after the provider saw
    // the call aborted: wait for the record itself, however long that takes.
    expect(await logs.written(id)).toMatchObject({ outcome: 'aborted', statusCode: 499, success: false })
  })

  it('logs: the memory store keeps a JSON body as it came and a stream as its text, bounded by what it keeps', async () => {
    world.mock.reset()
    const prompt = Array.from({ length: 60 }, (_, i) => `w${i}`).join(' ')
    // Room for the text of the stream below and its request, not for its events.
    const url = await world.start({ logs: { store: createMemoryLogStore({ maxBytes: 2000 }) } })
    const streamed = await send(`${url}${CHAT}`, { body: chat(prompt, { stream: true }) })
    const whole = await send(`${url}${CHAT}`, { body: chat('short') })
    expect(Buffer.byteLength(streamed.text)).toBeGreaterThan(4000)
    const streamRecord = await recordOf(world, streamed.headers['cf-aig-log-id'])
    expect(JSON.parse(streamRecord.responseBody!)).toMatchObject({ content: `mock reply to: ${prompt}` })
    expect(JSON.parse(streamRecord.requestBody!)).toMatchObject({ stream: true })
    expect((await recordOf(world, whole.headers['cf-aig-log-id'])).responseBody).toBe(whole.text)
  })

  it('logs: cf-aig-collect-log and cf-aig-collect-log-payload, and metadata rules', async () => {
    const url = await world.start()
    const skipped = await send(`${url}${CHAT}`, {
      body: chat('x'),
      headers: { 'cf-aig-collect-log': 'false' },
    })
    const bare = await send(`${url}${CHAT}`, {
      body: chat('x'),
      headers: { 'cf-aig-collect-log-payload': 'false' },
    })
    await world.gateway!.flushLogs()
    expect(skipped.status).toBe(200)
    expect(skipped.headers['cf-aig-log-id']).toBeUndefined()
    expect(await world.gateway!.logs!.get(skipped.headers['cf-aig-request-id']!)).toBeUndefined()
    expect(await recordOf(world, bare.headers['cf-aig-log-id'])).toMatchObject({
      requestBody: null,
      responseBody: null,
    })
    for (const value of ['{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6}', '{"nested":{"a":1}}', '[1]', 'not json']) {
      const res = await send(`${url}${CHAT}`, { body: chat('x'), headers: { 'cf-aig-metadata': value } })
      expect(res.status, value).toBe(400)
      expect(res.json()).toMatchObject({
        error: [{ code: 2100, message: expect.stringContaining('cf-aig-metadata') }],
      })
    }
  })

  it('cost: a stream costs what the same request costs whole, and the client sees exactly the stream it asked for', async () => {
    const url = await world.start()
    for (const path of [CHAT, COMPAT]) {
      const model = path === COMPAT ? 'openai/gpt-4o-mini' : 'gpt-4o-mini'
      const whole = await send(`${url}${path}`, { body: chat('price me', { model }) })
      const streamed = await send(`${url}${path}`, { body: chat('price me', { model, stream: true }) })
      expect(streamed.text).not.toContain('usage')
      expect(streamed.text.endsWith('data: [DONE]\n\n')).toBe(true)
      const wholeRecord = await recordOf(world, whole.headers['cf-aig-log-id'])
      const streamRecord = await recordOf(world, streamed.headers['cf-aig-log-id'])
      expect(wholeRecord.cost).toBeGreaterThan(0)
      expect(streamRecord.cost).toBe(wholeRecord.cost)
      expect(JSON.parse(streamRecord.responseBody!)).toMatchObject({
        stream: true,
        content: 'mock reply to: price me',
        finishReason: 'stop',
      })
      expect([streamRecord.tokensIn, streamRecord.tokensOut]).toEqual([
        wholeRecord.tokensIn,
        wholeRecord.tokensOut,
      ])
    }
    const anthropic = chat('price me', { model: 'anthropic/claude-sonnet-4-5' })
    const whole = await send(`${url}${COMPAT}`, { body: anthropic })
    const streamed = await send(`${url}${COMPAT}`, { body: { ...anthropic, stream: true } })
    const wholeCost = (await recordOf(world, whole.headers['cf-aig-log-id'])).cost
    expect(wholeCost).toBeGreaterThan(0)
    expect((await recordOf(world, streamed.headers['cf-aig-log-id'])).cost).toBe(wholeCost)
  })

  it('cost: logged costs are exact decimals, and analytics sum them exactly', async () => {
    const { mock } = world
    mock.reset()
    const answer = (prompt: number, completion: number) => ({
      body: {
        id: 'chatcmpl-priced',
        object: 'chat.completion',
        created: 1,
        model: 'gpt-4o-mini',
        choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
      },
    })
    // At $0.15 / $0.60 per million tokens, floats give 0.0000032999999999999997 and 0.0005252999999999999.
    mock.enqueue(...Array.from({ length: 10 }, () => answer(22, 0)), answer(1234, 567))
    const url = await world.start()
    const ids: string[] = []
    for (let i = 0; i < 11; i++) {
      const res = await send(`${url}${CHAT}`, { body: chat(`priced ${i}`) })
      expect(res.status).toBe(200)
      ids.push(res.headers['cf-aig-log-id']!)
    }
    const costs = await Promise.all(ids.map(async (id) => (await recordOf(world, id)).cost))
    expect(costs).toEqual([...Array(10).fill(0.0000033), 0.0005253])
    // Summed as floats, these same costs give 0.0005583000000000001.
    const [row] = await world.gateway!.logs!.analytics({})
    expect(row?.cost).toBe(0.0005583)
  })

  it('cost: a custom provider gets a streamed request as it came, with no usage asked for', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start({
      customProviders: { lab: { baseURL: `${mock.url}/v1`, apiKey: 'lab-key' } },
    })
    const raw = JSON.stringify(chat('as it came', { stream: true }))
    const res = await send(`${url}/ai/custom-lab/chat/completions`, { body: raw })
    expect(res.status).toBe(200)
    expect(mock.calls[0]?.body).toBe(raw)
  })

  it('cost: cf-aig-custom-cost prices the request; a model without a price is logged with cost null', async () => {
    const url = await world.start()
    const custom = await send(`${url}${CHAT}`, {
      body: chat('custom'),
      headers: { 'cf-aig-custom-cost': JSON.stringify({ per_token_in: 0.001, per_token_out: 0.002 }) },
    })
    const record = await recordOf(world, custom.headers['cf-aig-log-id'])
    expect(record.customCost).toBe(true)
    expect(record.cost).toBe((record.tokensIn! * 1000 + record.tokensOut! * 2000) / 1e6)
    const unpriced = await send(`${url}${CHAT}`, { body: chat('x', { model: 'my-own-finetune' }) })
    expect((await recordOf(world, unpriced.headers['cf-aig-log-id'])).cost).toBeNull()
    const bad = await send(`${url}${CHAT}`, {
      body: chat('x'),
      headers: { 'cf-aig-custom-cost': '{"per_token_in":-1}' },
    })
    expect(bad.status).toBe(400)
  })

  it('secrets: planted provider keys and gateway tokens appear in no record, event or error body', async () => {
    const canaryKey = 'sk-canary-provider-key-4f2a9c'
    const canaryToken = 'gw-canary-token-88d1e0b7c3'
    const canaryClientKey = 'sk-canary-client-key-19bb07'
    const seen: string[] = []
    const url = await world.start({
      providers: {
        openai: { apiKey: canaryKey, baseURL: `${world.mock.url}/v1` },
        anthropic: { apiKey: canaryKey, baseURL: world.mock.url },
      },
      authentication: { tokens: [canaryToken] },
      rateLimit: { limit: 2, window: 60 },
    })
    for (const name of [
      'request:start',
      'upstream:request',
      'upstream:response',
      'upstream:retry',
      'request:end',
      'store:error',
      'error',
    ] as const) {
      world.gateway!.events.on(name, (event: unknown) => seen.push(JSON.stringify(event)))
    }
    const auth = { 'cf-aig-authorization': `Bearer ${canaryToken}` }
    const bodies = [
      await send(`${url}${CHAT}`, {
        body: chat(`my key is ${canaryClientKey}`),
        headers: { ...auth, authorization: `Bearer ${canaryClientKey}` },
      }),
      await send(`${url}${CHAT}`, { body: chat('x'), headers: auth }),
      await send(`${url}${CHAT}`, { body: chat('x'), headers: auth }),
      await send(`${url}${CHAT}`, { body: chat('x'), headers: { 'cf-aig-authorization': 'Bearer wrong' } }),
      await send(`${url}${COMPAT}`, { body: chat('x', { model: 'nope/x' }), headers: auth }),
    ]
    expect(bodies.map((b) => b.status)).toEqual([200, 200, 429, 401, 400])
    // The mock echoes the prompt back: that answer is the provider's, so only the gateway's own bodies count.
    const errorBodies = bodies.filter((b) => b.status >= 400).map((b) => b.text)
    const everything = [...errorBodies, ...seen, JSON.stringify(await records(world))].join('\n')
    for (const canary of [canaryKey, canaryToken, canaryClientKey]) expect(everything).not.toContain(canary)
    expect(everything).toContain('[REDACTED]')
  })

  it("secrets: a universal step's own provider key, carried in the logged body, is masked whatever its shape", async () => {
    const { mock } = world
    mock.reset()
    // Keys shaped like no known vendor's: an Azure key is 32 hex digits, a Google key rides in `?key=`.
    const azureKey = '5f4dcc3b5aa765d61d8327deb882cf99'
    const anthropicKey = 'ant0c0ffee0ddba11c0ffee0ddba11'
    const googleKey = 'g00gle0c0ffee0ddba11c0ffee0d'
    const compatKey = 'compat0c0ffee0ddba11c0ffee'
    const url = await world.start({
      logs: { store: createMemoryLogStore() },
      providers: {
        'azure-openai': { baseURL: `${mock.url}/{resource}/openai/deployments/{deployment}` },
        anthropic: { baseURL: mock.url },
        'google-ai-studio': { baseURL: mock.url },
      },
    })
    const res = await send(`${url}/ai`, {
      body: [
        {
          provider: 'azure-openai',
          endpoint: 'res/dep/chat/completions?api-version=2024-10-21',
          headers: { 'api-key': azureKey },
          query: chat('hi'),
        },
        {
          provider: 'anthropic',
          endpoint: 'v1/messages',
          headers: { 'x-api-key': anthropicKey },
          query: { model: 'claude', max_tokens: 9, messages: [{ role: 'user', content: 'hi' }] },
        },
        {
          provider: 'google-ai-studio',
          endpoint: `v1beta/models/gemini-2.5-flash:generateContent?key=${googleKey}`,
          query: { contents: [] },
        },
        {
          provider: 'compat',
          endpoint: 'chat/completions',
          headers: { authorization: `Bearer ${compatKey}` },
          query: chat('hi', { model: 'anthropic/claude' }),
        },
      ],
    })
    expect([res.status, res.headers['cf-aig-step']]).toEqual([200, '0'])
    expect(mock.calls[0]?.headers['api-key']).toBe(azureKey)
    const [record] = await records(world)
    expect(record?.requestBody).toContain('[REDACTED]')
    for (const key of [azureKey, anthropicKey, googleKey, compatKey]) {
      expect(record?.requestBody).not.toContain(key)
    }
  })
}
