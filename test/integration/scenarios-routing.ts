import { expect, it, onTestFinished } from 'vitest'
import type { UpstreamRetryEvent } from '../../src/events.js'
import { startFaultServer, writeFixed } from '../helpers/fault-server.js'
import { send } from '../helpers/http.js'
import { chat, type World } from './scenarios.js'

const COMPAT = '/ai/compat/chat/completions'

interface Chunk {
  choices: { delta: { content?: string; tool_calls?: unknown[] }; finish_reason: string | null }[]
}

/** `data:` payloads of an SSE body, `[DONE]` included. */
function dataEvents(text: string): string[] {
  return text
    .split('\n\n')
    .filter((event) => event.startsWith('data: '))
    .map((event) => event.slice('data: '.length))
}

function streamedText(text: string): string {
  return dataEvents(text)
    .filter((data) => data !== '[DONE]')
    .map((data) => (JSON.parse(data) as Chunk).choices[0]?.delta.content ?? '')
    .join('')
}

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather by city',
    parameters: { type: 'object', properties: { city: { type: 'string' } } },
  },
}

/** Compat translation, the universal endpoint, retries and fallbacks: the same table for every framework. */
export function routingScenarios(world: World): void {
  it('compat: sends OpenAI-compatible providers the body as it came, with the prefix taken off the model', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start()
    const res = await send(`${url}${COMPAT}`, {
      body: chat('hi', { model: 'openai/gpt-4o-mini', temperature: 0.2 }),
    })
    expect(res.status).toBe(200)
    expect(mock.calls[0]?.path).toBe('/v1/chat/completions')
    expect(mock.calls[0]?.json).toEqual({ ...chat('hi'), model: 'gpt-4o-mini', temperature: 0.2 })
    expect(res.json()).toMatchObject({
      object: 'chat.completion',
      choices: [{ message: { content: 'mock reply to: hi' } }],
    })
  })

  it('compat: translates to Anthropic Messages and back, with the client key in x-api-key', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start()
    const res = await send(`${url}${COMPAT}`, {
      headers: { authorization: 'Bearer sk-ant-client' },
      body: {
        model: 'anthropic/claude-sonnet-4-5',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'hello there' },
        ],
        max_tokens: 100,
        tools: [weatherTool],
      },
    })
    expect(res.status).toBe(200)
    const call = mock.calls[0]
    expect(call?.path).toBe('/v1/messages')
    expect(call?.headers['x-api-key']).toBe('sk-ant-client')
    expect(call?.headers.authorization).toBeUndefined()
    expect(call?.json).toMatchObject({
      model: 'claude-sonnet-4-5',
      system: 'Be brief.',
      max_tokens: 100,
      messages: [{ role: 'user' }],
      tools: [{ name: 'get_weather', input_schema: { type: 'object' } }],
    })
    expect(res.json()).toMatchObject({
      object: 'chat.completion',
      model: 'claude-sonnet-4-5',
      choices: [
        { message: { role: 'assistant', content: 'mock reply to: hello there' }, finish_reason: 'stop' },
      ],
      usage: { prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number) },
    })
  })

  it('compat: turns an Anthropic tool call into OpenAI tool_calls', async () => {
    const { mock } = world
    mock.reset()
    mock.enqueue({
      body: {
        id: 'msg_1',
        type: 'message',
        role: 'assistant',
        model: 'claude-sonnet-4-5',
        content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }],
        stop_reason: 'tool_use',
        stop_sequence: null,
        usage: { input_tokens: 10, output_tokens: 5 },
      },
    })
    const url = await world.start()
    const res = await send(`${url}${COMPAT}`, {
      body: {
        model: 'anthropic/claude-sonnet-4-5',
        messages: [{ role: 'user', content: 'weather?' }],
        tools: [weatherTool],
      },
    })
    expect(res.json()).toMatchObject({
      choices: [
        {
          message: {
            tool_calls: [
              {
                id: 'toolu_1',
                type: 'function',
                function: { name: 'get_weather', arguments: '{"city":"Paris"}' },
              },
            ],
          },
          finish_reason: 'tool_calls',
        },
      ],
    })
  })

  for (const [provider, model, path] of [
    ['anthropic', 'claude-sonnet-4-5', '/v1/messages'],
    ['google-ai-studio', 'gemini-2.5-flash', '/v1beta/models/gemini-2.5-flash:streamGenerateContent'],
  ] as const) {
    it(`compat: streams from ${provider} as OpenAI chunks ending in [DONE]`, async () => {
      const { mock } = world
      mock.reset()
      const url = await world.start()
      const res = await send(`${url}${COMPAT}`, {
        body: chat('stream this please', {
          model: `${provider}/${model}`,
          stream: true,
          stream_options: { include_usage: true },
        }),
      })
      expect(res.status).toBe(200)
      expect(res.headers['content-type']).toContain('text/event-stream')
      expect(mock.calls[0]?.path).toBe(path)
      expect(streamedText(res.text)).toBe('mock reply to: stream this please')
      const events = dataEvents(res.text)
      expect(events.at(-1)).toBe('[DONE]')
      expect(JSON.parse(events.at(-2) ?? '{}')).toMatchObject({
        choices: [],
        usage: { total_tokens: expect.any(Number) },
      })
    })
  }

  it('compat: translates to Gemini generateContent and back', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start()
    const res = await send(`${url}${COMPAT}`, {
      body: {
        model: 'google-ai-studio/gemini-2.5-flash',
        messages: [{ role: 'user', content: 'hi gemini' }],
        max_tokens: 50,
      },
    })
    expect(res.status).toBe(200)
    expect(mock.calls[0]?.path).toBe('/v1beta/models/gemini-2.5-flash:generateContent')
    expect(mock.calls[0]?.headers['x-goog-api-key']).toBe('goog-stored')
    expect(mock.calls[0]?.json).toMatchObject({
      contents: [{ role: 'user', parts: [{ text: 'hi gemini' }] }],
      generationConfig: { maxOutputTokens: 50 },
    })
    expect(res.json()).toMatchObject({
      choices: [{ message: { content: 'mock reply to: hi gemini' }, finish_reason: 'stop' }],
    })
  })

  it('compat: a Gemini tool call keeps its thought signature, so the next turn is not refused (Gemini 3)', async () => {
    // As Gemini 3 does: a signed call, and a 400 for a conversation whose function call lacks its signature.
    const signature = 'CtwBAVSoXO4pQ1w=='
    const gemini = await startFaultServer((request, res) => {
      const { contents } = request.json() as { contents: { parts: Record<string, unknown>[] }[] }
      const calls = contents.flatMap((content) => content.parts).filter((part) => 'functionCall' in part)
      if (calls.some((part) => part.thoughtSignature !== signature)) {
        const message = 'Function call is missing a thought_signature in functionCall parts.'
        writeFixed(res, 400, JSON.stringify({ error: { code: 400, message, status: 'INVALID_ARGUMENT' } }))
        return
      }
      const part =
        calls.length === 0
          ? { functionCall: { name: 'get_weather', args: { city: 'Paris' } }, thoughtSignature: signature }
          : { text: 'Sunny in Paris.' }
      writeFixed(
        res,
        200,
        JSON.stringify({ candidates: [{ content: { role: 'model', parts: [part] }, finishReason: 'STOP' }] }),
      )
    })
    onTestFinished(() => gemini.close())
    const url = await world.start({
      providers: { 'google-ai-studio': { apiKey: 'goog-stored', baseURL: gemini.url } },
    })
    const messages: unknown[] = [{ role: 'user', content: 'Weather in Paris?' }]
    const model = 'google-ai-studio/gemini-3-pro-preview'
    const first = await send(`${url}${COMPAT}`, { body: { model, messages, tools: [weatherTool] } })
    expect(first.status, first.text).toBe(200)
    // The client keeps the assistant message as it came, as OpenAI clients do, and answers its call.
    const { message } = (first.json() as { choices: { message: { tool_calls: { id: string }[] } }[] })
      .choices[0]!
    messages.push(message, { role: 'tool', tool_call_id: message.tool_calls[0]!.id, content: 'sunny' })
    const second = await send(`${url}${COMPAT}`, { body: { model, messages, tools: [weatherTool] } })
    expect(second.status, second.text).toBe(200)
    expect(second.json()).toMatchObject({ choices: [{ message: { content: 'Sunny in Paris.' } }] })
  })

  it("compat: maps a provider's error to an OpenAI error with the provider's status", async () => {
    const { mock } = world
    mock.reset()
    mock.enqueue({ status: 529 })
    const url = await world.start()
    const res = await send(`${url}${COMPAT}`, { body: chat('hi', { model: 'anthropic/claude-sonnet-4-5' }) })
    expect(res.status).toBe(529)
    expect(res.json()).toMatchObject({ error: { message: expect.any(String), type: expect.any(String) } })
  })

  it('compat: refuses an unknown provider prefix with 2008, naming the known ones', async () => {
    const url = await world.start()
    const res = await send(`${url}${COMPAT}`, { body: chat('hi', { model: 'gpt-4o' }) })
    expect(res.status).toBe(400)
    // On the compat surface `error` is OpenAI's object, so OpenAI SDKs show the message.
    expect(res.json()).toMatchObject({
      success: false,
      name: 'AiGatewayError',
      internalCode: 2008,
      error: { code: 2008, type: 'gateway_error', message: expect.stringContaining('anthropic') },
    })
  })

  it('compat: refuses what cannot be translated with 2113 and the reason', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start()
    const res = await send(`${url}${COMPAT}`, {
      body: chat('hi', { model: 'anthropic/claude-sonnet-4-5', n: 3 }),
    })
    expect(res.status).toBe(400)
    expect(res.json()).toMatchObject({ error: { code: 2113, message: expect.stringMatching(/\bn\b/) } })
    expect(mock.calls).toHaveLength(0)
  })

  it('compat: serves embeddings from OpenAI-compatible providers and Gemini', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start()
    const openai = await send(`${url}/ai/compat/embeddings`, {
      body: { model: 'openai/text-embedding-3-small', input: ['a', 'b'] },
    })
    const gemini = await send(`${url}/ai/compat/embeddings`, {
      body: { model: 'google-ai-studio/text-embedding-004', input: 'a' },
    })
    expect(openai.json()).toMatchObject({ object: 'list', data: [{ index: 0 }, { index: 1 }] })
    expect(mock.calls[1]?.path).toBe('/v1beta/models/text-embedding-004:batchEmbedContents')
    expect(gemini.status).toBe(200)
    expect(gemini.json()).toMatchObject({ object: 'list', data: [{ object: 'embedding', index: 0 }] })
  })

  it('universal: falls back to the next step after a 503 and names the step that answered', async () => {
    const { mock } = world
    mock.reset()
    mock.enqueue({ status: 503 })
    const url = await world.start()
    const retries: UpstreamRetryEvent[] = []
    world.gateway?.events.on('upstream:retry', (event) => retries.push(event))
    const res = await send(`${url}/ai`, {
      body: [
        { provider: 'openai', endpoint: 'chat/completions', headers: {}, query: chat('first') },
        {
          provider: 'anthropic',
          endpoint: 'v1/messages',
          headers: {},
          query: { model: 'claude', max_tokens: 9, messages: [{ role: 'user', content: 'second' }] },
        },
      ],
    })
    expect(res.status).toBe(200)
    expect(res.headers['cf-aig-step']).toBe('1')
    expect(res.json()).toMatchObject({ type: 'message', content: [{ text: 'mock reply to: second' }] })
    expect(mock.calls.map((call) => call.path)).toEqual(['/v1/chat/completions', '/v1/messages'])
    expect(retries).toEqual([
      expect.objectContaining({ action: 'fallback', step: 0, attempt: 1, status: 503, provider: 'openai' }),
    ])
  })

  it('universal: falls back after a first-byte timeout and after a refused connection', async () => {
    const { mock } = world
    mock.reset()
    mock.enqueue({ stallBeforeHeaders: true })
    const url = await world.start({
      providers: {
        groq: { baseURL: 'http://127.0.0.1:1/openai/v1' },
        openai: { apiKey: 'sk', baseURL: `${mock.url}/v1` },
      },
    })
    const res = await send(`${url}/ai`, {
      body: [
        {
          provider: 'openai',
          endpoint: 'v1/chat/completions',
          headers: {},
          query: chat('slow'),
          config: { requestTimeout: 150 },
        },
        { provider: 'groq', endpoint: 'chat/completions', headers: {}, query: chat('refused') },
        { provider: 'openai', endpoint: 'chat/completions', headers: {}, query: chat('third') },
      ],
    })
    expect(res.status).toBe(200)
    expect(res.headers['cf-aig-step']).toBe('2')
    expect(res.json()).toMatchObject({ choices: [{ message: { content: 'mock reply to: third' } }] })
    await expect(mock.calls[0]?.outcome).resolves.toBe('aborted')
  })

  it("universal: answers with the last step's error when every step fails", async () => {
    const { mock } = world
    mock.reset()
    mock.enqueue({ status: 503 }, { status: 400 })
    const url = await world.start()
    const step = { provider: 'openai', endpoint: 'chat/completions', headers: {}, query: chat('x') }
    const res = await send(`${url}/ai`, { body: [step, step] })
    expect(res.status).toBe(400)
    expect(res.headers['cf-aig-step']).toBe('1')
    expect(res.json()).toMatchObject({ error: { type: expect.any(String) } })
  })

  it.each([
    ['not JSON', '{oops', 2114, /not valid JSON/],
    ['an empty list', '[]', 2114, /empty/],
    [
      'a step without an endpoint',
      JSON.stringify([
        { provider: 'openai', query: {} },
        { provider: 'openai', query: {} },
      ]),
      2114,
      /step 0\.endpoint/,
    ],
    [
      'an unknown provider',
      JSON.stringify([
        { provider: 'openai', endpoint: 'x', query: {} },
        { provider: 'nope', endpoint: 'x', query: {} },
      ]),
      2008,
      /step 1/,
    ],
    [
      'too many steps',
      JSON.stringify(Array.from({ length: 11 }, () => ({ provider: 'openai', endpoint: 'x', query: {} }))),
      2114,
      /at most 10/,
    ],
    [
      'an endpoint with a line break',
      JSON.stringify([{ provider: 'openai', endpoint: 'chat/completions\r\nx: y', query: {} }]),
      2114,
      /step 0\.endpoint: must be a URL path/,
    ],
    [
      'an endpoint with a space',
      JSON.stringify([{ provider: 'openai', endpoint: 'chat/ completions', query: {} }]),
      2114,
      /step 0\.endpoint/,
    ],
    [
      'a header value with a line break',
      JSON.stringify([
        { provider: 'openai', endpoint: 'chat/completions', query: {} },
        {
          provider: 'openai',
          endpoint: 'chat/completions',
          headers: { 'user-agent': 'a\nb' },
          query: {},
        },
      ]),
      2114,
      /step 1\.headers\.user-agent: must be a header value/,
    ],
  ])('universal: refuses %s with a 400 that names the problem', async (_name, body, code, message) => {
    const url = await world.start()
    const res = await send(`${url}/ai`, { body })
    expect(res.status).toBe(400)
    expect(res.json()).toMatchObject({ error: [{ code, message: expect.stringMatching(message) }] })
  })

  it("universal: steps that cannot be sent are the caller's fault, never counted against the provider's breaker", async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start()
    const good = { provider: 'openai', endpoint: 'chat/completions', headers: {}, query: chat('hi') }
    // More than the breaker's default five failures, on the model and the stored key others use.
    for (const bad of [
      { ...good, endpoint: 'chat/completions\n' },
      { ...good, headers: { 'user-agent': 'a\r\nb' } },
    ]) {
      for (let sent = 0; sent < 3; sent++) {
        const refused = await send(`${url}/ai`, { body: [bad] })
        expect([refused.status, refused.json()]).toMatchObject([400, { error: [{ code: 2114 }] }])
      }
    }
    const fallback = {
      provider: 'anthropic',
      endpoint: 'v1/messages',
      headers: {},
      query: { model: 'claude', max_tokens: 9, messages: [{ role: 'user', content: 'second' }] },
    }
    const res = await send(`${url}/ai`, { body: [good, fallback] })
    expect(res.status).toBe(200)
    expect(res.headers['cf-aig-step']).toBe('0')
    expect(mock.calls.map((call) => call.path)).toEqual(['/v1/chat/completions'])
  })

  it('retries a 429 after its Retry-After, within cf-aig-max-attempts', async () => {
    const { mock } = world
    mock.reset()
    mock.enqueue({ status: 429, retryAfter: 1 })
    const url = await world.start()
    const retries: UpstreamRetryEvent[] = []
    world.gateway?.events.on('upstream:retry', (event) => retries.push(event))
    const res = await send(`${url}/ai/openai/chat/completions`, {
      body: chat('hi'),
      headers: { 'cf-aig-max-attempts': '3', 'cf-aig-retry-delay': '10', 'cf-aig-backoff': 'constant' },
    })
    expect(res.status).toBe(200)
    expect(mock.calls).toHaveLength(2)
    expect(retries).toEqual([
      expect.objectContaining({ action: 'retry', attempt: 1, status: 429, provider: 'openai' }),
    ])
    expect(retries[0]?.delayMs).toBeGreaterThanOrEqual(1000)
  })

  it('retries a refused connection, and gives up with 502 after the last attempt', async () => {
    const url = await world.start({ providers: { openai: { baseURL: 'http://127.0.0.1:1/v1' } } })
    const retries: UpstreamRetryEvent[] = []
    world.gateway?.events.on('upstream:retry', (event) => retries.push(event))
    const res = await send(`${url}/ai/openai/chat/completions`, {
      body: chat('hi'),
      headers: { 'cf-aig-max-attempts': '2', 'cf-aig-retry-delay': '0' },
    })
    expect(res.status).toBe(502)
    expect(res.json()).toMatchObject({ error: [{ code: 2005 }] })
    expect(retries.map((event) => event.reason)).toEqual(['2005 PROVIDER_FAILED'])
  })

  it('never retries once a stream has started', async () => {
    const { mock } = world
    mock.reset()
    mock.enqueue({ cutAfterEvents: 2 })
    const url = await world.start()
    const res = await send(`${url}/ai/openai/chat/completions`, {
      body: chat('one two three', { stream: true }),
      headers: { 'cf-aig-max-attempts': '3', 'cf-aig-retry-delay': '0' },
    })
    expect(res.status).toBe(200)
    expect(res.text).toContain('"code":2108')
    expect(mock.calls).toHaveLength(1)
  })

  it('compat: ends a translated stream that is cut with an OpenAI error event, never [DONE]', async () => {
    const { mock } = world
    mock.reset()
    mock.enqueue({ cutAfterEvents: 4 })
    const url = await world.start()
    const res = await send(`${url}${COMPAT}`, {
      body: chat('one two three four', { model: 'anthropic/claude-sonnet-4-5', stream: true }),
    })
    const events = dataEvents(res.text)
    expect(events).not.toContain('[DONE]')
    expect(JSON.parse(events.at(-1) ?? '{}')).toMatchObject({ error: { message: expect.any(String) } })
  })

  it.each([
    ['cf-aig-max-attempts', '6'],
    ['cf-aig-retry-delay', '9000'],
    ['cf-aig-backoff', 'random'],
  ])('refuses %s: %s with 400 and code 2100', async (header, value) => {
    const url = await world.start()
    const res = await send(`${url}/ai/openai/chat/completions`, {
      body: chat('hi'),
      headers: { [header]: value },
    })
    expect(res.status).toBe(400)
    expect(res.json()).toMatchObject({ error: [{ code: 2100, message: expect.stringContaining(header) }] })
  })
}
