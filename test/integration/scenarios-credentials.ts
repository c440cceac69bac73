import { createServer, type IncomingHttpHeaders } from 'node:http'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createKeyRing, createMemorySecretStore, type StoreErrorEvent } from '../../src/index.js'
import { closeServer, send, serverUrl } from '../helpers/http.js'
import { chat, type World } from './scenarios.js'

const TOKEN = 'gw-token-0123456789abcdef'
const TOKEN_TWO = 'gw-token-two-fedcba9876543210'
const STORED = {
  openai: 'sk-stored-openai-0001',
  anthropic: 'sk-ant-stored-0002',
  google: 'goog-stored-0003',
}

/** What the provider received: the credential headers, and the path with its query. */
interface Received {
  url: string
  authorization: string | undefined
  apiKey: string | undefined
  googKey: string | undefined
}

/**
 * A provider that accepts only the stored keys and, like OpenAI, quotes any other key back in its 401: so a
 * gateway token that leaked upstream would show in the answer as well as in what it received.
 */
function startProvider() {
  const received: Received[] = []
  const accepted = new Set([`Bearer ${STORED.openai}`, STORED.anthropic, STORED.google])
  const server = createServer(async (req, res) => {
    for await (const _ of req);
    const url = req.url ?? ''
    const got = credentialsIn(req.headers)
    received.push({ url, ...got })
    const key =
      got.authorization ?? got.apiKey ?? got.googKey ?? new URL(url, 'http://x').searchParams.get('key')
    const accept = key !== null && key !== undefined && accepted.has(key)
    const body = accept
      ? answerFor(url)
      : { error: { message: `Incorrect API key provided: ${key}`, type: 'invalid_request_error' } }
    res.writeHead(accept ? 200 : 401, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  })
  return { server, received }
}

/** A minimal answer in the dialect the path speaks. */
function answerFor(url: string): unknown {
  if (url.startsWith('/v1/messages')) {
    return {
      id: 'msg_1',
      type: 'message',
      role: 'assistant',
      model: 'claude-sonnet-4-5',
      content: [{ type: 'text', text: 'ok' }],
      stop_reason: 'end_turn',
      usage: { input_tokens: 1, output_tokens: 1 },
    }
  }
  if (url.includes(':generateContent')) {
    return {
      candidates: [{ content: { role: 'model', parts: [{ text: 'ok' }] }, finishReason: 'STOP' }],
      usageMetadata: { promptTokenCount: 1, candidatesTokenCount: 1, totalTokenCount: 2 },
    }
  }
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  }
}

function credentialsIn(headers: IncomingHttpHeaders) {
  const one = (name: string) => headers[name] as string | undefined
  return { authorization: one('authorization'), apiKey: one('x-api-key'), googKey: one('x-goog-api-key') }
}

