import { expect, it, onTestFinished } from 'vitest'
import type { RequestEndEvent, UpstreamRetryEvent } from '../../src/events.js'
import type { MockScript } from '../../src/testing/index.js'
import {
  OPENAI_DONE,
  openaiCompletion,
  SSE_HEADERS,
  startFaultServer,
  writeAsync,
  writeFixed,
} from '../helpers/fault-server.js'
import { send } from '../helpers/http.js'
import { chat, type World } from './scenarios.js'

const CHAT_PATH = '/v1/chat/completions'
const MESSAGES_PATH = '/v1/messages'

/** A universal request: OpenAI chat first, Anthropic messages as the fallback; both on the mock. */
function openaiThenAnthropic(text: string, stream: boolean, headers: Record<string, string> = {}) {
  return [
    { provider: 'openai', endpoint: 'chat/completions', headers, query: chat(text, { stream }) },
    {
      provider: 'anthropic',
      endpoint: 'v1/messages',
      headers: {},
      query: { model: 'claude', max_tokens: 50, stream, messages: [{ role: 'user', content: text }] },
    },
  ]
}

function callsTo(world: World, path: string): number {
  return world.mock.calls.filter((call) => call.path === path).length
}

/** Records what the gateway says about each attempt and each request's end. */
function watch(world: World) {
  const retries: UpstreamRetryEvent[] = []
  const ends: RequestEndEvent[] = []
  world.gateway?.events.on('upstream:retry', (event) => retries.push(event))
  world.gateway?.events.on('request:end', (event) => ends.push(event))
  return { retries, ends }
}

const ANTHROPIC_STREAM_END = /event: message_stop\ndata: \{"type":"message_stop"\}\n\n$/
const OPENAI_STREAM_END = /data: \[DONE\]\n\n$/

/**
 * Provider failures, one row each, and what the gateway saves: the same table in every framework. Each
 * row states what the client got and how many attempts each target saw.
 */
