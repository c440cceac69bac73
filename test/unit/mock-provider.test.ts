import { request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createMockProvider, type MockProvider } from '../../src/testing/index.js'
import { until } from '../helpers/until.js'

let mock: MockProvider

beforeAll(async () => {
  mock = await createMockProvider()
})

afterAll(async () => {
  await mock.close()
})

beforeEach(() => {
  mock.reset()
})

const userTurn = [{ role: 'user', content: 'hello there' }]

/** The header each dialect reads its key from, picked by path as the mock does. */
function credentialFor(path: string): Record<string, string> {
  if (/\/models\/[^/]+:/.test(path)) return { 'x-goog-api-key': 'goog-test' }
  if (/\/messages$/.test(path)) return { 'x-api-key': 'sk-ant-test' }
  return { authorization: 'Bearer sk-test' }
}

/** POSTs with the dialect's credential (unless `init.headers` replaces the headers) and a JSON content type. */
function post(path: string, body: unknown, init: RequestInit = {}, base = mock.url): Promise<Response> {
  return fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...credentialFor(path.split('?')[0] ?? path) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  })
}

interface RawResponse {
  head: string
  headers: Record<string, string>
  /** The chunks of a chunked body, without the terminating empty chunk; [] when not chunked. */
  chunks: string[]
  body: string
}

/**
 * Sends one HTTP/1.1 request over a bare socket and parses the answer by hand, so the framing on the wire
 * (Content-Length or chunks, and how many) is what the test sees, not what a client library makes of it.
 */
function rawRequest(port: number, method: string, path: string, headers: Record<string, string>, body = '') {
  return new Promise<RawResponse>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let received = ''
    const finish = (): void => {
      const parsed = parseRaw(received)
      if (parsed) {
        socket.destroy()
        resolve(parsed)
      }
    }
    socket.setEncoding('latin1')
    socket.on('data', (data: string) => {
      received += data
      finish()
    })
    socket.on('error', reject)
    socket.on('end', () => reject(new Error(`connection ended with ${JSON.stringify(received)}`)))
    const lines = [
      `${method} ${path} HTTP/1.1`,
      'host: 127.0.0.1',
      `content-length: ${Buffer.byteLength(body)}`,
    ]
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`)
    socket.write(`${lines.join('\r\n')}\r\n\r\n${body}`)
  })
}

/** The response once complete, else undefined. */
function parseRaw(received: string): RawResponse | undefined {
  const headEnd = received.indexOf('\r\n\r\n')
  if (headEnd === -1) return undefined
  const head = received.slice(0, headEnd)
  const headers: Record<string, string> = {}
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
  }
  let rest = received.slice(headEnd + 4)
  if (headers['transfer-encoding'] !== 'chunked') {
    const length = Number(headers['content-length'])
    return rest.length >= length ? { head, headers, chunks: [], body: rest.slice(0, length) } : undefined
  }
  const chunks: string[] = []
  for (;;) {
    const lineEnd = rest.indexOf('\r\n')
    if (lineEnd === -1) return undefined
    const size = Number.parseInt(rest.slice(0, lineEnd), 16)
    if (rest.length < lineEnd + 2 + size + 2) return undefined
    if (size === 0) return { head, headers, chunks, body: chunks.join('') }
    chunks.push(rest.slice(lineEnd + 2, lineEnd + 2 + size))
    rest = rest.slice(lineEnd + 2 + size + 2)
  }
}

async function postJson(path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await post(path, body)
  return (await res.json()) as Record<string, unknown>
}

interface StreamRead {
  events: string[]
  /** Set when the connection ended without a proper end of body. */
  failure: unknown
}

/** Reads raw events (separated by a blank line) until the body ends, fails, or `limit` events are in. */
async function readEvents(res: Response, limit = Number.POSITIVE_INFINITY): Promise<StreamRead> {
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  let buffered = ''
  const events: string[] = []
  try {
    while (events.length < limit) {
      const { done, value } = await reader.read()
      if (done) break
      buffered += decoder.decode(value, { stream: true })
      const parts = buffered.split('\n\n')
      buffered = parts.pop() ?? ''
      events.push(...parts)
    }
    return { events, failure: undefined }
  } catch (failure) {
    return { events, failure }
  }
}

function dataOf(event: string): unknown {
  const line = event.split('\n').find((l) => l.startsWith('data: '))
  return JSON.parse(line?.slice('data: '.length) ?? 'null')
}

function eventNames(events: string[]): string[] {
  return events.map((event) => event.split('\n')[0]?.replace('event: ', '') ?? '')
}

function openAiText(events: string[]): string {
  return events
    .filter((event) => event !== 'data: [DONE]')
    .map((event) => dataOf(event) as { choices: { delta: { content?: string } }[] })
    .map((chunk) => chunk.choices[0]?.delta.content ?? '')
    .join('')
}

describe('createMockProvider', () => {
  it('listens on 127.0.0.1 with a free port', () => {
    expect(mock.port).toBeGreaterThan(0)
    expect(mock.url).toBe(`http://127.0.0.1:${mock.port}`)
  })

  it('answers unknown routes with 404 and an OpenAI error body', async () => {
    const res = await post('/v1/nothing-here', {})
    expect(res.status).toBe(404)
    const body = (await res.json()) as { error: { code: string; param: null } }
    expect(body.error).toMatchObject({ code: 'not_found', param: null, type: 'invalid_request_error' })
  })
})

