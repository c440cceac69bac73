import { request as httpRequest } from 'node:http'
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { createMockProvider, type MockProvider } from '../../src/testing/index.js'

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

function post(path: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(`${mock.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  })
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
    const res = await fetch(`${mock.url}/v1/models`)
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
    await vi.waitFor(() => expect(mock.calls).toHaveLength(1))
    controller.abort()
    await expect(pending).rejects.toThrow()
    expect(await mock.calls[0]?.outcome).toBe('aborted')
  })
})

describe('call recording and the script queue', () => {
  it('records method, path, query, headers, raw body and parsed JSON', async () => {
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
      const req = httpRequest(`${mock.url}/v1/models`, { headers: { 'x-multi': ['a', 'b'] } }, (res) => {
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
    await fetch(`${mock.url}/v1/models`)
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
    const stalled = fetch(`${local.url}/v1/chat/completions`, { method: 'POST', body: '{}' }).catch(
      (error: unknown) => error,
    )
    // Scripts go to calls in arrival order, so let the first call land before sending the second.
    await vi.waitFor(() => expect(local.calls).toHaveLength(1))
    const streaming = await fetch(`${local.url}/v1/messages`, { method: 'POST', body: '{"stream":true}' })
    const { events } = await readEvents(streaming, 1)
    expect(events).toHaveLength(1)
    await vi.waitFor(() => expect(local.calls).toHaveLength(2))

    await local.close()

    expect(await stalled).toBeInstanceOf(Error)
    expect(await Promise.all(local.calls.map((call) => call.outcome))).toEqual(['aborted', 'aborted'])
  })
})