/** Stored keys and callers' own keys, with gateway authentication: the same table for every framework. */
export function credentialScenarios(world: World): void {
  const provider = startProvider()
  let base = ''

  beforeAll(async () => {
    provider.server.listen(0, '127.0.0.1')
    await new Promise((resolve) => provider.server.once('listening', resolve))
    base = serverUrl(provider.server)
  })
  afterAll(() => closeServer(provider.server))

  function start(options: Parameters<World['start']>[0] = {}) {
    provider.received.length = 0
    return world.start({
      authentication: { tokens: [TOKEN] },
      providers: {
        openai: { apiKey: STORED.openai, baseURL: `${base}/v1` },
        anthropic: { apiKey: STORED.anthropic, baseURL: base },
        'google-ai-studio': { apiKey: STORED.google, baseURL: base },
      },
      ...options,
    })
  }

  it('keys: the gateway token where an SDK puts its API key authenticates, is never forwarded, and the stored key goes instead', async () => {
    const url = await start()
    const asked = [
      ['/ai/openai/chat/completions', { authorization: `Bearer ${TOKEN}` }],
      ['/ai/compat/chat/completions', { authorization: `Bearer ${TOKEN}` }, 'anthropic/claude-sonnet-4-5'],
      ['/ai/anthropic/v1/messages', { 'x-api-key': TOKEN }],
      // Claude Code's setup: the token in cf-aig-authorization, and in x-api-key too.
      ['/ai/anthropic/v1/messages', { 'cf-aig-authorization': `Bearer ${TOKEN}`, 'x-api-key': TOKEN }],
      ['/ai/google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent', { 'x-goog-api-key': TOKEN }],
      // Google's ?key= carries the token only beside cf-aig-authorization: a key in a URL is not a login.
      [
        `/ai/google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent?alt=json&key=${TOKEN}`,
        { 'cf-aig-authorization': `Bearer ${TOKEN}` },
      ],
    ] as const
    for (const [path, headers, model] of asked) {
      const res = await send(`${url}${path}`, { body: chat('hi', model ? { model } : {}), headers })
      expect(res.status, `${path} ${Object.keys(headers).join(', ')}`).toBe(200)
    }
    expect(provider.received.map(({ url: path, ...keys }) => [path, keys])).toEqual([
      [
        '/v1/chat/completions',
        { authorization: `Bearer ${STORED.openai}`, apiKey: undefined, googKey: undefined },
      ],
      ['/v1/messages', { authorization: undefined, apiKey: STORED.anthropic, googKey: undefined }],
      ['/v1/messages', { authorization: undefined, apiKey: STORED.anthropic, googKey: undefined }],
      ['/v1/messages', { authorization: undefined, apiKey: STORED.anthropic, googKey: undefined }],
      [
        '/v1beta/models/gemini-2.5-flash:generateContent',
        { authorization: undefined, apiKey: undefined, googKey: STORED.google },
      ],
      [
        '/v1beta/models/gemini-2.5-flash:generateContent?alt=json',
        { authorization: undefined, apiKey: undefined, googKey: STORED.google },
      ],
    ])
  })

  it('keys: a configured gateway token is never forwarded, beside another token or among repeated keys', async () => {
    const url = await start({ authentication: { tokens: [TOKEN, { name: 'two', token: TOKEN_TWO }] } })
    const gemini = '/ai/google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent'
    const asked = [
      [
        '/ai/openai/chat/completions',
        { 'cf-aig-authorization': `Bearer ${TOKEN}`, authorization: `Bearer ${TOKEN_TWO}` },
      ],
      // An SDK's key header authenticates with the first token; the second is no provider key either.
      ['/ai/anthropic/v1/messages', { authorization: `Bearer ${TOKEN_TWO}`, 'x-api-key': TOKEN }],
      // A repeated header, as Node joins it.
      [
        '/ai/anthropic/v1/messages',
        { 'cf-aig-authorization': `Bearer ${TOKEN}`, 'x-api-key': `${TOKEN_TWO}, sk-callers-own-0005` },
      ],
      [`${gemini}?key=xxxxxxxx&key=${TOKEN}`, { 'cf-aig-authorization': `Bearer ${TOKEN}` }],
    ] as const
    for (const [path, headers] of asked) {
      const res = await send(`${url}${path}`, { body: chat('hi'), headers })
      expect(res.status, `${path} ${Object.keys(headers).join(', ')}`).toBe(200)
    }
    expect(provider.received.map(({ url: path, ...keys }) => [path, keys])).toEqual([
      [
        '/v1/chat/completions',
        { authorization: `Bearer ${STORED.openai}`, apiKey: undefined, googKey: undefined },
      ],
      ['/v1/messages', { authorization: undefined, apiKey: STORED.anthropic, googKey: undefined }],
      ['/v1/messages', { authorization: undefined, apiKey: STORED.anthropic, googKey: undefined }],
      [
        '/v1beta/models/gemini-2.5-flash:generateContent',
        { authorization: undefined, apiKey: undefined, googKey: STORED.google },
      ],
    ])
  })

  it('keys: a ?key= that is removed leaves the rest of the query as it came, a malformed escape included', async () => {
    const url = await start()
    const gemini = 'v1beta/models/gemini-2.5-flash:generateContent'
    const auth = { 'cf-aig-authorization': `Bearer ${TOKEN}` }
    const passthrough = await send(`${url}/ai/google-ai-studio/${gemini}?%zz=1&key=${TOKEN}`, {
      body: { contents: [] },
      headers: auth,
    })
    const universal = await send(`${url}/ai`, {
      body: [{ provider: 'google-ai-studio', endpoint: `${gemini}?a%E0%A4=2&key=${TOKEN}`, query: {} }],
      headers: auth,
    })
    expect([passthrough.status, universal.status]).toEqual([200, 200])
    expect(provider.received.map(({ url: path, googKey }) => [path, googKey])).toEqual([
      [`/${gemini}?%zz=1`, STORED.google],
      [`/${gemini}?a%E0%A4=2`, STORED.google],
    ])
  })

  it('keys: an unknown alias on a key ring whose alias list never answers is refused within the lookup bound (503, 2117)', async () => {
    const memory = createMemorySecretStore()
    const keys = createKeyRing({
      store: { ...memory, list: () => new Promise<never>(() => {}) },
      masterKey: 'c'.repeat(64),
    })
    const url = await start({ keys })
    const res = await send(`${url}/ai/openai/chat/completions`, {
      body: chat('hi'),
      headers: { 'cf-aig-authorization': `Bearer ${TOKEN}`, 'cf-aig-byok-alias': 'nope' },
    })
    expect(res.status).toBe(503)
    expect(res.json()).toMatchObject({ error: [{ code: 2117 }] })
    expect(provider.received).toEqual([])
  })

  it('keys: a stored key under a master key the ring lacks is refused (503, 2117) and reported as store:error', async () => {
    const store = createMemorySecretStore()
    const secret = 'sk-under-old-master-key-0007'
    await createKeyRing({ store, masterKey: 'e'.repeat(64) }).putSecret('openai', 'team', secret)
    const keys = createKeyRing({ store, masterKey: 'f'.repeat(64) })
    const url = await start({ keys })
    const reported: StoreErrorEvent[] = []
    world.gateway!.events.on('store:error', (event) => reported.push(event))
    const res = await send(`${url}/ai/openai/chat/completions`, {
      body: chat('hi'),
      headers: { 'cf-aig-authorization': `Bearer ${TOKEN}`, 'cf-aig-byok-alias': 'team' },
    })
    expect(res.status).toBe(503)
    expect(res.json()).toMatchObject({ error: [{ code: 2117 }] })
    expect(provider.received).toEqual([])
    expect(reported).toEqual([
      {
        id: res.headers['cf-aig-request-id'],
        store: 'keys',
        operation: 'get',
        error: expect.objectContaining({ name: 'KeyStoreError', reason: 'unknown-master-key' }),
      },
    ])
    expect(String(reported[0]!.error)).not.toContain(secret.slice(3, -4))
  })

  it('keys: a custom provider with the longest slug has stored keys like any other', async () => {
    const keys = createKeyRing({ store: createMemorySecretStore(), masterKey: 'd'.repeat(64) })
    const slug = `c${'x'.repeat(63)}`
    const url = await start({ keys, customProviders: { [slug]: { baseURL: `${base}/v1` } } })
    const ask = () =>
      send(`${url}/ai/custom-${slug}/chat/completions`, {
        body: chat('hi'),
        headers: { 'cf-aig-authorization': `Bearer ${TOKEN}` },
      })
    // Nothing stored: the request goes without a key, and the provider refuses it.
    expect((await ask()).status).toBe(401)
    await keys.putSecret(`custom-${slug}`, 'default', STORED.openai)
    expect((await ask()).status).toBe(200)
    expect(provider.received.map((call) => call.authorization)).toEqual([
      undefined,
      `Bearer ${STORED.openai}`,
    ])
  })

  it('keys: an apiKeys pool is the default alias, also when cf-aig-byok-alias names it', async () => {
    const keys = createKeyRing({ store: createMemorySecretStore(), masterKey: 'd'.repeat(64) })
    await keys.putSecret('openai', 'team', 'sk-team-not-accepted-0006')
    const url = await start({
      keys,
      providers: { openai: { apiKeys: [STORED.openai], baseURL: `${base}/v1` } },
    })
    const auth = { 'cf-aig-authorization': `Bearer ${TOKEN}` }
    const named = await send(`${url}/ai/openai/chat/completions`, {
      body: chat('hi'),
      headers: { ...auth, 'cf-aig-byok-alias': 'default' },
    })
    expect(named.status).toBe(200)
    expect(provider.received.map((call) => call.authorization)).toEqual([`Bearer ${STORED.openai}`])
    const unknown = await send(`${url}/ai/openai/chat/completions`, {
      body: chat('hi'),
      headers: { ...auth, 'cf-aig-byok-alias': 'nope' },
    })
    expect(unknown.status).toBe(400)
    expect(unknown.json()).toMatchObject({
      error: [{ code: 2040, message: expect.stringContaining('configured aliases: default, team') }],
    })
  })

  it('keys: a wrong key where an SDK puts it is a 401 (2009) and nothing goes upstream', async () => {
    const url = await start()
    for (const headers of [
      { authorization: 'Bearer sk-not-the-token-000' },
      { 'x-api-key': `${TOKEN}x` },
      { authorization: TOKEN.slice(1) },
    ]) {
      const res = await send(`${url}/ai/openai/chat/completions`, { body: chat('hi'), headers })
      expect(res.status, JSON.stringify(headers)).toBe(401)
      expect(res.json()).toMatchObject({ error: [{ code: 2009, message: 'Unauthorized' }] })
    }
    expect(provider.received).toEqual([])
  })

  it("keys: callerKeys forward (default) sends the caller's own key, ignore sends the stored one, refuse is a 400 (2122)", async () => {
    const own = { 'cf-aig-authorization': `Bearer ${TOKEN}`, authorization: 'Bearer sk-callers-own-0004' }
    const forwarding = await start()
    const forwarded = await send(`${forwarding}/ai/openai/chat/completions`, {
      body: chat('hi'),
      headers: own,
    })
    // The provider refuses the caller's key and quotes it: the caller's own key, the caller's own answer.
    expect(forwarded.status).toBe(401)
    expect(provider.received.map((call) => call.authorization)).toEqual(['Bearer sk-callers-own-0004'])

    const ignoring = await start({
      providers: {
        openai: { apiKey: STORED.openai, baseURL: `${base}/v1`, callerKeys: 'ignore' },
        'google-ai-studio': { apiKey: STORED.google, baseURL: base },
      },
      callerKeys: 'ignore',
    })
    const ignored = await send(`${ignoring}/ai/openai/chat/completions`, { body: chat('hi'), headers: own })
    expect(ignored.status).toBe(200)
    const gemini = '/ai/google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent'
    const query = await send(`${ignoring}${gemini}?key=caller-own-key&alt=json`, {
      body: chat('hi'),
      headers: { 'cf-aig-authorization': `Bearer ${TOKEN}`, 'x-goog-api-key': 'caller-own-key' },
    })
    expect(query.status).toBe(200)
    expect(
      provider.received.map(({ url: path, authorization, googKey }) => [path, authorization ?? googKey]),
    ).toEqual([
      ['/v1/chat/completions', `Bearer ${STORED.openai}`],
      ['/v1beta/models/gemini-2.5-flash:generateContent?alt=json', STORED.google],
    ])

    const refusing = await start({
      providers: { openai: { apiKey: STORED.openai, baseURL: `${base}/v1`, callerKeys: 'refuse' } },
    })
    const refused = await send(`${refusing}/ai/openai/chat/completions`, { body: chat('hi'), headers: own })
    expect(refused.status).toBe(400)
    expect(refused.json()).toMatchObject({ error: [{ code: 2122 }] })
    expect(refused.text).not.toContain('sk-callers-own')
    // The gateway token in the key header is not a caller's key: refuse still serves it, with the stored key.
    const token = await send(`${refusing}/ai/openai/chat/completions`, {
      body: chat('hi'),
      headers: { authorization: `Bearer ${TOKEN}` },
    })
    expect(token.status).toBe(200)
    expect(provider.received.map((call) => call.authorization)).toEqual([`Bearer ${STORED.openai}`])
    // A refused request is logged with the provider its path named.
    await world.gateway!.flushLogs()
    const record = await world.gateway!.logs!.get(refused.headers['cf-aig-log-id']!)
    expect(record).toMatchObject({ provider: 'openai', statusCode: 400, success: false })
  })

  it('keys: in a universal step, the gateway token as the step’s key is replaced by the stored key', async () => {
    const url = await start()
    const res = await send(`${url}/ai`, {
      headers: { 'cf-aig-authorization': `Bearer ${TOKEN}` },
      body: [
        {
          provider: 'openai',
          endpoint: 'chat/completions',
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
          query: chat('hi'),
        },
      ],
    })
    expect(res.status).toBe(200)
    expect(provider.received.map((call) => call.authorization)).toEqual([`Bearer ${STORED.openai}`])
  })

  it('logs: cf-aig-log-id is handed out only for a request that gets a record', async () => {
    const url = await start()
    const auth = { 'cf-aig-authorization': `Bearer ${TOKEN}` }
    const logged = await send(`${url}/ai/openai/chat/completions`, { body: chat('hi'), headers: auth })
    const unlogged = await send(`${url}/ai/openai/chat/completions`, {
      body: chat('hi'),
      headers: { ...auth, 'cf-aig-collect-log': 'false' },
    })
    await world.gateway!.flushLogs()
    expect(await world.gateway!.logs!.get(logged.headers['cf-aig-log-id']!)).toBeDefined()
    expect(unlogged.status).toBe(200)
    expect(unlogged.headers['cf-aig-request-id']).toEqual(expect.any(String))
    expect(unlogged.headers['cf-aig-log-id']).toBeUndefined()
    const off = await start({ logs: false })
    const res = await send(`${off}/ai/openai/chat/completions`, { body: chat('hi'), headers: auth })
    expect(res.status).toBe(200)
    expect(res.headers['cf-aig-log-id']).toBeUndefined()
  })
}