describe('OpenAI dialect', () => {
  it('answers a chat completion as JSON with content-length, echoed model and word-count usage', async () => {
    const res = await post('/openai/v1/chat/completions', { model: 'gpt-4o', messages: userTurn })
    expect(res.headers.get('content-type')).toBe('application/json')
    expect(res.headers.get('content-length')).not.toBeNull()
    expect(await res.json()).toMatchObject({
      object: 'chat.completion',
      model: 'gpt-4o',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'mock reply to: hello there' },
          finish_reason: 'stop',
        },
      ],
      usage: { prompt_tokens: 2, completion_tokens: 5, total_tokens: 7 },
    })
  })

  it('accepts the bare path without a version prefix', async () => {
    const body = await postJson('/chat/completions', { messages: userTurn })
    expect(body.object).toBe('chat.completion')
  })

  it('streams role, word pieces, finish, usage and [DONE] as separate SSE events', async () => {
    const res = await post('/v1/chat/completions', {
      model: 'gpt-4o',
      messages: userTurn,
      stream: true,
      stream_options: { include_usage: true },
    })
    expect(res.headers.get('content-type')).toBe('text/event-stream')
    expect(res.headers.get('cache-control')).toBe('no-cache')
    expect(res.headers.get('content-length')).toBeNull()
    const { events, failure } = await readEvents(res)
    expect(failure).toBeUndefined()
    expect(events.at(-1)).toBe('data: [DONE]')
    expect(dataOf(events[0] ?? '')).toMatchObject({ choices: [{ delta: { role: 'assistant' } }] })
    expect(openAiText(events)).toBe('mock reply to: hello there')
    expect(dataOf(events.at(-3) ?? '')).toMatchObject({ choices: [{ delta: {}, finish_reason: 'stop' }] })
    expect(dataOf(events.at(-2) ?? '')).toMatchObject({ choices: [], usage: { total_tokens: 7 } })
  })

  it('calls the forced tool from tool_choice', async () => {
    const body = await postJson('/v1/chat/completions', {
      messages: userTurn,
      tools: [
        { type: 'function', function: { name: 'first' } },
        { type: 'function', function: { name: 'lookup' } },
      ],
      tool_choice: { type: 'function', function: { name: 'lookup' } },
    })
    expect(body.choices).toMatchObject([
      {
        message: {
          role: 'assistant',
          tool_calls: [{ type: 'function', function: { name: 'lookup', arguments: '{}' } }],
        },
        finish_reason: 'tool_calls',
      },
    ])
  })

  it('streams a tool call to the first tool when the user asks for a tool', async () => {
    const res = await post('/v1/chat/completions', {
      stream: true,
      messages: [{ role: 'user', content: 'please use a tool' }],
      tools: [{ type: 'function', function: { name: 'search' } }],
    })
    const { events } = await readEvents(res)
    expect(events.at(-1)).toBe('data: [DONE]')
    expect(dataOf(events[1] ?? '')).toMatchObject({
      choices: [{ delta: { tool_calls: [{ index: 0, type: 'function', function: { name: 'search' } }] } }],
    })
    expect(dataOf(events.at(-2) ?? '')).toMatchObject({ choices: [{ finish_reason: 'tool_calls' }] })
  })

  it('returns deterministic 8-dimension embeddings for string and array input', async () => {
    const single = await postJson('/v1/embeddings', { model: 'text-embedding-3-small', input: 'alpha' })
    const many = await postJson('/v1/embeddings', { input: ['alpha', 'beta gamma'] })
    const vectors = (many.data as { embedding: number[]; index: number }[]).map((item) => item.embedding)
    expect(vectors).toHaveLength(2)
    expect(vectors[0]).toHaveLength(8)
    expect((single.data as { embedding: number[] }[])[0]?.embedding).toEqual(vectors[0])
    expect(vectors[1]).not.toEqual(vectors[0])
    expect(many).toMatchObject({ object: 'list', usage: { prompt_tokens: 3, total_tokens: 3 } })
  })

  it('lists models', async () => {
    const res = await fetch(`${mock.url}/v1/models`, { headers: { authorization: 'Bearer sk-test' } })
    const body = (await res.json()) as { object: string; data: { object: string }[] }
    expect(body.object).toBe('list')
    expect(body.data.length).toBeGreaterThan(0)
    expect(body.data[0]?.object).toBe('model')
  })
})

