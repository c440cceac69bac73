import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createMockProvider, type MockProvider } from '../../src/testing/index.js'
import {
  type MockBackedGateway,
  type MountedGateway,
  mountGateway,
  mountOnMock,
} from '../helpers/express-gateway.js'

/**
 * The vendors' own clients (the OpenAI and Anthropic SDKs) used as their users use them, against the gateway
 * in Express 5 and the mock provider. The Vercel AI SDK and Cloudflare's ai-gateway-provider need a newer
 * Node than this library supports: their tests are in test/clients, a package of their own.
 */

const CLAUDE = 'anthropic/claude-sonnet-4-5'
const GEMINI = 'google-ai-studio/gemini-2.5-flash'

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather by city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
} as const

let gateway: MockBackedGateway
let mock: MockProvider
let url: string

beforeAll(async () => {
  gateway = await mountOnMock()
  ;({ mock, url } = gateway)
})

afterAll(() => gateway.close())

beforeEach(() => {
  mock.reset()
})

const onlyCall = () => gateway.onlyCall()

function ask(text: string) {
  return [{ role: 'user' as const, content: text }]
}

describe('OpenAI SDK on /compat', () => {
  // No SDK retries, so a scripted failure is what the client sees and the mock counts each call once.
  const client = () => new OpenAI({ baseURL: `${url}/ai/compat`, apiKey: 'sk-test', maxRetries: 0 })

  /** Streams a chat and collects the text deltas into `into`, so a test can see what came before a failure. */
  async function streamChat(model: string, text: string, into: string[] = []): Promise<string> {
    const stream = await client().chat.completions.create({ model, messages: ask(text), stream: true })
    for await (const chunk of stream) into.push(chunk.choices[0]?.delta.content ?? '')
    return into.join('')
  }

  it('chats with an OpenAI model', async () => {
    const completion = await client().chat.completions.create({
      model: 'openai/gpt-4o-mini',
      messages: ask('hello openai'),
    })
    expect(completion.choices[0]?.message.content).toBe('mock reply to: hello openai')
    expect(completion.model).toBe('gpt-4o-mini')
    const call = onlyCall()
    expect(call.path).toBe('/v1/chat/completions')
    expect(call.headers.authorization).toBe('Bearer sk-test')
    expect(call.json).toMatchObject({ model: 'gpt-4o-mini', messages: ask('hello openai') })
  })

  it('chats with an Anthropic model, the bearer key going upstream as x-api-key', async () => {
    const completion = await client().chat.completions.create({
      model: CLAUDE,
      messages: ask('hello claude'),
    })
    expect(completion.object).toBe('chat.completion')
    expect(completion.choices[0]?.message).toMatchObject({
      role: 'assistant',
      content: 'mock reply to: hello claude',
    })
    expect(completion.choices[0]?.finish_reason).toBe('stop')
    expect(completion.usage?.total_tokens).toBeGreaterThan(0)
    const call = onlyCall()
    expect(call.path).toBe('/v1/messages')
    expect(call.headers['x-api-key']).toBe('sk-test')
    expect(call.headers.authorization).toBeUndefined()
    expect(call.json).toMatchObject({
      model: 'claude-sonnet-4-5',
      max_tokens: expect.any(Number),
      messages: [{ role: 'user' }],
    })
  })

  it.each([
    [CLAUDE, '/v1/messages', 'x-api-key'],
    [GEMINI, '/v1beta/models/gemini-2.5-flash:streamGenerateContent', 'x-goog-api-key'],
  ])('streams from %s', async (model, path, keyHeader) => {
    const text = await streamChat(model, 'stream this please')
    expect(text).toBe('mock reply to: stream this please')
    const call = onlyCall()
    expect(call.path).toBe(path)
    expect(call.headers[keyHeader]).toBe('sk-test')
    await expect(call.outcome).resolves.toBe('finished')
  })

  it('gets tool_calls back from an OpenAI model when tool_choice names the function', async () => {
    const completion = await client().chat.completions.create({
      model: 'openai/gpt-4o-mini',
      messages: ask('what is the weather in Paris?'),
      tools: [weatherTool],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    })
    const choice = completion.choices[0]
    expect(choice?.finish_reason).toBe('tool_calls')
    expect(choice?.message.tool_calls).toEqual([
      expect.objectContaining({ type: 'function', function: { name: 'get_weather', arguments: '{}' } }),
    ])
    expect(onlyCall().json).toMatchObject({
      tools: [weatherTool],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    })
  })

  it('sends tools to an Anthropic model in its own shape', async () => {
    const completion = await client().chat.completions.create({
      model: CLAUDE,
      messages: ask('what is the weather in Paris?'),
      tools: [weatherTool],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
    })
    expect(completion.choices[0]?.message.content).toBe('mock reply to: what is the weather in Paris?')
    expect(onlyCall().json).toMatchObject({
      tools: [
        {
          name: 'get_weather',
          description: 'Weather by city',
          input_schema: weatherTool.function.parameters,
        },
      ],
      tool_choice: { type: 'tool', name: 'get_weather' },
    })
  })

  it('embeds with an OpenAI model', async () => {
    // The mock always answers floats, so the SDK's default (base64, decoded client-side) cannot be used here.
    const result = await client().embeddings.create({
      model: 'openai/text-embedding-3-small',
      input: ['first', 'second'],
      encoding_format: 'float',
    })
    expect(result.data.map((item) => item.index)).toEqual([0, 1])
    for (const item of result.data) {
      expect(item.embedding).toHaveLength(8)
      expect(Math.hypot(...item.embedding)).toBeCloseTo(1, 5)
    }
    expect(result.data[0]?.embedding).not.toEqual(result.data[1]?.embedding)
    const call = onlyCall()
    expect(call.path).toBe('/v1/embeddings')
    expect(call.json).toEqual({
      model: 'text-embedding-3-small',
      input: ['first', 'second'],
      encoding_format: 'float',
    })
  })

  it("gets Gemini embeddings with the SDK's default base64 encoding, which the gateway encodes", async () => {
    const [viaBase64, viaFloat] = [
      await client().embeddings.create({ model: 'google-ai-studio/text-embedding-004', input: 'same text' }),
      await client().embeddings.create({
        model: 'google-ai-studio/text-embedding-004',
        input: 'same text',
        encoding_format: 'float',
      }),
    ]
    expect(mock.calls.map((call) => call.path)).toEqual([
      '/v1beta/models/text-embedding-004:batchEmbedContents',
      '/v1beta/models/text-embedding-004:batchEmbedContents',
    ])
    expect(viaFloat.data[0]?.embedding).toHaveLength(8)
    // The SDK decoded the base64 float32 vector back into the same numbers (to float32 precision).
    const decoded = viaBase64.data[0]?.embedding ?? []
    expect(decoded).toHaveLength(8)
    for (const [i, value] of decoded.entries()) {
      expect(value).toBeCloseTo(viaFloat.data[0]?.embedding[i] ?? Number.NaN, 6)
    }
  })

  it("throws RateLimitError on a provider's 429, with a readable message", async () => {
    mock.enqueue({ status: 429 })
    const error = await client()
      .chat.completions.create({ model: CLAUDE, messages: ask('hi') })
      .then(
        () => undefined,
        (reason: unknown) => reason,
      )
    expect(error).toBeInstanceOf(OpenAI.RateLimitError)
    expect(error).toBeInstanceOf(OpenAI.APIError)
    expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(429)
    expect((error as Error).message).toContain('mock error (HTTP 429)')
    expect(onlyCall().path).toBe('/v1/messages')
  })

  it('rejects while iterating a stream the provider cut, instead of ending quietly', async () => {
    mock.enqueue({ cutAfterEvents: 4 })
    const deltas: string[] = []
    const error = await streamChat(CLAUDE, 'one two three four', deltas).then(
      () => undefined,
      (reason: unknown) => reason,
    )
    expect(error).toBeInstanceOf(OpenAI.APIError)
    // 2108: the provider closed the connection mid-answer.
    expect((error as InstanceType<typeof OpenAI.APIError>).error).toMatchObject({
      code: 2108,
      message: expect.stringMatching(/\S/),
    })
    const partial = deltas.join('')
    expect('mock reply to: one two three four'.startsWith(partial)).toBe(true)
    expect(partial).not.toBe('mock reply to: one two three four')
    await expect(onlyCall().outcome).resolves.toBe('aborted')
  })
})

