import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GatewayError } from '../../../src/errors.js'
import { createGateway, type GatewayRequest, type LogRecord, parseOptions } from '../../../src/index.js'
import { DIALECT_SPECS, dialectOf } from '../../../src/providers/dialects/index.js'
import { createProviderRegistry } from '../../../src/providers/registry.js'
import { DIALECTS } from '../../../src/providers/types.js'
import { createMockProvider, type MockProvider } from '../../../src/testing/index.js'

describe('dialectOf()', () => {
  it('has a spec for every dialect, under its own name', () => {
    for (const name of DIALECTS) expect(dialectOf(name).name).toBe(name)
    expect(Object.keys(DIALECT_SPECS).sort()).toEqual([...DIALECTS].sort())
  })

  it.each([
    ['openai', '/v1/chat/completions', 'data: [DONE]'],
    ['openai', '/v1/chat/completions?x=1', 'data: [DONE]'],
    ['openai', '/v1/responses', undefined],
    ['workers-ai', '/client/v4/accounts/a/ai/v1/chat/completions', 'data: [DONE]'],
    ['anthropic', '/v1/messages', 'event: message_stop'],
    ['anthropic', '/v1/messages/count_tokens', undefined],
    ['gemini', '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse', '"blockReason"'],
    ['gemini', '/v1beta/models/gemini-2.5-flash:generateContent', undefined],
    ['cohere', '/v2/chat', undefined],
    ['native', '/v1/chat/completions', undefined],
  ] as const)('knows the terminator of a %s stream from %s', (dialect, path, terminator) => {
    expect(dialectOf(dialect).stream(path)?.terminator).toBe(terminator)
  })

  it('ends a failed stream in the dialect’s own error event, or not at all', () => {
    const error = new GatewayError('UPSTREAM_INTERRUPTED', 'cut')
    expect(dialectOf('openai').terminalEvent(error)).toMatch(
      /^data: \{"error":\{"message":".*cut","type":"gateway_error"/,
    )
    expect(dialectOf('workers-ai').terminalEvent(error)).toBe(dialectOf('openai').terminalEvent(error))
    expect(dialectOf('anthropic').terminalEvent(error)).toMatch(/^event: error\ndata: \{"type":"error"/)
    expect(dialectOf('gemini').terminalEvent(error)).toContain('"status":"UNAVAILABLE"')
    expect(dialectOf('native').terminalEvent(error)).toBeUndefined()
    expect(dialectOf('cohere').terminalEvent(error)).toBeUndefined()
  })

  it('finds the model in the body, else in a models/{model} path', () => {
    expect(dialectOf('openai').model('/v1/chat/completions', { model: 'gpt-4o' })).toBe('gpt-4o')
    expect(dialectOf('gemini').model('/v1beta/models/gemini-2.5-flash:generateContent', {})).toBe(
      'gemini-2.5-flash',
    )
    expect(dialectOf('anthropic').model('/v1/messages', { messages: [] })).toBeUndefined()
  })

  it('reads the output cap from the dialect’s own field', () => {
    expect(dialectOf('openai').outputCap({ max_tokens: 10, max_completion_tokens: 20 })).toBe(20)
    expect(dialectOf('anthropic').outputCap({ max_tokens: 64 })).toBe(64)
    expect(dialectOf('gemini').outputCap({ generationConfig: { maxOutputTokens: 50 } })).toBe(50)
    expect(dialectOf('gemini').outputCap({ max_tokens: 10 })).toBeUndefined()
    expect(dialectOf('openai').outputCap('text')).toBeUndefined()
  })

  it('knows a streaming request by its body, or by Gemini’s streaming endpoint', () => {
    expect(dialectOf('openai').streams('/v1/chat/completions', { stream: true })).toBe(true)
    expect(dialectOf('openai').streams('/v1/chat/completions', { stream: false })).toBe(false)
    expect(dialectOf('gemini').streams('/v1beta/models/m:streamGenerateContent?alt=sse', {})).toBe(true)
    expect(dialectOf('gemini').streams('/v1beta/models/m:generateContent', {})).toBe(false)
  })

  it('reads usage in the dialect’s own format', () => {
    const anthropic = { usage: { input_tokens: 12, output_tokens: 3 } }
    expect(dialectOf('anthropic').usage.fromJson(anthropic)).toEqual({
      inputTokens: 12,
      outputTokens: 3,
      inputIncludesCache: false,
    })
    // The same body read as another dialect's has no usage it knows.
    expect(dialectOf('gemini').usage.fromJson(anthropic)).toBeUndefined()
  })
})

describe('usage read from a stream that reports running totals or a final usage chunk', () => {
  const { usage } = dialectOf('openai')
  const chunk = (content: string, extra = '"usage":null') =>
    `data: {"choices":[{"delta":{"content":${JSON.stringify(content)}}}],${extra}}\n\n`
  const final = 'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}\n\n'

  it('takes the final usage chunk', () => {
    const sse = `${chunk('Hi')}${chunk(' there')}${final}data: [DONE]\n\n`
    expect(usage.fromStream(sse)).toMatchObject({ inputTokens: 7, outputTokens: 3 })
    expect(usage.fromStream(sse.replaceAll('\n', '\r\n'))).toMatchObject({ inputTokens: 7, outputTokens: 3 })
    expect(usage.fromStream(sse.replaceAll('\n', '\r'))).toMatchObject({ inputTokens: 7, outputTokens: 3 })
    // Line ends of two kinds: the usage line begins after a `\r` that comes after the last `\n`.
    const mixed = `${chunk('Hi')}data: {"choices":[]}\r\r${final}data: [DONE]\n\n`
    expect(usage.fromStream(mixed)).toMatchObject({ inputTokens: 7, outputTokens: 3 })
  })

  it('finds none in a stream cut before its usage chunk, and looks past the word in a later text', () => {
    expect(usage.fromStream(`${chunk('Hi')}${chunk(' there')}`)).toBeUndefined()
    // A delta after the usage chunk that quotes the field name: the usage chunk before it still counts.
    const quoted = `${chunk('a')}${final}${chunk('the "usage": field', '"x":1')}`
    expect(usage.fromStream(quoted)).toMatchObject({ inputTokens: 7, outputTokens: 3 })
  })

  it('reads usage followed by other fields, or nested in the event (Responses API)', () => {
    const trailing = final.replace('}}', '},"service_tier":"default"}')
    expect(usage.fromStream(`${chunk('Hi')}${trailing}data: [DONE]\n\n`)).toMatchObject({ inputTokens: 7 })
    const completed =
      'event: response.completed\ndata: {"type":"response.completed","response":{"id":"r","usage":{"input_tokens":5,"output_tokens":2}}}\n\n'
    expect(usage.fromStream(completed)).toMatchObject({ inputTokens: 5, outputTokens: 2 })
  })

  it('takes the last running total (Gemini)', () => {
    const event = (n: number) =>
      `data: {"candidates":[],"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":${n}}}\n\n`
    expect(dialectOf('gemini').usage.fromStream(`${event(1)}${event(2)}${event(5)}`)).toMatchObject({
      inputTokens: 4,
      outputTokens: 5,
    })
  })
})

describe('a custom provider declaring its dialect', () => {
  let mock: MockProvider
  beforeAll(async () => {
    mock = await createMockProvider()
  })
  afterAll(() => mock.close())

  const gatewayFor = () =>
    createGateway({
      customProviders: {
        mylab: { baseURL: mock.url, dialect: 'anthropic', apiKey: 'lab-key', auth: { header: 'x-api-key' } },
      },
    })

  const messages = (stream: boolean): GatewayRequest => ({
    method: 'POST',
    path: '/custom-mylab/v1/messages',
    search: '',
    headers: { 'content-type': 'application/json' },
    signal: new AbortController().signal,
    body: JSON.stringify({
      model: 'lab-model',
      max_tokens: 64,
      stream,
      messages: [{ role: 'user', content: 'hello lab' }],
    }),
  })

  async function drain(body: unknown): Promise<string> {
    if (!(body instanceof Readable)) return String(body)
    let text = ''
    for await (const chunk of body) text += chunk
    return text
  }

  it('is validated in the options, and speaks openai unless told otherwise', () => {
    expect(() =>
      parseOptions({ customProviders: { mylab: { baseURL: 'http://x', dialect: 'klingon' } } }),
    ).toThrow(/customProviders\.mylab\.dialect/)
    const registry = createProviderRegistry({
      providers: {},
      customProviders: {
        plain: { baseURL: 'http://x' },
        mylab: { baseURL: 'http://x', dialect: 'anthropic' },
      },
      forwardHeaders: [],
      callerKeys: 'forward',
    })
    expect(registry.get('custom-plain')?.spec.dialect).toBe('openai')
    expect(registry.get('custom-mylab')?.spec.dialect).toBe('anthropic')
  })

  it('gets the usage of its streamed Anthropic answer read into the log', async () => {
    mock.reset()
    const gateway = gatewayFor()
    const response = await gateway.handle(messages(true))
    const text = await drain(response!.body)
    expect(response!.status).toBe(200)
    expect(mock.calls[0]?.headers['x-api-key']).toBe('lab-key')
    expect(text).toContain('event: message_stop')
    await gateway.flushLogs()
    const record = (await gateway.logs!.get(response!.headers['cf-aig-log-id']!)) as LogRecord
    expect(record.model).toBe('lab-model')
    expect(record.tokensIn).toBeGreaterThan(0)
    expect(record.tokensOut).toBeGreaterThan(0)
    expect(JSON.parse(record.responseBody!)).toMatchObject({ stream: true, finishReason: 'end_turn' })
    await gateway.close()
  })

  it('gets the usage of its whole Anthropic answer read', async () => {
    mock.reset()
    const gateway = gatewayFor()
    const response = await gateway.handle(messages(false))
    await drain(response!.body)
    await gateway.flushLogs()
    const record = (await gateway.logs!.get(response!.headers['cf-aig-log-id']!)) as LogRecord
    expect(record.tokensIn).toBeGreaterThan(0)
    expect(record.tokensOut).toBeGreaterThan(0)
    await gateway.close()
  })

  it('gets OpenAI-compatible requests translated to its dialect', async () => {
    mock.reset()
    const gateway = gatewayFor()
    const response = await gateway.handle({
      ...messages(false),
      path: '/compat/chat/completions',
      body: JSON.stringify({ model: 'custom-mylab/lab-model', messages: [{ role: 'user', content: 'hi' }] }),
    })
    const answer = JSON.parse(await drain(response!.body))
    expect(mock.calls[0]?.path).toBe('/v1/messages')
    expect(answer).toMatchObject({ object: 'chat.completion', choices: [{ message: { role: 'assistant' } }] })
    await gateway.close()
  })

  it('gets its stream checked for Anthropic’s last event, and a stream without it ended with an error event', async () => {
    mock.reset()
    mock.enqueue({
      headers: { 'content-type': 'text/event-stream' },
      body:
        'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":5,"output_tokens":1}}}\n\n' +
        'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}\n\n',
    })
    const gateway = gatewayFor()
    const ends: string[] = []
    gateway.events.on('request:end', (event) => ends.push(`${event.outcome} ${event.error?.code ?? ''}`))
    const response = await gateway.handle(messages(true))
    const text = await drain(response!.body)
    expect(text).toContain('event: message_start')
    expect(text).toMatch(/event: error\ndata: \{"type":"error","error":\{"type":"api_error"/)
    await gateway.close()
    expect(ends).toEqual([expect.stringMatching(/^error \d+$/)])
  })
})