describe('Anthropic dialect', () => {
  const messages = [{ role: 'user', content: [{ type: 'text', text: 'hi claude' }] }]

  it('answers a message as JSON', async () => {
    expect(await postJson('/v1/messages', { model: 'claude-x', messages })).toMatchObject({
      type: 'message',
      role: 'assistant',
      model: 'claude-x',
      content: [{ type: 'text', text: 'mock reply to: hi claude' }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: 2, output_tokens: 5 },
    })
  })

  it('streams the Anthropic event sequence ending with message_stop', async () => {
    const res = await post('/anthropic/v1/messages', { model: 'claude-x', messages, stream: true })
    const { events, failure } = await readEvents(res)
    expect(failure).toBeUndefined()
    expect(eventNames(events)).toEqual([
      'message_start',
      'content_block_start',
      'ping',
      ...Array.from({ length: 5 }, () => 'content_block_delta'),
      'content_block_stop',
      'message_delta',
      'message_stop',
    ])
    const text = events
      .filter((event) => event.startsWith('event: content_block_delta'))
      .map((event) => (dataOf(event) as { delta: { text: string } }).delta.text)
      .join('')
    expect(text).toBe('mock reply to: hi claude')
    expect(dataOf(events.at(-2) ?? '')).toMatchObject({
      delta: { stop_reason: 'end_turn' },
      usage: { output_tokens: 5 },
    })
  })
})

describe('Gemini dialect', () => {
  const contents = [{ role: 'user', parts: [{ text: 'hey gemini' }] }]
  const path = '/v1beta/models/gemini-2.0-flash'

  it('answers generateContent as JSON with the model from the path', async () => {
    expect(await postJson(`${path}:generateContent`, { contents })).toMatchObject({
      candidates: [
        {
          content: { role: 'model', parts: [{ text: 'mock reply to: hey gemini' }] },
          finishReason: 'STOP',
          index: 0,
        },
      ],
      usageMetadata: { promptTokenCount: 2, candidatesTokenCount: 5, totalTokenCount: 7 },
      modelVersion: 'gemini-2.0-flash',
    })
  })

  it('streams SSE with alt=sse, the last event carrying finishReason and usage, and no [DONE]', async () => {
    const res = await post(`${path}:streamGenerateContent?alt=sse`, { contents })
    expect(res.headers.get('content-type')).toBe('text/event-stream')
    const { events } = await readEvents(res)
    const chunks = events.map((event) => dataOf(event) as { candidates: { finishReason?: string }[] })
    expect(events.every((event) => event.startsWith('data: {'))).toBe(true)
    expect(chunks.at(-1)).toMatchObject({
      candidates: [{ finishReason: 'STOP' }],
      usageMetadata: { totalTokenCount: 7 },
    })
    expect(chunks.slice(0, -1).every((chunk) => chunk.candidates[0]?.finishReason === undefined)).toBe(true)
  })

  it('streams a JSON array without alt=sse', async () => {
    const res = await post(`${path}:streamGenerateContent`, { contents })
    const chunks = (await res.json()) as { candidates: { content: { parts: { text: string }[] } }[] }[]
    const text = chunks.map((chunk) => chunk.candidates[0]?.content.parts[0]?.text).join('')
    expect(text).toBe('mock reply to: hey gemini')
  })
})