describe('OpenAI SDK on the /openai passthrough', () => {
  const client = () => new OpenAI({ baseURL: `${url}/ai/openai`, apiKey: 'sk-test', maxRetries: 0 })

  it('chats', async () => {
    const completion = await client().chat.completions.create({
      model: 'gpt-4o-mini',
      messages: ask('through'),
    })
    expect(completion.choices[0]?.message.content).toBe('mock reply to: through')
    const call = onlyCall()
    expect(call.path).toBe('/v1/chat/completions')
    expect(call.headers.authorization).toBe('Bearer sk-test')
  })

  it('streams', async () => {
    const stream = await client().chat.completions.create({
      model: 'gpt-4o-mini',
      messages: ask('stream through'),
      stream: true,
      stream_options: { include_usage: true },
    })
    let text = ''
    let totalTokens: number | undefined
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? ''
      totalTokens ??= chunk.usage?.total_tokens
    }
    expect(text).toBe('mock reply to: stream through')
    expect(totalTokens).toBeGreaterThan(0)
    expect(onlyCall().json).toMatchObject({ stream: true })
  })

  it('lists models', async () => {
    const ids: string[] = []
    for await (const model of client().models.list()) ids.push(model.id)
    expect(ids).toEqual(['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small'])
    const call = onlyCall()
    expect(call.method).toBe('GET')
    expect(call.path).toBe('/v1/models')
  })
})