export function failoverScenarios(world: World): void {
  it('failover: a 429 without Retry-After falls back to the next target at once by default', async () => {
    world.mock.reset()
    world.mock.enqueue({ status: 429 })
    const url = await world.start()
    const seen = watch(world)
    const res = await send(`${url}/ai`, { body: openaiThenAnthropic('busy', false) })
    expect(res.status).toBe(200)
    expect(res.headers['cf-aig-step']).toBe('1')
    expect([callsTo(world, CHAT_PATH), callsTo(world, MESSAGES_PATH)]).toEqual([1, 1])
    expect(seen.retries).toEqual([
      expect.objectContaining({ action: 'fallback', failureClass: 'rate_limited', status: 429 }),
    ])
  })

  it('failover: a 500 once is retried on the same target, and the client never sees it', async () => {
    world.mock.reset()
    world.mock.enqueue({ status: 500 })
    const url = await world.start({ retries: { maxAttempts: 2, delayMs: 0 } })
    const seen = watch(world)
    const res = await send(`${url}/ai/openai/chat/completions`, { body: chat('once') })
    expect(res.status).toBe(200)
    expect(res.json()).toMatchObject({ choices: [{ message: { content: 'mock reply to: once' } }] })
    expect(callsTo(world, CHAT_PATH)).toBe(2)
    expect(seen.retries).toEqual([
      expect.objectContaining({ action: 'retry', failureClass: 'server_error', attempt: 1 }),
    ])
  })

  it('failover: a persistent 503 uses the target’s attempts, then the next target answers', async () => {
    world.mock.reset()
    world.mock.enqueue({ status: 503 }, { status: 503 })
    const url = await world.start({ retries: { maxAttempts: 2, delayMs: 0 } })
    const res = await send(`${url}/ai`, { body: openaiThenAnthropic('down', false) })
    expect(res.status).toBe(200)
    expect(res.json()).toMatchObject({ type: 'message', content: [{ text: 'mock reply to: down' }] })
    expect([callsTo(world, CHAT_PATH), callsTo(world, MESSAGES_PATH)]).toEqual([2, 1])
  })

  it('failover: a connection reset before the headers is a network failure, retried', async () => {
    world.mock.reset()
    let calls = 0
    const fault = await startFaultServer((_request, res, socket) => {
      calls++
      if (calls === 1) {
        socket.destroy()
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({ id: 'x', object: 'chat.completion', choices: [{ message: { content: 'saved' } }] }),
      )
    })
    onTestFinished(() => fault.close())
    const url = await world.start({
      providers: { openai: { apiKey: 'sk-stored', baseURL: `${fault.url}/v1` } },
      retries: { maxAttempts: 2, delayMs: 0 },
    })
    const seen = watch(world)
    const res = await send(`${url}/ai/openai/chat/completions`, { body: chat('reset') })
    expect(res.status).toBe(200)
    expect(res.json()).toMatchObject({ choices: [{ message: { content: 'saved' } }] })
    expect(calls).toBe(2)
    expect(seen.retries).toEqual([expect.objectContaining({ action: 'retry', failureClass: 'network' })])
  })

  it('failover: a target that never answers is not retried after its first-byte clock, but failed over', async () => {
    world.mock.reset()
    world.mock.enqueue({ stallBeforeHeaders: true })
    // Three attempts allowed for errors: a timeout still costs one clock, not three.
    const url = await world.start({ retries: { maxAttempts: 3, delayMs: 0 } })
    const seen = watch(world)
    const headers = { 'cf-aig-request-timeout': '150' }
    const res = await send(`${url}/ai`, { body: openaiThenAnthropic('silent', false, headers) })
    expect(res.status).toBe(200)
    expect(res.headers['cf-aig-step']).toBe('1')
    expect([callsTo(world, CHAT_PATH), callsTo(world, MESSAGES_PATH)]).toEqual([1, 1])
    expect(seen.retries).toEqual([
      expect.objectContaining({
        action: 'fallback',
        failureClass: 'timeout',
        reason: '2105 UPSTREAM_FIRST_BYTE_TIMEOUT',
      }),
    ])
  })

  it('failover: a stream whose first token is late fails over on the first-token clock, with nothing sent', async () => {
    world.mock.reset()
    // Headers and the role chunk at once; the answer itself would take ten seconds.
    world.mock.enqueue({ firstTokenDelayMs: 10_000 })
    const url = await world.start()
    const seen = watch(world)
    const headers = { 'cf-aig-first-token-timeout': '150' }
    const res = await send(`${url}/ai`, { body: openaiThenAnthropic('late', true, headers) })
    expect(res.status).toBe(200)
    expect(res.headers['cf-aig-step']).toBe('1')
    expect(res.text).not.toContain('chat.completion.chunk')
    expect(res.text).toMatch(ANTHROPIC_STREAM_END)
    expect(seen.retries).toEqual([
      expect.objectContaining({ failureClass: 'timeout', reason: '2123 UPSTREAM_FIRST_TOKEN_TIMEOUT' }),
    ])
    await expect(world.mock.calls[0]?.outcome).resolves.toBe('aborted')
  })

  it('failover: a stream cut before its answer began is retried invisibly', async () => {
    world.mock.reset()
    world.mock.enqueue({ cutAfterEvents: 1 })
    const url = await world.start({ retries: { maxAttempts: 2, delayMs: 0 } })
    const res = await send(`${url}/ai/openai/chat/completions`, { body: chat('cut early', { stream: true }) })
    expect(res.status).toBe(200)
    expect(res.text).toMatch(OPENAI_STREAM_END)
    expect(res.text).not.toContain('"error"')
    // One role chunk, not two: the cut attempt's never reached the client.
    expect(res.text.match(/"role":"assistant"/g)).toHaveLength(1)
    expect(callsTo(world, CHAT_PATH)).toBe(2)
  })

  it.each<[string, MockScript]>([
    ['cut', { cutAfterEvents: 3 }],
    ['stalled past the idle clock', { stallAfterEvents: 3 }],
  ])('failover: a stream %s mid-answer is saved whole when held to completion', async (_name, fault) => {
    world.mock.reset()
    world.mock.enqueue(fault)
    const url = await world.start({ timeouts: { idleMs: 200 } })
    const seen = watch(world)
    const headers = { 'cf-aig-stream-commit': 'complete' }
    const res = await send(`${url}/ai`, { body: openaiThenAnthropic('one two three four', true, headers) })
    expect(res.status).toBe(200)
    expect(res.headers['cf-aig-step']).toBe('1')
    expect(res.text).not.toContain('chat.completion.chunk')
    expect(res.text).toMatch(ANTHROPIC_STREAM_END)
    expect(seen.retries).toHaveLength(1)
  })

  it.each<[string, Record<string, string>, MockScript]>([
    ['before the answer began, by default', {}, { malformedEventAt: 0 }],
    ['mid-answer, when held to completion', { 'cf-aig-stream-commit': 'complete' }, { malformedEventAt: 2 }],
  ])(
    'failover: a malformed event %s is retried, and the client never sees it',
    async (_name, headers, fault) => {
      world.mock.reset()
      world.mock.enqueue(fault)
      const url = await world.start({ retries: { maxAttempts: 2, delayMs: 0 } })
      const seen = watch(world)
      const res = await send(`${url}/ai/openai/chat/completions`, {
        headers,
        body: chat('one two three four', { stream: true }),
      })
      expect(res.status).toBe(200)
      expect(res.text).not.toContain('{not json')
      expect(res.text).toMatch(OPENAI_STREAM_END)
      expect(seen.retries).toEqual([
        expect.objectContaining({
          action: 'retry',
          failureClass: 'network',
          reason: '2115 INVALID_PROVIDER_RESPONSE',
        }),
      ])
    },
  )

  it('failover: an in-band error event before the answer began falls back; the client never sees it', async () => {
    world.mock.reset()
    // Anthropic's 200, message_start, then event: error (overloaded_error), as Anthropic does.
    world.mock.enqueue({ errorEventAfter: 1 })
    const url = await world.start()
    const seen = watch(world)
    const body = [...openaiThenAnthropic('x', true)].reverse()
    const res = await send(`${url}/ai`, { body })
    expect(res.status).toBe(200)
    expect(res.headers['cf-aig-step']).toBe('1')
    expect(res.text).not.toContain('overloaded_error')
    expect(res.text).toMatch(OPENAI_STREAM_END)
    expect(seen.retries).toEqual([
      expect.objectContaining({ failureClass: 'server_error', reason: '2124 UPSTREAM_STREAM_ERROR' }),
    ])
  })

  it('failover: an in-band error event after the commit ends the stream there, as a failure', async () => {
    world.mock.reset()
    world.mock.enqueue({ errorEventAfter: 5 })
    const url = await world.start()
    const seen = watch(world)
    const res = await send(`${url}/ai/anthropic/v1/messages`, {
      body: {
        model: 'claude',
        max_tokens: 50,
        stream: true,
        messages: [{ role: 'user', content: 'a b c d' }],
      },
    })
    expect(res.status).toBe(200)
    expect(res.text).toContain('event: content_block_delta')
    expect(res.text).toMatch(/event: error\ndata: \{"type":"error","error":\{"type":"overloaded_error"/)
    expect(res.text).not.toContain('message_stop')
    await world.gateway?.flushLogs()
    expect(seen.ends).toEqual([
      expect.objectContaining({ outcome: 'error', error: expect.objectContaining({ code: 2124 }) }),
    ])
  })

  it('failover: a stream that finished but ended without [DONE] is complete, and gets its [DONE]', async () => {
    world.mock.reset()
    world.mock.enqueue({ omitTerminator: true })
    const url = await world.start()
    const seen = watch(world)
    const res = await send(`${url}/ai/openai/chat/completions`, { body: chat('whole', { stream: true }) })
    expect(res.status).toBe(200)
    expect(res.text).toMatch(/"finish_reason":"stop".*\n\ndata: \[DONE\]\n\n$/s)
    expect(res.text).not.toContain('"error"')
    expect(seen.ends).toEqual([expect.objectContaining({ outcome: 'completed' })])
  })

  it('failover: a context-length refusal falls over to the next target', async () => {
    world.mock.reset()
    world.mock.enqueue({
      status: 400,
      body: {
        error: {
          message: "This model's maximum context length is 128000 tokens.",
          type: 'invalid_request_error',
          param: 'messages',
          code: 'context_length_exceeded',
        },
      },
    })
    const url = await world.start()
    const seen = watch(world)
    const res = await send(`${url}/ai`, { body: openaiThenAnthropic('long', false) })
    expect(res.status).toBe(200)
    expect(res.headers['cf-aig-step']).toBe('1')
    expect(seen.retries).toEqual([
      expect.objectContaining({ action: 'fallback', failureClass: 'context_length', status: 400 }),
    ])
  })

  it('failover: a content-policy refusal comes back as the provider said it, without asking another model', async () => {
    world.mock.reset()
    const refusal = {
      error: {
        message: 'Your request was rejected as a result of our safety system.',
        type: 'invalid_request_error',
        param: null,
        code: 'content_policy_violation',
      },
    }
    world.mock.enqueue({ status: 400, body: refusal })
    const url = await world.start()
    const seen = watch(world)
    const res = await send(`${url}/ai`, { body: openaiThenAnthropic('refused', false) })
    expect(res.status).toBe(400)
    expect(res.headers['cf-aig-step']).toBe('0')
    expect(res.json()).toEqual(refusal)
    expect([callsTo(world, CHAT_PATH), callsTo(world, MESSAGES_PATH)]).toEqual([1, 0])
    expect(seen.retries).toEqual([])
  })

  it('failover: fallbackOn decides which failures move on', async () => {
    world.mock.reset()
    world.mock.enqueue({ status: 503 })
    const url = await world.start({ fallbackOn: ['timeout'] })
    const res = await send(`${url}/ai`, { body: openaiThenAnthropic('only timeouts', false) })
    expect(res.status).toBe(503)
    expect([callsTo(world, CHAT_PATH), callsTo(world, MESSAGES_PATH)]).toEqual([1, 0])
  })

  it('failover: the record of a request saved by a fallback names the target that answered, its usage and every attempt', async () => {
    world.mock.reset()
    world.mock.enqueue({ status: 503 }, { status: 503 })
    const url = await world.start({ retries: { maxAttempts: 2, delayMs: 0 } })
    const res = await send(`${url}/ai`, { body: openaiThenAnthropic('count me', true) })
    expect(res.status).toBe(200)
    await world.gateway?.flushLogs()
    const record = await world.gateway?.logs?.get(res.headers['cf-aig-log-id'] as string)
    expect(record).toMatchObject({
      provider: 'anthropic',
      step: 1,
      attempts: 3,
      success: true,
      tokensIn: expect.any(Number),
      tokensOut: expect.any(Number),
    })
    expect(record?.tokensOut).toBeGreaterThan(0)
    const failed = {
      provider: 'openai',
      model: 'gpt-4o-mini',
      step: 0,
      status: 503,
      failureClass: 'server_error',
    }
    expect(record?.attemptLog).toEqual([
      { ...failed, errorCode: null, action: 'retry', durationMs: expect.any(Number) },
      { ...failed, errorCode: null, action: 'fallback', durationMs: expect.any(Number) },
      {
        provider: 'anthropic',
        model: 'claude',
        step: 1,
        status: 200,
        failureClass: null,
        errorCode: null,
        action: 'answered',
        durationMs: expect.any(Number),
      },
    ])
  })
}

export function compatFallbackScenarios(world: World): void {
  const COMPAT = '/ai/compat/chat/completions'

  it('failover: /compat takes fallback models from the body, as OpenRouter does; a caller key goes to its own provider only', async () => {
    world.mock.reset()
    world.mock.enqueue({ status: 503 })
    const url = await world.start()
    const res = await send(`${url}${COMPAT}`, {
      headers: { authorization: 'Bearer sk-caller-openai' },
      body: chat('save me', { model: 'openai/gpt-4o-mini', models: ['anthropic/claude-sonnet-4-5'] }),
    })
    expect(res.status).toBe(200)
    expect(res.json()).toMatchObject({
      object: 'chat.completion',
      choices: [{ message: { content: 'mock reply to: save me' } }],
    })
    expect(res.headers).toMatchObject({
      'cf-aig-step': '1',
      'cf-aig-provider': 'anthropic',
      'cf-aig-model': 'claude-sonnet-4-5',
    })
    const [openai, anthropic] = world.mock.calls
    expect(openai?.headers.authorization).toBe('Bearer sk-caller-openai')
    expect(anthropic?.headers['x-api-key']).toBe('sk-ant-stored')
    expect(anthropic?.headers.authorization).toBeUndefined()
    // The list is the gateway's to read: no provider gets it.
    expect(openai?.json).not.toHaveProperty('models')
    expect(anthropic?.json).not.toHaveProperty('models')
  })

  it('failover: /compat uses the fallbacks option for a model when the request names none', async () => {
    world.mock.reset()
    world.mock.enqueue({ stallBeforeHeaders: true })
    const url = await world.start({
      fallbacks: { 'openai/gpt-4o-mini': ['anthropic/claude-haiku-4-5'] },
      timeouts: { firstByteMs: 150 },
    })
    const res = await send(`${url}${COMPAT}`, {
      body: chat('plain sdk', { model: 'openai/gpt-4o-mini', stream: true }),
    })
    expect(res.status).toBe(200)
    expect(res.headers['cf-aig-model']).toBe('claude-haiku-4-5')
    expect(res.text).toContain('"object":"chat.completion.chunk"')
    expect(res.text).toMatch(OPENAI_STREAM_END)
    expect([callsTo(world, CHAT_PATH), callsTo(world, MESSAGES_PATH)]).toEqual([1, 1])
  })

  it.each([
    ['not a list', 'anthropic/claude'],
    ['an empty list', []],
    ['a name that is not text', [42]],
    ['too many models', Array.from({ length: 9 }, (_, i) => `openai/m${i}`)],
  ])('failover: /compat refuses %s in models with a 400 (code 2112)', async (_name, models) => {
    world.mock.reset()
    const url = await world.start()
    const res = await send(`${url}${COMPAT}`, { body: chat('x', { model: 'openai/gpt-4o-mini', models }) })
    expect(res.status).toBe(400)
    expect(res.json()).toMatchObject({ internalCode: 2112 })
    expect(world.mock.calls).toHaveLength(0)
  })
}

/** The answer text an OpenAI chat stream carries, and the completion ids and roles its chunks name. */
function readChatStream(sse: string) {
  let text = ''
  const ids = new Set<unknown>()
  let roles = 0
  for (const line of sse.split('\n')) {
    if (!line.startsWith('data: {')) continue
    const chunk = JSON.parse(line.slice(6))
    if (chunk.id !== undefined) ids.add(chunk.id)
    for (const choice of chunk.choices ?? []) {
      if (choice.delta?.role !== undefined) roles++
      if (typeof choice.delta?.content === 'string') text += choice.delta.content
    }
  }
  return { text, ids: [...ids], roles }
}

function lastMessage(json: unknown): unknown {
  return (json as { messages?: unknown[] } | undefined)?.messages?.at(-1)
}

/**
 * A /compat stream that fails after part of it reached the client, carried on by a fallback: with the part
 * as a prefill where the provider takes one, else by a replayed answer that must begin with that part.
 */
export function resumeScenarios(world: World): void {
  const COMPAT = '/ai/compat/chat/completions'
  const ANSWER = 'mock reply to: one two three four'
  const streamed = (models: string[]) =>
    chat('one two three four', { model: 'openai/gpt-4o-mini', models, stream: true })

  it('resume: a stream cut after its commit is carried on by the fallback, given the part already sent as a prefill', async () => {
    world.mock.reset()
    // The role chunk, "mock", " reply", then the connection is cut.
    world.mock.enqueue({ cutAfterEvents: 3 })
    const url = await world.start()
    const seen = watch(world)
    const res = await send(`${url}${COMPAT}`, { body: streamed(['anthropic/claude-haiku-4-5']) })
    expect(res.status).toBe(200)
    const read = readChatStream(res.text)
    expect(read).toMatchObject({ text: ANSWER, roles: 1 })
    expect(read.ids).toHaveLength(1)
    expect(res.text).toMatch(OPENAI_STREAM_END)
    expect(res.text).not.toContain('"error"')
    const [, anthropic] = world.mock.calls
    expect(anthropic?.path).toBe(MESSAGES_PATH)
    expect(lastMessage(anthropic?.json)).toEqual({
      role: 'assistant',
      content: 'mock reply',
    })
    expect(seen.retries).toEqual([
      expect.objectContaining({ action: 'resume', provider: 'openai', failureClass: 'network' }),
    ])
    await world.gateway?.flushLogs()
    expect(seen.ends).toEqual([expect.objectContaining({ outcome: 'completed' })])
    const record = await world.gateway?.logs?.get(res.headers['cf-aig-log-id'] as string)
    expect(record).toMatchObject({ success: true, provider: 'anthropic', model: 'claude-haiku-4-5' })
    expect(record?.attemptLog?.map((attempt) => [attempt.provider, attempt.action])).toEqual([
      ['openai', 'resume'],
      ['anthropic', 'answered'],
    ])
    expect(record?.tokensOut).toBeGreaterThan(0)
  })

  it('resume: a fallback that refuses the prefill gets the original request, and its answer goes on past the part sent', async () => {
    world.mock.reset()
    world.mock.enqueue({ cutAfterEvents: 3 }, { rejectPrefill: true })
    const url = await world.start()
    const seen = watch(world)
    const res = await send(`${url}${COMPAT}`, { body: streamed(['anthropic/claude-haiku-4-5']) })
    expect(readChatStream(res.text)).toMatchObject({ text: ANSWER, roles: 1 })
    expect(res.text).toMatch(OPENAI_STREAM_END)
    const [, refused, original] = world.mock.calls
    expect(lastMessage(refused?.json)).toMatchObject({ role: 'assistant' })
    expect(lastMessage(original?.json)).toMatchObject({ role: 'user' })
    expect(seen.retries.map((event) => [event.action, event.failureClass])).toEqual([
      ['resume', 'network'],
      ['retry', 'bad_request'],
    ])
  })

  it('resume: a fallback without prefills answers anew; an answer that begins with the part sent is carried on', async () => {
    world.mock.reset()
    world.mock.enqueue({ stallAfterEvents: 3 })
    const url = await world.start({ timeouts: { idleMs: 200 } })
    const res = await send(`${url}${COMPAT}`, { body: streamed(['openai/gpt-4o']) })
    expect(readChatStream(res.text)).toMatchObject({ text: ANSWER, roles: 1 })
    expect(res.text).toMatch(OPENAI_STREAM_END)
    expect(callsTo(world, CHAT_PATH)).toBe(2)
  })

  it('resume: an answer that does not begin with the part sent is never run on after it: the stream ends failed', async () => {
    world.mock.reset()
    world.mock.enqueue({ cutAfterEvents: 3 }, { reply: 'a different answer' })
    const url = await world.start()
    const seen = watch(world)
    const res = await send(`${url}${COMPAT}`, { body: streamed(['openai/gpt-4o']) })
    expect(res.status).toBe(200)
    expect(readChatStream(res.text).text).toBe('mock reply')
    expect(res.text).toMatch(/data: \{"error":\{.*\}\}\n\n$/)
    expect(res.text).not.toContain('[DONE]')
    await world.gateway?.flushLogs()
    expect(seen.ends).toEqual([expect.objectContaining({ outcome: 'error' })])
  })

  it('resume: with streams.resume off, a stream that failed after its commit ends with its error as before', async () => {
    world.mock.reset()
    world.mock.enqueue({ cutAfterEvents: 3 })
    const url = await world.start({ streams: { resume: false } })
    const res = await send(`${url}${COMPAT}`, { body: streamed(['anthropic/claude-haiku-4-5']) })
    expect(readChatStream(res.text).text).toBe('mock reply')
    expect(res.text).toMatch(/data: \{"error":/)
    expect(res.text).not.toContain('[DONE]')
    expect(world.mock.calls).toHaveLength(1)
  })

  /** An OpenAI chat chunk with this delta, as a reasoning model's provider sends it. */
  const delta = (fields: Record<string, unknown>, finish: string | null = null) =>
    `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: fields, finish_reason: finish }] })}\n\n`
  /** What the client read of each delta field, in order, field by field. */
  const deltas = (sse: string) =>
    sse
      .split('\n\n')
      .filter((event) => event.startsWith('data: {"id"'))
      .flatMap((event) => JSON.parse(event.slice(6)).choices.map((choice: { delta: object }) => choice.delta))

  it('resume: the fallback’s reasoning is not run into the answer, nor a refusal into another one', async () => {
    world.mock.reset()
    // Each first answer thinks, begins (with text or a refusal), and is cut; each second one thinks anew.
    const fault = await startFaultServer(async (request, res, socket) => {
      const refusal = request.index >= 2
      res.writeHead(200, SSE_HEADERS)
      await writeAsync(res, delta({ role: 'assistant', content: '' }))
      if (request.index % 2 === 0) {
        await writeAsync(res, delta({ reasoning_content: 'first thought ' }))
        await writeAsync(res, delta(refusal ? { refusal: 'I cannot' } : { content: 'Hello' }))
        socket.destroy()
        return
      }
      await writeAsync(res, delta({ reasoning_content: 'second thought ' }))
      await writeAsync(res, delta(refusal ? { refusal: 'I cannot help' } : { content: 'Hello world' }))
      await writeAsync(res, delta({}, 'stop'))
      res.end(OPENAI_DONE)
    })
    onTestFinished(() => fault.close())
    const url = await world.start({
      providers: { openai: { apiKey: 'sk-stored', baseURL: `${fault.url}/v1` } },
    })
    const body = chat('hi', { model: 'openai/a', models: ['openai/b'], stream: true })

    const text = await send(`${url}${COMPAT}`, { body })
    expect(deltas(text.text)).toEqual([
      { role: 'assistant', content: '' },
      { reasoning_content: 'first thought ' },
      { content: 'Hello' },
      { content: ' world' },
      {},
    ])
    expect(text.text).toMatch(OPENAI_STREAM_END)

    // A refusal is an answer of its own: it ends failed rather than carried on.
    const refused = await send(`${url}${COMPAT}`, { body })
    expect(deltas(refused.text)).toEqual([
      { role: 'assistant', content: '' },
      { reasoning_content: 'first thought ' },
      { refusal: 'I cannot' },
    ])
    expect(refused.text).toMatch(/data: \{"error":\{.*\}\}\n\n$/)
    expect(fault.requests).toHaveLength(3)
  })

  it('resume: an answer that finished and lost only its usage chunk is not answered again after its finish', async () => {
    world.mock.reset()
    // The whole answer and its finish, then a cut before the usage chunk the client asked for.
    const fault = await startFaultServer(async (_request, res, socket) => {
      res.writeHead(200, SSE_HEADERS)
      await writeAsync(res, delta({ role: 'assistant', content: '' }))
      await writeAsync(res, delta({ content: 'Hello world' }))
      await writeAsync(res, delta({}, 'stop'))
      socket.destroy()
    })
    onTestFinished(() => fault.close())
    const url = await world.start({
      providers: { openai: { apiKey: 'sk-stored', baseURL: `${fault.url}/v1` } },
    })
    const body = chat('hi', {
      model: 'openai/a',
      models: ['openai/b'],
      stream: true,
      stream_options: { include_usage: true },
    })
    const res = await send(`${url}${COMPAT}`, { body })
    expect(deltas(res.text)).toEqual([{ role: 'assistant', content: '' }, { content: 'Hello world' }, {}])
    expect(res.text.match(/"finish_reason":"stop"/g)).toHaveLength(1)
    expect(res.text).toMatch(/data: \{"error":\{.*\}\}\n\n$/)
    expect(fault.requests).toHaveLength(1)
  })

  it('resume: a fallback that answers the streamed request whole is passed over, and the next one carries the stream on', async () => {
    world.mock.reset()
    // The first answer is cut after "Hello"; the second comes as one JSON body; the third streams.
    const fault = await startFaultServer(async (request, res, socket) => {
      if (request.index === 1) {
        writeFixed(res, 200, openaiCompletion('Hello world'))
        return
      }
      res.writeHead(200, SSE_HEADERS)
      await writeAsync(res, delta({ role: 'assistant', content: '' }))
      if (request.index === 0) {
        await writeAsync(res, delta({ content: 'Hello' }))
        socket.destroy()
        return
      }
      await writeAsync(res, delta({ content: 'Hello world' }))
      await writeAsync(res, delta({}, 'stop'))
      res.end(OPENAI_DONE)
    })
    onTestFinished(() => fault.close())
    const url = await world.start({
      providers: { openai: { apiKey: 'sk-stored', baseURL: `${fault.url}/v1` } },
    })
    const seen = watch(world)
    const body = chat('hi', { model: 'openai/a', models: ['openai/b', 'openai/c'], stream: true })
    const res = await send(`${url}${COMPAT}`, { body })
    expect(res.status).toBe(200)
    expect(readChatStream(res.text)).toMatchObject({ text: 'Hello world', roles: 1 })
    expect(res.text).toMatch(OPENAI_STREAM_END)
    expect(fault.requests).toHaveLength(3)
    expect(seen.retries.map((event) => [event.action, event.failureClass])).toEqual([
      ['resume', 'network'],
      ['fallback', 'network'],
    ])
  })
}

export function breakerScenarios(world: World): void {
  const COMPAT = '/ai/compat/chat/completions'
  const chain = (text: string) =>
    chat(text, { model: 'openai/gpt-4o-mini', models: ['anthropic/claude-haiku-4-5'] })

  it('breaker: a primary that keeps failing is skipped once its breaker opens, so each request costs one call', async () => {
    world.mock.reset()
    const url = await world.start({ breaker: { failures: 2, openMs: 60_000 } })
    const seen = watch(world)
    for (let i = 0; i < 5; i++) {
      // The primary fails the first two; after that it is not called at all, so it needs no script.
      if (i < 2) world.mock.enqueue({ status: 503 }, {})
      const res = await send(`${url}${COMPAT}`, { body: chain(`request ${i}`) })
      expect(res.status).toBe(200)
      expect(res.headers['cf-aig-provider']).toBe('anthropic')
    }
    expect([callsTo(world, CHAT_PATH), callsTo(world, MESSAGES_PATH)]).toEqual([2, 5])
    const skips = seen.retries.filter((event) => event.action === 'skip')
    expect(skips).toHaveLength(3)
    expect(skips[0]).toMatchObject({ provider: 'openai', reason: '2125 UPSTREAM_CIRCUIT_OPEN', attempt: 0 })
  })

  it('breaker: after openMs one probe tests the target; its success closes the breaker', async () => {
    world.mock.reset()
    let now = 1_700_000_000_000
    world.mock.enqueue({ status: 503 }, {})
    const url = await world.start({ now: () => now, breaker: { failures: 1, openMs: 30_000 } })
    const seen = watch(world)
    expect((await send(`${url}${COMPAT}`, { body: chain('trip') })).headers['cf-aig-provider']).toBe(
      'anthropic',
    )
    expect((await send(`${url}${COMPAT}`, { body: chain('open') })).headers['cf-aig-provider']).toBe(
      'anthropic',
    )
    now += 30_001
    // The probe goes to the primary, which has recovered; from then on the primary answers again.
    expect((await send(`${url}${COMPAT}`, { body: chain('probe') })).headers['cf-aig-provider']).toBe(
      'openai',
    )
    expect((await send(`${url}${COMPAT}`, { body: chain('closed') })).headers['cf-aig-provider']).toBe(
      'openai',
    )
    expect(seen.retries.map((event) => event.action)).toEqual(['fallback', 'skip'])
  })

  it("breaker: a 429's Retry-After opens the breaker for as long as the provider asks", async () => {
    world.mock.reset()
    world.mock.enqueue({ status: 429, retryAfter: 120 }, {})
    const url = await world.start({ breaker: { failures: 5 } })
    const seen = watch(world)
    await send(`${url}${COMPAT}`, { body: chain('limited') })
    const res = await send(`${url}${COMPAT}`, { body: chain('after') })
    expect(res.headers['cf-aig-provider']).toBe('anthropic')
    expect(seen.retries.map((event) => event.action)).toEqual(['fallback', 'skip'])
    expect(world.mock.calls.filter((call) => call.path === CHAT_PATH)).toHaveLength(1)
  })

  it('breaker: a Retry-After of days opens the breaker for an hour at most, then one request probes', async () => {
    world.mock.reset()
    let now = 1_700_000_000_000
    world.mock.enqueue({ status: 429, retryAfter: '99999999999999999999' }, {})
    const url = await world.start({ now: () => now, breaker: { failures: 5 } })
    expect((await send(`${url}${COMPAT}`, { body: chain('limited') })).headers['cf-aig-provider']).toBe(
      'anthropic',
    )
    now += 60 * 60 * 1000 - 1
    expect((await send(`${url}${COMPAT}`, { body: chain('open') })).headers['cf-aig-provider']).toBe(
      'anthropic',
    )
    now += 2
    expect((await send(`${url}${COMPAT}`, { body: chain('probe') })).headers['cf-aig-provider']).toBe(
      'openai',
    )
  })

  it('breaker: a lone target is still tried when open, unless whenAllOpen is refuse: then 503 with Retry-After', async () => {
    world.mock.reset()
    world.mock.enqueue({ status: 503 }, { status: 503 })
    const tried = await world.start({ breaker: { failures: 1 } })
    await send(`${tried}/ai/openai/chat/completions`, { body: chat('one') })
    const again = await send(`${tried}/ai/openai/chat/completions`, { body: chat('two') })
    expect(again.status).toBe(503)
    expect(world.mock.calls).toHaveLength(2)

    world.mock.reset()
    world.mock.enqueue({ status: 503 })
    const refusing = await world.start({ breaker: { failures: 1, openMs: 45_000, whenAllOpen: 'refuse' } })
    await send(`${refusing}/ai/openai/chat/completions`, { body: chat('one') })
    const refused = await send(`${refusing}/ai/openai/chat/completions`, { body: chat('two') })
    expect(refused.status).toBe(503)
    expect(refused.json()).toMatchObject({ internalCode: 2125 })
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0)
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(45)
    expect(world.mock.calls).toHaveLength(1)
  })

  it('breaker: failures on one caller’s own key never open the breaker for a caller with another key', async () => {
    world.mock.reset()
    const url = await world.start({ breaker: { failures: 1, whenAllOpen: 'refuse' } })
    // Keys a provider also takes outside its main key header: Anthropic's in `authorization`, Google's in `?key=`.
    const asks = [
      (key: string) =>
        send(`${url}/ai/anthropic/v1/messages`, {
          body: { model: 'claude-haiku-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] },
          headers: { authorization: `Bearer sk-ant-${key}-0123456789`, 'anthropic-version': '2023-06-01' },
        }),
      (key: string) =>
        send(
          `${url}/ai/google-ai-studio/v1beta/models/gemini-2.0-flash:generateContent?key=AIza-${key}-0123456789`,
          { body: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] } },
        ),
    ]
    for (const ask of asks) {
      world.mock.enqueue({ status: 503 })
      expect((await ask('first')).status).toBe(503)
      expect((await ask('first')).json()).toMatchObject({ internalCode: 2125 })
      expect((await ask('second')).status).toBe(200)
    }
    expect(world.mock.calls).toHaveLength(4)
  })

  it('breaker: a timeout a caller chose shorter than the gateway’s own never opens the breaker for others', async () => {
    // A prompt saying "hang" is never answered; any other at once.
    const upstream = await startFaultServer((request, res) => {
      if (request.text.includes('hang')) return request.closed
      writeFixed(res, 200, JSON.stringify({ id: 'x', object: 'chat.completion', choices: [] }))
    })
    onTestFinished(() => upstream.close())
    const url = await world.start({
      providers: { openai: { apiKey: 'sk-stored', baseURL: `${upstream.url}/v1` } },
      breaker: { failures: 2, whenAllOpen: 'refuse' },
      timeouts: { firstByteMs: 500 },
    })
    const ask = (text: string, headers: Record<string, string> = {}) =>
      send(`${url}/ai/openai/chat/completions`, { body: chat(text), headers })
    const once = { 'cf-aig-max-attempts': '1' }
    for (let i = 0; i < 2; i++) {
      expect((await ask('hang', { ...once, 'cf-aig-request-timeout': '50' })).status).toBe(504)
    }
    expect((await ask('answer')).status).toBe(200)
    // The gateway's own clock still counts: two of its timeouts open the breaker.
    for (let i = 0; i < 2; i++) expect((await ask('hang', once)).status).toBe(504)
    expect((await ask('answer')).json()).toMatchObject({ internalCode: 2125 })
  })

  it('breaker: refusals that say nothing of a target’s health (400, content policy) never open it', async () => {
    world.mock.reset()
    world.mock.enqueue({ status: 400 }, { status: 400 }, { status: 400 })
    const url = await world.start({ breaker: { failures: 2 } })
    for (let i = 0; i < 3; i++) await send(`${url}/ai/openai/chat/completions`, { body: chat('bad') })
    const res = await send(`${url}/ai/openai/chat/completions`, { body: chat('good') })
    expect(res.status).toBe(200)
    expect(world.mock.calls).toHaveLength(4)
  })
}

export function keyPoolScenarios(world: World): void {
  const keyOf = (call: { headers: Record<string, string | string[] | undefined> }) =>
    call.headers.authorization

  it('key pool: a 429 on one key moves the request to the next key, and that key is left alone while it cools down', async () => {
    world.mock.reset()
    world.mock.enqueue({ status: 429, retryAfter: 60 })
    const url = await world.start({
      providers: {
        openai: {
          apiKeys: ['sk-pool-first-0123456789', { key: 'sk-pool-second-0123456789', weight: 2 }],
          baseURL: `${world.mock.url}/v1`,
        },
      },
    })
    const first = await send(`${url}/ai/openai/chat/completions`, { body: chat('one') })
    expect(first.status).toBe(200)
    const [limited, served] = world.mock.calls
    expect(keyOf(limited!)).not.toBe(keyOf(served!))
    // The limited key's breaker opened for its Retry-After: the next requests all go to the other key.
    for (let i = 0; i < 4; i++) {
      expect((await send(`${url}/ai/openai/chat/completions`, { body: chat(`more ${i}`) })).status).toBe(200)
    }
    expect(world.mock.calls.slice(2).map(keyOf)).toEqual(Array(4).fill(keyOf(served!)))
    expect(first.text).not.toContain('sk-pool')
  })

  it('key pool: a 429 moves on to the next key at once, even when the request allows more attempts', async () => {
    world.mock.reset()
    const fault = await startFaultServer((request, res) => {
      if (String(request.headers.authorization).includes('limited')) {
        writeFixed(res, 429, '{}', { 'content-type': 'application/json', 'retry-after': '1' })
      } else writeFixed(res, 200, openaiCompletion('fine'))
    })
    onTestFinished(() => fault.close())
    const url = await world.start({
      providers: {
        openai: {
          apiKeys: ['sk-pool-limited-0123456789', 'sk-pool-free-0123456789'],
          baseURL: `${fault.url}/v1`,
        },
      },
      // Both keys unmeasured, in their order: the limited one is asked first.
      balance: { strategy: 'latency', explore: 0 },
    })
    const seen = watch(world)
    const res = await send(`${url}/ai/openai/chat/completions`, {
      headers: { 'cf-aig-max-attempts': '3' },
      body: chat('one'),
    })
    expect(res.status).toBe(200)
    expect(fault.requests.map((request) => request.headers.authorization)).toEqual([
      'Bearer sk-pool-limited-0123456789',
      'Bearer sk-pool-free-0123456789',
    ])
    expect(seen.retries).toEqual([
      expect.objectContaining({ action: 'fallback', failureClass: 'rate_limited', delayMs: 0 }),
    ])
  })

  it('key pool: requests spread over the keys by weight', async () => {
    world.mock.reset()
    const url = await world.start({
      providers: {
        openai: {
          apiKeys: ['sk-pool-first-0123456789', 'sk-pool-second-0123456789'],
          baseURL: `${world.mock.url}/v1`,
        },
      },
    })
    for (let i = 0; i < 40; i++)
      await send(`${url}/ai/openai/chat/completions`, { body: chat(`spread ${i}`) })
    const used = new Set(world.mock.calls.map(keyOf))
    // Equal weights over 40 requests: both keys serve some (one alone would take all 40 once in 2^39).
    expect(used).toEqual(new Set(['Bearer sk-pool-first-0123456789', 'Bearer sk-pool-second-0123456789']))
  })

  it('deployments: a model served by several deployments spreads requests over them, and one that fails falls over to another', async () => {
    world.mock.reset()
    const url = await world.start({
      deployments: {
        'team-chat': ['openai/gpt-4o-mini', { model: 'anthropic/claude-haiku-4-5', weight: 1 }],
      },
    })
    const providersSeen = new Set<string>()
    for (let i = 0; i < 40; i++) {
      const res = await send(`${url}/ai/compat/chat/completions`, {
        body: chat(`spread ${i}`, { model: 'team-chat' }),
      })
      expect(res.status).toBe(200)
      providersSeen.add(res.headers['cf-aig-provider'] as string)
    }
    // Equal weights over 40 requests: both deployments serve some (one alone would take all in 2^39).
    expect(providersSeen).toEqual(new Set(['openai', 'anthropic']))
    expect(world.mock.calls).toHaveLength(40)

    world.mock.reset()
    // Whichever deployment comes first fails: the other answers.
    world.mock.enqueue({ status: 503 })
    const res = await send(`${url}/ai/compat/chat/completions`, {
      body: chat('one down', { model: 'team-chat' }),
    })
    expect(res.status).toBe(200)
    expect(res.headers['cf-aig-step']).toBe('1')
    expect(world.mock.calls.map((call) => call.path).sort()).toEqual(['/v1/chat/completions', '/v1/messages'])
  })

  it('deployments: with the latency strategy the deployment answering fastest takes the requests', async () => {
    world.mock.reset()
    const url = await world.start({
      deployments: { 'team-chat': ['openai/gpt-4o-mini', 'anthropic/claude-haiku-4-5'] },
      balance: { strategy: 'latency', explore: 0 },
    })
    const ask = async (text: string) => {
      const res = await send(`${url}/ai/compat/chat/completions`, {
        body: chat(text, { model: 'team-chat' }),
      })
      return res.headers['cf-aig-provider']
    }
    // Unmeasured deployments come first, in their order: the first request measures OpenAI (slowed by
    // 300 ms), the second Anthropic; from then on the faster one takes every request.
    world.mock.enqueue({ latencyMs: 300 })
    expect(await ask('measure one')).toBe('openai')
    expect(await ask('measure two')).toBe('anthropic')
    for (let i = 0; i < 4; i++) expect(await ask(`fast ${i}`)).toBe('anthropic')
  })

  it('key pool: with the latency strategy a key that keeps failing goes last, not first as if unmeasured', async () => {
    world.mock.reset()
    // One key's every call fails with a 500; the other answers. No breaker to hide the order.
    const fault = await startFaultServer((request, res) => {
      const failing = String(request.headers.authorization).includes('failing')
      writeFixed(res, failing ? 500 : 200, failing ? '{}' : openaiCompletion('fine'))
    })
    onTestFinished(() => fault.close())
    const url = await world.start({
      providers: {
        openai: {
          apiKeys: ['sk-pool-failing-0123456789', 'sk-pool-working-0123456789'],
          baseURL: `${fault.url}/v1`,
        },
      },
      balance: { strategy: 'latency', explore: 0 },
      breaker: false,
    })
    for (let i = 0; i < 6; i++) {
      expect((await send(`${url}/ai/openai/chat/completions`, { body: chat(`ask ${i}`) })).status).toBe(200)
    }
    // Each key was unmeasured once, so the failing one was tried first at most once.
    const failed = fault.requests.filter((request) =>
      String(request.headers.authorization).includes('failing'),
    )
    expect(failed).toHaveLength(1)
    expect(fault.requests).toHaveLength(7)
  })

  it("deployments: a caller's own key goes to the provider the request names, never to the deployment drawn", async () => {
    world.mock.reset()
    const url = await world.start({
      deployments: {
        mixed: ['anthropic/claude-haiku-4-5', 'openai/gpt-4o-mini'],
        minis: ['openai/gpt-4o-mini', 'openai/gpt-4.1-mini'],
      },
      // Unmeasured deployments go in their order: Anthropic is drawn first.
      balance: { strategy: 'latency', explore: 0 },
    })
    const headers = { authorization: 'Bearer sk-caller-openai' }
    for (const model of ['mixed', 'minis']) {
      const res = await send(`${url}/ai/compat/chat/completions`, { headers, body: chat(model, { model }) })
      expect(res.status).toBe(200)
    }
    // A group on two providers names neither: its deployments use their stored keys. One on OpenAI alone
    // names OpenAI.
    expect(
      world.mock.calls.map((call) => [call.path, call.headers['x-api-key'] ?? call.headers.authorization]),
    ).toEqual([
      ['/v1/messages', 'sk-ant-stored'],
      ['/v1/chat/completions', 'Bearer sk-caller-openai'],
    ])
  })
}