describe('scripted failures', () => {
  it('answers a scripted status with Retry-After and each dialect error body', async () => {
    mock.enqueue(
      { status: 429, retryAfter: 7 },
      { status: 529 },
      { status: 503, retryAfter: 'Wed, 21 Oct 2026 07:28:00 GMT' },
    )
    const openAi = await post('/v1/chat/completions', { messages: userTurn })
    expect(openAi.status).toBe(429)
    expect(openAi.headers.get('retry-after')).toBe('7')
    expect(openAi.headers.get('content-type')).toBe('application/json')
    expect(await openAi.json()).toMatchObject({
      error: { type: expect.any(String), param: null, message: expect.any(String) },
    })

    const anthropic = await post('/v1/messages', { messages: userTurn })
    expect(anthropic.status).toBe(529)
    expect(await anthropic.json()).toMatchObject({ type: 'error', error: { type: 'overloaded_error' } })

    const gemini = await post('/v1beta/models/g:generateContent', {})
    expect(gemini.status).toBe(503)
    expect(gemini.headers.get('retry-after')).toBe('Wed, 21 Oct 2026 07:28:00 GMT')
    expect(await gemini.json()).toMatchObject({ error: { code: 503, status: 'UNAVAILABLE' } })
  })

  it('maps Anthropic rate limits and other failures to their error types', async () => {
    mock.enqueue({ status: 429 }, { status: 500 })
    expect(await postJson('/v1/messages', {})).toMatchObject({ error: { type: 'rate_limit_error' } })
    expect(await postJson('/v1/messages', {})).toMatchObject({ error: { type: 'api_error' } })
  })

  it('replaces the body and adds headers when scripted, even for a streaming request', async () => {
    mock.enqueue(
      { status: 400, body: { custom: true }, headers: { 'x-upstream': 'yes' } },
      { body: 'plain text' },
    )
    const res = await post('/v1/chat/completions', { messages: userTurn, stream: true })
    expect(res.status).toBe(400)
    expect(res.headers.get('x-upstream')).toBe('yes')
    expect(await res.json()).toEqual({ custom: true })
    expect(await (await post('/v1/chat/completions', { messages: userTurn })).text()).toBe('plain text')
  })

  it('uses the scripted reply text', async () => {
    mock.enqueue({ reply: 'scripted answer' })
    const body = await postJson('/v1/chat/completions', { messages: userTurn })
    expect(body.choices).toMatchObject([{ message: { content: 'scripted answer' } }])
  })

  it('still answers after latencyMs and with chunkDelayMs', async () => {
    mock.enqueue({ latencyMs: 20 }, { chunkDelayMs: 5 })
    expect((await post('/v1/chat/completions', { messages: userTurn })).status).toBe(200)
    const { events } = await readEvents(
      await post('/v1/chat/completions', { messages: userTurn, stream: true }),
    )
    expect(openAiText(events)).toBe('mock reply to: hello there')
    expect(events.at(-1)).toBe('data: [DONE]')
  })

  it('cuts an OpenAI stream after N events without [DONE]', async () => {
    mock.enqueue({ cutAfterEvents: 3 })
    const { events, failure } = await readEvents(
      await post('/v1/chat/completions', { messages: userTurn, stream: true }),
    )
    expect(failure).toBeDefined()
    expect(events).toHaveLength(3)
    expect(events).not.toContain('data: [DONE]')
    expect(await mock.calls[0]?.outcome).toBe('aborted')
  })

  it('cuts an Anthropic stream before message_stop', async () => {
    mock.enqueue({ cutAfterEvents: 4 })
    const { events, failure } = await readEvents(
      await post('/v1/messages', { messages: userTurn, stream: true }),
    )
    expect(failure).toBeDefined()
    expect(eventNames(events)).toEqual([
      'message_start',
      'content_block_start',
      'ping',
      'content_block_delta',
    ])
  })

  it('resumes a stream stalled for stallMs and delivers every event', async () => {
    mock.enqueue({ stallAfterEvents: 2, stallMs: 20 })
    const { events, failure } = await readEvents(
      await post('/v1/chat/completions', { messages: userTurn, stream: true }),
    )
    expect(failure).toBeUndefined()
    expect(openAiText(events)).toBe('mock reply to: hello there')
    expect(events.at(-1)).toBe('data: [DONE]')
    expect(await mock.calls[0]?.outcome).toBe('finished')
  })

  it('delivers the events before an endless stall, and records the abort when the client leaves', async () => {
    mock.enqueue({ stallAfterEvents: 2 })
    const controller = new AbortController()
    const res = await post(
      '/v1/chat/completions',
      { messages: userTurn, stream: true },
      { signal: controller.signal },
    )
    const { events } = await readEvents(res, 2)
    expect(events).toHaveLength(2)
    controller.abort()
    expect(await mock.calls[0]?.outcome).toBe('aborted')
  })

  it('emits a malformed event at the given content index and still terminates', async () => {
    mock.enqueue({ malformedEventAt: 1 })
    const { events } = await readEvents(
      await post('/v1/chat/completions', { messages: userTurn, stream: true }),
    )
    // Index 0 is the role chunk, so content event 1 is overall event 2.
    expect(events[2]).toBe('data: {not json')
    expect(events.filter((event) => event === 'data: {not json')).toHaveLength(1)
    expect(events.at(-1)).toBe('data: [DONE]')
  })

  it('never answers with stallBeforeHeaders, and records the abort', async () => {
    mock.enqueue({ stallBeforeHeaders: true })
    const controller = new AbortController()
    const pending = post('/v1/chat/completions', { messages: userTurn }, { signal: controller.signal })
    await until(() => mock.calls.length === 1)
    controller.abort()
    await expect(pending).rejects.toThrow()
    expect(await mock.calls[0]?.outcome).toBe('aborted')
  })
})