describe('Anthropic SDK on the /anthropic passthrough', () => {
  // Headers of each request as the SDK put them on the wire, to compare with what reached the provider.
  const sent: Headers[] = []
  const client = () =>
    new Anthropic({
      baseURL: `${url}/ai/anthropic`,
      apiKey: 'sk-ant-test',
      maxRetries: 0,
      fetch: (input, init) => {
        sent.push(new Headers(init?.headers))
        return fetch(input, init)
      },
    })
  const request = (text: string) => ({ model: 'claude-haiku-4-5', max_tokens: 64, messages: ask(text) })

  beforeEach(() => {
    sent.length = 0
  })

  /** The SDK's key and API version reach the provider as the SDK sent them (1.x sends the key as a bearer). */
  function expectAnthropicCall(): void {
    const call = onlyCall()
    expect(call.path).toBe('/v1/messages')
    expect(sent).toHaveLength(1)
    const headers = sent[0]!
    const version = headers.get('anthropic-version')
    expect(version).toMatch(/^\d{4}-\d{2}-\d{2}$/)
    expect(call.headers['anthropic-version']).toBe(version)
    const credential = headers.has('x-api-key') ? 'x-api-key' : 'authorization'
    expect(headers.get(credential)).toContain('sk-ant-test')
    expect(call.headers[credential]).toBe(headers.get(credential))
    expect(call.json).toMatchObject({ model: 'claude-haiku-4-5', max_tokens: 64 })
  }

  it('creates a message', async () => {
    const message = await client().messages.create(request('hello anthropic'))
    expect(message.content).toEqual([{ type: 'text', text: 'mock reply to: hello anthropic' }])
    expect(message.stop_reason).toBe('end_turn')
    expectAnthropicCall()
  })

  it('streams with messages.stream()', async () => {
    const stream = client().messages.stream(request('stream anthropic'))
    expect(await stream.finalText()).toBe('mock reply to: stream anthropic')
    const message = await stream.finalMessage()
    expect(message.stop_reason).toBe('end_turn')
    expectAnthropicCall()
  })

  it('streams with stream: true', async () => {
    const stream = await client().messages.create({ ...request('raw events'), stream: true })
    let text = ''
    const types: string[] = []
    for await (const event of stream) {
      types.push(event.type)
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text
    }
    expect(text).toBe('mock reply to: raw events')
    expect(types.at(0)).toBe('message_start')
    expect(types.at(-1)).toBe('message_stop')
    expectAnthropicCall()
  })
})

describe('OpenAI SDK on /compat with dynamic routes and fallbacks', () => {
  let mounted: MountedGateway
  let routedMock: MockProvider
  const to = (elementId: string) => ({ elementId })

  beforeAll(async () => {
    routedMock = await createMockProvider()
    mounted = await mountGateway({
      providers: {
        openai: { apiKey: 'sk-stored', baseURL: `${routedMock.url}/v1` },
        anthropic: { apiKey: 'sk-ant-stored', baseURL: routedMock.url },
      },
      routes: {
        definitions: [
          {
            name: 'support',
            elements: [
              { id: 'start', type: 'start', outputs: { next: to('big') } },
              {
                id: 'big',
                type: 'model',
                properties: { provider: 'openai', model: 'gpt-4o' },
                outputs: { success: to('end'), fallback: to('small') },
              },
              {
                id: 'small',
                type: 'model',
                properties: { provider: 'anthropic', model: 'claude-haiku-4-5' },
                outputs: { success: to('end') },
              },
              { id: 'end', type: 'end', outputs: {} },
            ],
          },
        ],
      },
    })
  })
  afterAll(async () => {
    await mounted.close()
    await routedMock.close()
  })
  beforeEach(() => routedMock.reset())

  const client = () => new OpenAI({ baseURL: `${mounted.url}/ai/compat`, apiKey: 'unused', maxRetries: 0 })

  it('calls dynamic/{name} and learns from the headers which model answered', async () => {
    routedMock.enqueue({ status: 503 })
    const { data, response } = await client()
      .chat.completions.create({ model: 'dynamic/support', messages: ask('route me') })
      .withResponse()
    expect(data.choices[0]?.message.content).toBe('mock reply to: route me')
    expect(response.headers.get('cf-aig-provider')).toBe('anthropic')
    expect(response.headers.get('cf-aig-model')).toBe('claude-haiku-4-5')
  })

  it('streams through a dynamic route, and reads a stream resumed on the fallback as one whole answer', async () => {
    // The primary's stream is cut after two words: the fallback goes on from them, unseen by the SDK.
    routedMock.enqueue({ cutAfterEvents: 3 })
    const stream = await client().chat.completions.create({
      model: 'dynamic/support',
      messages: ask('one two three four'),
      stream: true,
    })
    let text = ''
    const ids = new Set<string>()
    for await (const chunk of stream) {
      ids.add(chunk.id)
      text += chunk.choices[0]?.delta.content ?? ''
    }
    expect(text).toBe('mock reply to: one two three four')
    expect(ids.size).toBe(1)
    expect(routedMock.calls.map((call) => call.path)).toEqual(['/v1/chat/completions', '/v1/messages'])
  })
})