describe('call recording and the script queue', () => {
  it('records method, path, query, headers, raw body and parsed JSON, refused calls included', async () => {
    await post('/v1beta/models/g:streamGenerateContent?alt=sse&key=k', '{"contents":[]}', {
      headers: { 'content-type': 'application/json', 'X-Api-Key': 'secret' },
    })
    await post('/v1/chat/completions', 'not json')
    const [first, second] = mock.calls
    expect(first).toMatchObject({
      method: 'POST',
      path: '/v1beta/models/g:streamGenerateContent',
      query: '?alt=sse&key=k',
      body: '{"contents":[]}',
      json: { contents: [] },
    })
    expect(first?.headers['x-api-key']).toBe('secret')
    expect(await first?.outcome).toBe('finished')
    expect(second).toMatchObject({ query: '', body: 'not json', json: undefined })
  })

  it('joins multi-valued headers with a comma', async () => {
    await new Promise<void>((resolve, reject) => {
      const headers = { 'x-multi': ['a', 'b'], authorization: 'Bearer sk-test' }
      const req = httpRequest(`${mock.url}/v1/models`, { headers }, (res) => {
        res.resume()
        res.on('end', resolve)
      })
      req.on('error', reject)
      req.end()
    })
    expect(mock.calls[0]?.headers['x-multi']).toBe('a, b')
  })

  it('consumes scripts one per call in order, then falls back to the default', async () => {
    mock.enqueue({ status: 500 }, { status: 429 })
    const statuses: number[] = []
    for (let i = 0; i < 3; i++)
      statuses.push((await post('/v1/chat/completions', { messages: userTurn })).status)
    expect(statuses).toEqual([500, 429, 200])
    expect(mock.calls).toHaveLength(3)
  })

  it('reset clears calls and queued scripts', async () => {
    mock.enqueue({ status: 500 })
    await fetch(`${mock.url}/v1/models`, { headers: { authorization: 'Bearer sk-test' } })
    mock.enqueue({ status: 500 })
    mock.reset()
    expect(mock.calls).toHaveLength(0)
    expect((await post('/v1/chat/completions', { messages: userTurn })).status).toBe(200)
  })
})

describe('close', () => {
  it('does not hang on stalled calls and reports them aborted', async () => {
    const local = await createMockProvider()
    local.enqueue({ stallBeforeHeaders: true }, { stallAfterEvents: 1 })
    const stalled = post('/v1/chat/completions', {}, {}, local.url).catch((error: unknown) => error)
    // Scripts go to calls in arrival order, so let the first call land before sending the second.
    await until(() => local.calls.length === 1)
    const streaming = await post('/v1/messages', '{"stream":true}', {}, local.url)
    const { events } = await readEvents(streaming, 1)
    expect(events).toHaveLength(1)
    await until(() => local.calls.length === 2)

    await local.close()

    expect(await stalled).toBeInstanceOf(Error)
    expect(await Promise.all(local.calls.map((call) => call.outcome))).toEqual(['aborted', 'aborted'])
  })
})

describe('strict by default: credentials', () => {
  const chat = { messages: userTurn }
  const gemini = '/v1beta/models/gemini-2.0-flash:generateContent'
  const contents = { contents: [{ parts: [{ text: 'hi' }] }] }
  const noKey = { headers: { 'content-type': 'application/json' } }

  it('answers a call without a key in each dialect’s own shape: 401, and 403 for Gemini', async () => {
    const openAi = await post('/v1/chat/completions', chat, noKey)
    expect(openAi.status).toBe(401)
    expect(await openAi.json()).toEqual({
      error: {
        message: expect.stringMatching(/^You didn't provide an API key\. .*Authorization: Bearer YOUR_KEY/),
        type: 'invalid_request_error',
        param: null,
        code: null,
      },
    })

    const anthropic = await post('/v1/messages', chat, noKey)
    expect(anthropic.status).toBe(401)
    expect(await anthropic.json()).toEqual({
      type: 'error',
      error: { type: 'authentication_error', message: 'x-api-key header is required' },
    })

    const google = await post(gemini, contents, noKey)
    expect(google.status).toBe(403)
    expect(await google.json()).toMatchObject({
      error: {
        code: 403,
        status: 'PERMISSION_DENIED',
        message: expect.stringContaining('unregistered callers'),
      },
    })

    const azure = await post('/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21', chat, noKey)
    expect(azure.status).toBe(401)
    expect(await azure.json()).toEqual({
      error: {
        code: '401',
        message: expect.stringMatching(/^Access denied due to invalid subscription key/),
      },
    })

    expect((await fetch(`${mock.url}/v1/models`)).status).toBe(401)
    expect((await post('/v1/embeddings', { input: 'x' }, noKey)).status).toBe(401)
  })

  it('reads each dialect’s key where its provider does', async () => {
    const accepted = [
      ['/v1/chat/completions', { authorization: 'Bearer sk-test' }, chat],
      ['/openai/deployments/gpt4o/chat/completions', { 'api-key': 'az-key' }, chat],
      ['/openai/v1/chat/completions', { 'api-key': 'az-key' }, chat],
      ['/v1/messages', { 'x-api-key': 'sk-ant-test' }, chat],
      ['/v1/messages', { authorization: 'Bearer oauth-token' }, chat],
      [gemini, { 'x-goog-api-key': 'goog-test' }, contents],
      [`${gemini}?key=goog-test`, {}, contents],
      [gemini, { authorization: 'Bearer ya29.token' }, contents],
    ] as const
    for (const [path, headers, body] of accepted) {
      const res = await post(path, body, { headers: { 'content-type': 'application/json', ...headers } })
      expect({ path, headers, status: res.status }).toEqual({ path, headers, status: 200 })
    }
    const refused = [
      // Another provider's header is no credential here.
      ['/v1/chat/completions', { 'x-api-key': 'sk-test' }, chat, 401],
      ['/v1/chat/completions', { 'api-key': 'sk-test' }, chat, 401],
      ['/v1/chat/completions', { authorization: 'sk-test' }, chat, 401],
      ['/v1/chat/completions', { authorization: 'Bearer ' }, chat, 401],
      ['/v1/messages', { 'x-goog-api-key': 'k' }, chat, 401],
      [gemini, { 'x-api-key': 'k' }, contents, 403],
    ] as const
    for (const [path, headers, body, status] of refused) {
      const res = await post(path, body, { headers: { 'content-type': 'application/json', ...headers } })
      expect({ path, headers, status: res.status }).toEqual({ path, headers, status })
    }
  })

  it('answers unknown routes with 404 whatever the credential', async () => {
    const res = await fetch(`${mock.url}/v1/nothing-here`, { method: 'POST', body: 'not json' })
    expect(res.status).toBe(404)
  })

  it('refuses keys outside `keys`, without quoting them unless asked', async () => {
    const keyed = await createMockProvider({ keys: ['sk-good', 'sk-ant-good', 'goog-good'] })
    try {
      const bearer = (key: string) => ({ headers: { authorization: `Bearer ${key}` } })
      expect((await post('/v1/chat/completions', chat, bearer('sk-good'), keyed.url)).status).toBe(200)
      const wrong = await post('/v1/chat/completions', chat, bearer('sk-wrong-1234'), keyed.url)
      expect(wrong.status).toBe(401)
      const text = await wrong.text()
      expect(JSON.parse(text)).toEqual({
        error: {
          message:
            'Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.',
          type: 'invalid_request_error',
          param: null,
          code: 'invalid_api_key',
        },
      })
      expect(text).not.toContain('sk-wrong-1234')
      // A scripted answer does not get past the check: the refused call still uses up its script.
      keyed.enqueue({ reply: 'never seen' })
      expect((await post('/v1/chat/completions', chat, bearer('sk-wrong'), keyed.url)).status).toBe(401)
      const next = await post('/v1/chat/completions', chat, bearer('sk-good'), keyed.url)
      expect(await next.json()).toMatchObject({
        choices: [{ message: { content: 'mock reply to: hello there' } }],
      })
    } finally {
      await keyed.close()
    }
  })

  it('quotes the refused key in every dialect with echoKeyInErrors, as OpenAI does', async () => {
    const echoing = await createMockProvider({ keys: ['sk-good'], echoKeyInErrors: true })
    try {
      const openAi = await post(
        '/v1/chat/completions',
        chat,
        { headers: { authorization: 'Bearer sk-bad-9' } },
        echoing.url,
      )
      expect(openAi.status).toBe(401)
      expect(await openAi.json()).toMatchObject({
        error: {
          message:
            'Incorrect API key provided: sk-bad-9. You can find your API key at https://platform.openai.com/account/api-keys.',
          code: 'invalid_api_key',
        },
      })

      const anthropic = await post(
        '/v1/messages',
        chat,
        { headers: { 'x-api-key': 'sk-ant-bad' } },
        echoing.url,
      )
      expect(anthropic.status).toBe(401)
      expect(await anthropic.json()).toEqual({
        type: 'error',
        error: { type: 'authentication_error', message: 'invalid x-api-key: sk-ant-bad' },
      })

      const googleKey = await post(`${gemini}?key=goog-bad`, contents, { headers: {} }, echoing.url)
      expect(googleKey.status).toBe(400)
      expect(await googleKey.json()).toMatchObject({
        error: {
          code: 400,
          status: 'INVALID_ARGUMENT',
          message: 'API key not valid: goog-bad. Please pass a valid API key.',
          details: [{ reason: 'API_KEY_INVALID' }],
        },
      })
      const googleToken = await post(
        gemini,
        contents,
        { headers: { authorization: 'Bearer ya29.bad' } },
        echoing.url,
      )
      expect(googleToken.status).toBe(401)
      expect(await googleToken.json()).toMatchObject({
        error: { code: 401, status: 'UNAUTHENTICATED', message: expect.stringContaining('ya29.bad') },
      })

      const azure = await post(
        '/openai/deployments/d/chat/completions',
        chat,
        { headers: { 'api-key': 'az-bad' } },
        echoing.url,
      )
      expect(azure.status).toBe(401)
      expect(await azure.text()).toContain('az-bad')
    } finally {
      await echoing.close()
    }
  })

  it('answers a scripted 401 with the wrong-key error for the key sent, quoted when the script asks', async () => {
    mock.enqueue(
      { status: 401, echoKeyInErrors: true },
      { status: 401 },
      { status: 401, echoKeyInErrors: true },
    )
    const quoted = await post('/v1/chat/completions', chat, {
      headers: { authorization: 'Bearer sk-live-42' },
    })
    expect(quoted.status).toBe(401)
    expect(await quoted.json()).toMatchObject({
      error: {
        message: expect.stringMatching(/^Incorrect API key provided: sk-live-42\. /),
        code: 'invalid_api_key',
      },
    })
    const plain = await post('/v1/chat/completions', chat, {
      headers: { authorization: 'Bearer sk-live-42' },
    })
    expect(await plain.text()).not.toContain('sk-live-42')
    // Gemini answers a bad API key with 400, but a scripted 401 stays a 401 in Gemini's 401 shape.
    const google = await post(`${gemini}?key=goog-live`, contents, { headers: {} })
    expect(google.status).toBe(401)
    expect(await google.json()).toMatchObject({
      error: { code: 401, status: 'UNAUTHENTICATED', message: expect.stringContaining('goog-live') },
    })
  })
})

describe('strict by default: bodies', () => {
  it('refuses a POST body that is not JSON with 400 in each dialect’s shape', async () => {
    const openAi = await post('/v1/chat/completions', '{"messages": [')
    expect(openAi.status).toBe(400)
    expect(await openAi.json()).toEqual({
      error: {
        message: expect.stringMatching(/^We could not parse the JSON body of your request\./),
        type: 'invalid_request_error',
        param: null,
        code: null,
      },
    })
    const anthropic = await post('/v1/messages', 'messages=hi')
    expect(anthropic.status).toBe(400)
    expect(await anthropic.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } })
    const google = await post('/v1beta/models/g:generateContent', '')
    expect(google.status).toBe(400)
    expect(await google.json()).toMatchObject({ error: { code: 400, status: 'INVALID_ARGUMENT' } })
    expect((await post('/v1/embeddings', '')).status).toBe(400)
  })

  it('refuses JSON that is not an object', async () => {
    expect((await post('/v1/chat/completions', '[]')).status).toBe(400)
    expect((await post('/v1/messages', '"text"')).status).toBe(400)
  })

  it('checks the key before the body, as providers do', async () => {
    const res = await post('/v1/chat/completions', 'not json', { headers: {} })
    expect(res.status).toBe(401)
  })
})

describe('chunked error bodies', () => {
  it('sends an error body chunked, in at least two chunks, without Content-Length', async () => {
    mock.enqueue({ status: 503, retryAfter: 1 })
    const raw = await rawRequest(
      mock.port,
      'POST',
      '/v1/chat/completions',
      {
        authorization: 'Bearer sk-test',
        'content-type': 'application/json',
      },
      JSON.stringify({ messages: userTurn }),
    )
    expect(raw.head).toMatch(/^HTTP\/1\.1 503 /)
    expect(raw.headers['transfer-encoding']).toBe('chunked')
    expect(raw.headers['content-length']).toBeUndefined()
    expect(raw.headers['retry-after']).toBe('1')
    expect(raw.chunks.length).toBeGreaterThanOrEqual(2)
    expect(JSON.parse(raw.body)).toMatchObject({ error: { type: 'server_error', code: 'server_error' } })
  })

  it('chunks refusals and 404s too, and keeps Content-Length on success bodies', async () => {
    const refused = await rawRequest(mock.port, 'POST', '/v1/messages', {}, '{}')
    expect(refused.head).toMatch(/^HTTP\/1\.1 401 /)
    expect(refused.headers['transfer-encoding']).toBe('chunked')
    expect(refused.chunks.length).toBeGreaterThanOrEqual(2)
    expect(JSON.parse(refused.body)).toMatchObject({ error: { type: 'authentication_error' } })

    const missing = await rawRequest(mock.port, 'GET', '/nowhere', {})
    expect(missing.headers['transfer-encoding']).toBe('chunked')
    expect(missing.chunks.length).toBeGreaterThanOrEqual(2)

    const ok = await rawRequest(mock.port, 'POST', '/v1/messages', { 'x-api-key': 'k' }, '{"messages":[]}')
    expect(ok.head).toMatch(/^HTTP\/1\.1 200 /)
    expect(ok.headers['transfer-encoding']).toBeUndefined()
    expect(Number(ok.headers['content-length'])).toBe(Buffer.byteLength(ok.body))
  })

  it('shows the chunking to an ordinary client through the headers', async () => {
    mock.enqueue({ status: 429 })
    const res = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
      (resolve, reject) => {
        const req = httpRequest(
          `${mock.url}/v1/chat/completions`,
          { method: 'POST', headers: { authorization: 'Bearer sk-test' } },
          (response) => {
            let body = ''
            response.setEncoding('utf8')
            response.on('data', (data: string) => {
              body += data
            })
            response.on('end', () =>
              resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
            )
          },
        )
        req.on('error', reject)
        req.end(JSON.stringify({ messages: userTurn }))
      },
    )
    expect(res.status).toBe(429)
    expect(res.headers['transfer-encoding']).toBe('chunked')
    expect(res.headers['content-length']).toBeUndefined()
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'rate_limit_exceeded' } })
  })

  it('sends an error with Content-Length when the script or the provider says so', async () => {
    mock.enqueue({ status: 500, chunked: false })
    const scripted = await rawRequest(mock.port, 'POST', '/v1/messages', { 'x-api-key': 'k' }, '{}')
    expect(scripted.headers['transfer-encoding']).toBeUndefined()
    expect(Number(scripted.headers['content-length'])).toBe(Buffer.byteLength(scripted.body))

    const plain = await createMockProvider({ chunkedErrors: false })
    try {
      const refused = await rawRequest(plain.port, 'POST', '/v1/messages', {}, '{}')
      expect(refused.head).toMatch(/^HTTP\/1\.1 401 /)
      expect(refused.headers['transfer-encoding']).toBeUndefined()
      expect(Number(refused.headers['content-length'])).toBe(Buffer.byteLength(refused.body))
    } finally {
      await plain.close()
    }
  })
})

describe('lenient mode', () => {
  it('accepts calls without a key and bodies that are not JSON, and sends errors with Content-Length', async () => {
    const lenient = await createMockProvider({ lenient: true })
    try {
      const noKey = await fetch(`${lenient.url}/v1/chat/completions`, { method: 'POST', body: 'not json' })
      expect(noKey.status).toBe(200)
      expect(await noKey.json()).toMatchObject({ choices: [{ message: { content: 'mock reply' } }] })
      expect((await fetch(`${lenient.url}/v1/messages`, { method: 'POST' })).status).toBe(200)
      expect((await fetch(`${lenient.url}/v1/models`)).status).toBe(200)

      lenient.enqueue({ status: 529 })
      const raw = await rawRequest(lenient.port, 'POST', '/v1/messages', {}, '{}')
      expect(raw.head).toMatch(/^HTTP\/1\.1 529 /)
      expect(raw.headers['transfer-encoding']).toBeUndefined()
      expect(Number(raw.headers['content-length'])).toBe(Buffer.byteLength(raw.body))
    } finally {
      await lenient.close()
    }
  })

  it('still checks keys when `keys` is given, and lets single checks be turned back on', async () => {
    const keyed = await createMockProvider({ lenient: true, keys: ['sk-test'] })
    const bodies = await createMockProvider({ lenient: true, requireJson: true })
    try {
      expect((await post('/v1/chat/completions', 'not json', {}, keyed.url)).status).toBe(200)
      expect((await post('/v1/chat/completions', {}, { headers: {} }, keyed.url)).status).toBe(401)
      expect((await post('/v1/chat/completions', {}, { headers: {} }, bodies.url)).status).toBe(200)
      expect((await post('/v1/chat/completions', 'not json', { headers: {} }, bodies.url)).status).toBe(400)
    } finally {
      await Promise.all([keyed.close(), bodies.close()])
    }
  })
})
