import { request } from 'undici'
import { expect, it } from 'vitest'
import type { GatewayOptions } from '../../src/index.js'
import {
  OPENAI_DONE,
  openaiChunk,
  openaiStream,
  pump,
  SSE_HEADERS,
  startFaultServer,
  writeAsync,
  writeEvents,
  writeFixed,
} from '../helpers/fault-server.js'
import { send } from '../helpers/http.js'
import { chat, type World } from './scenarios.js'

const CHAT = '/ai/openai/chat/completions'
const COMPAT = '/ai/compat/chat/completions'
const MESSAGES = '/ai/anthropic/v1/messages'
// A test card number (Luhn-valid, the card networks' documented test range), split into groups so a stream
// sends it over several events.
const CARD = ['4111', '1111', '1111', '1111'].join(' ')
// Any group of the card standing alone, or the card without its spaces. Not a bare '4111': ids and
// timestamps hold it too (a millisecond clock does for 100 s at a time, 1796411100000 onwards).
const CARD_TRACE = /(?<![\w-])4111(?![\w-])|4111111111111111/
const EMAIL = ['ana.silva', 'example.com'].join('@')

/** Text of an OpenAI chat stream, its events joined; throws on an event that is not JSON. */
function streamedText(sse: string): { text: string; events: Record<string, unknown>[] } {
  const events: Record<string, unknown>[] = []
  let text = ''
  for (const block of sse.split('\n\n')) {
    const data = block
      .split('\n')
      .find((line) => line.startsWith('data: '))
      ?.slice(6)
    if (data === undefined || data === '[DONE]') continue
    const event = JSON.parse(data) as Record<string, unknown>
    events.push(event)
    const choices = event.choices as { delta?: { content?: string } }[] | undefined
    text += choices?.[0]?.delta?.content ?? ''
    const delta = event.delta as { text?: string } | undefined
    if (event.type === 'content_block_delta') text += delta?.text ?? ''
  }
  return { text, events }
}

/** Sends a JSON body and reads the answer as it comes, `onRead` told all of it so far at each chunk. */
async function readAsItComes(url: string, body: unknown, onRead: (sofar: string) => void): Promise<string> {
  const response = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  let sofar = ''
  for await (const chunk of response.body) {
    sofar += chunk.toString()
    onRead(sofar)
  }
  return sofar
}

/** A promise and the function that resolves it, for one side of a test to wait on the other. */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((done) => {
    resolve = done
  })
  return { promise, resolve }
}

/** An OpenAI chunk carrying a piece of a tool call's arguments. */
function toolCallChunk(args: string): string {
  const delta = { tool_calls: [{ index: 0, function: { arguments: args } }] }
  return `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta }] })}\n\n`
}

/** A JSON array nested `depth` deep: valid, but too deep for `JSON.stringify`'s recursion. */
const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`

const dlp = (
  action: 'flag' | 'block' | 'redact',
  check = ['request', 'response'],
): GatewayOptions['dlp'] => ({
  policies: [
    {
      id: `${action}-it`,
      profiles: ['financial', 'pii'],
      check: check as ('request' | 'response')[],
      action,
    },
  ],
})

/** Guardrails and DLP in the pipeline, prompts and answers, streams included. */
export function guardScenarios(world: World): void {
  it('dlp: a card in the prompt is refused with 400 (2029) before any call, and the header names what, never the number', async () => {
    world.mock.reset()
    const url = await world.start({ dlp: dlp('block') })
    const res = await send(`${url}${CHAT}`, { body: chat(`charge my card ${CARD} please`) })
    expect(res.status).toBe(400)
    expect(res.json()).toMatchObject({ internalCode: 2029 })
    expect(res.text).not.toMatch(CARD_TRACE)
    const header = JSON.parse(res.headers['cf-aig-dlp'] as string)
    expect(header).toMatchObject({
      action: 'BLOCK',
      findings: [
        {
          profile: { profile_id: 'financial', entry_ids: ['credit_card'] },
          policy_ids: ['block-it'],
          check: 'REQUEST',
        },
      ],
    })
    expect(res.headers['cf-aig-dlp']).not.toMatch(CARD_TRACE)
    expect(world.mock.calls).toHaveLength(0)
    // The record says what was found, and its copy of the request is masked.
    await world.gateway?.flushLogs()
    const record = await world.gateway?.logs?.get(res.headers['cf-aig-log-id'] as string)
    expect(record?.errorCode).toBe(2029)
    expect(record?.guard?.dlp).toMatchObject({
      action: 'BLOCK',
      findings: [
        { check: 'REQUEST', profileId: 'financial', entryId: 'credit_card', path: '/messages/0/content' },
      ],
    })
    expect(record?.requestBody).toContain('[REDACTED:credit_card]')
    expect(JSON.stringify(record)).not.toMatch(CARD_TRACE)
  })

  it("dlp: a card deep in a tool's result is refused (2029) too; past the depth scanned, the record says truncated", async () => {
    world.mock.reset()
    const url = await world.start({ dlp: dlp('block', ['request']) })
    const deep = (depth: number, leaf: unknown): unknown =>
      depth === 0 ? leaf : { more: deep(depth - 1, leaf) }
    const ask = (result: unknown) =>
      send(`${url}/ai/google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent`, {
        body: {
          contents: [{ role: 'user', parts: [{ functionResponse: { name: 'lookup', response: result } }] }],
        },
      })
    const refused = await ask(deep(200, { card: CARD }))
    expect(refused.status).toBe(400)
    expect(refused.json()).toMatchObject({ internalCode: 2029 })
    expect(world.mock.calls).toHaveLength(0)
    const past = await ask(deep(1200, { note: 'nothing here' }))
    expect(past.status).toBe(200)
    await world.gateway?.flushLogs()
    const record = await world.gateway?.logs?.get(past.headers['cf-aig-log-id'] as string)
    expect(record?.guard?.dlp).toMatchObject({ truncated: true })
  })

  it('dlp: redact masks the prompt in what the provider receives, on passthrough and /compat (translated) alike', async () => {
    world.mock.reset()
    const url = await world.start({ dlp: dlp('redact', ['request']) })
    const direct = await send(`${url}${CHAT}`, { body: chat(`mail ${EMAIL} about it`) })
    expect(direct.status).toBe(200)
    const compat = await send(`${url}${COMPAT}`, {
      body: chat(`mail ${EMAIL} about it`, { model: 'anthropic/claude-haiku-4-5' }),
    })
    expect(compat.status).toBe(200)
    for (const call of world.mock.calls) {
      expect(call.body).not.toContain(EMAIL)
      expect(call.body).toContain('[REDACTED:email]')
    }
    expect(JSON.parse(direct.headers['cf-aig-dlp'] as string)).toMatchObject({ action: 'REDACT' })
    await world.gateway?.flushLogs()
    const record = await world.gateway?.logs?.get(direct.headers['cf-aig-log-id'] as string)
    expect(JSON.stringify(record)).not.toContain(EMAIL)
  })

  it('dlp: an answer is redacted whole, and a streamed one in-stream, a card split over events included', async () => {
    world.mock.reset()
    const url = await world.start({ dlp: dlp('redact', ['response']) })
    // Long enough that some of it goes out before the end: the hold-back window is 256 characters.
    const preamble = 'we keep a few things about you on file, as the law allows, and here they are. '.repeat(
      5,
    )
    const reply = `${preamble}your card ${CARD} is on file, write to ${EMAIL}`
    const masked = `${preamble}your card [REDACTED:credit_card] is on file, write to [REDACTED:email]`
    world.mock.enqueue({ reply }, { reply }, { reply }, { reply }, { reply })
    const whole = await send(`${url}${CHAT}`, { body: chat('what is on file?') })
    expect(whole.json()).toMatchObject({ choices: [{ message: { content: masked } }] })
    const streamed = await send(`${url}${CHAT}`, { body: chat('what is on file?', { stream: true }) })
    const { text, events } = streamedText(streamed.text)
    expect(text).toBe(masked)
    // Released as it came, past the window: not held whole.
    expect(
      events.filter((event) => streamedText(`data: ${JSON.stringify(event)}`).text !== '').length,
    ).toBeGreaterThan(2)
    expect(streamed.text.endsWith('data: [DONE]\n\n')).toBe(true)
    // Anthropic's own events, on its passthrough.
    const anthropic = await send(`${url}${MESSAGES}`, {
      body: {
        model: 'claude-haiku-4-5',
        max_tokens: 100,
        stream: true,
        messages: [{ role: 'user', content: 'on file?' }],
      },
    })
    expect(streamedText(anthropic.text).text).toBe(masked)
    expect(anthropic.text).toContain('event: message_stop')
    // /compat, translated from Anthropic into OpenAI's chunks, and Gemini's own stream.
    world.mock.enqueue({ reply }, { reply })
    const compat = await send(`${url}${COMPAT}`, {
      body: chat('on file?', { model: 'anthropic/claude-haiku-4-5', stream: true }),
    })
    expect(streamedText(compat.text).text).toBe(masked)
    const gemini = await send(
      `${url}/ai/google-ai-studio/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse`,
      {
        body: { contents: [{ role: 'user', parts: [{ text: 'on file?' }] }] },
      },
    )
    const geminiText = gemini.text
      .split('\n\n')
      .filter((block) => block.startsWith('data: '))
      .map((block) => JSON.parse(block.slice(6)).candidates?.[0]?.content?.parts?.[0]?.text ?? '')
      .join('')
    expect(geminiText).toBe(masked)
  })

  it('dlp: a flagged answer reaches the client as it is, and its record keeps it masked, whole and streamed', async () => {
    world.mock.reset()
    const url = await world.start({ dlp: dlp('flag', ['response']) })
    const reply = `your card ${CARD} is on file, write to ${EMAIL}`
    world.mock.enqueue({ reply }, { reply }, { reply })
    const whole = await send(`${url}${CHAT}`, { body: chat('what is on file?') })
    const streamed = await send(`${url}${CHAT}`, { body: chat('what is on file?', { stream: true }) })
    const anthropic = await send(`${url}${MESSAGES}`, {
      body: {
        model: 'claude-haiku-4-5',
        max_tokens: 100,
        stream: true,
        messages: [{ role: 'user', content: 'on file?' }],
      },
    })
    expect(whole.json()).toMatchObject({ choices: [{ message: { content: reply } }] })
    expect(streamedText(streamed.text).text).toBe(reply)
    expect(streamedText(anthropic.text).text).toBe(reply)
    await world.gateway?.flushLogs()
    for (const res of [whole, streamed, anthropic]) {
      const record = await world.gateway?.logs?.get(res.headers['cf-aig-log-id'] as string)
      expect(record?.guard?.dlp).toMatchObject({ action: 'FLAG' })
      expect(record?.responseBody).toContain('[REDACTED:credit_card]')
      expect(record?.responseBody).toContain('[REDACTED:email]')
      expect(JSON.stringify(record)).not.toMatch(CARD_TRACE)
      expect(JSON.stringify(record)).not.toContain(EMAIL)
    }
  })

  it('dlp: a cache hit skips DLP, so its record keeps no bodies where DLP had found something, or by a key of the caller', async () => {
    world.mock.reset()
    const url = await world.start({ cache: { ttl: 600 }, dlp: dlp('flag') })
    world.mock.enqueue({ reply: `your card ${CARD} is on file` }, { reply: 'nothing on file' })
    const ask = (content: string, headers: Record<string, string> = {}) =>
      send(`${url}${CHAT}`, { body: chat(content), headers })
    const flagged = [await ask(`mail ${EMAIL}`), await ask(`mail ${EMAIL}`)]
    const clean = [await ask('hello there'), await ask('hello there')]
    // A key of the caller's own answers another body from the entry: that body was never scanned.
    const byKey = await ask(`and ${EMAIL} too`, { 'cf-aig-cache-key': 'mine' })
    const byKeyAgain = await ask(`now ${CARD}`, { 'cf-aig-cache-key': 'mine' })
    expect(
      [...flagged, ...clean, byKey, byKeyAgain].map((res) => res.headers['cf-aig-cache-status']),
    ).toEqual(['MISS', 'HIT', 'MISS', 'HIT', 'MISS', 'HIT'])
    expect(flagged[1]!.json()).toMatchObject({
      choices: [{ message: { content: expect.stringContaining(CARD) } }],
    })
    await world.gateway?.flushLogs()
    const record = (res: { headers: Record<string, unknown> }) =>
      world.gateway?.logs?.get(res.headers['cf-aig-log-id'] as string)
    const hit = await record(flagged[1]!)
    expect([hit?.cached, hit?.requestBody, hit?.responseBody]).toEqual([true, null, null])
    const keyed = await record(byKeyAgain)
    expect([keyed?.requestBody, keyed?.responseBody]).toEqual([null, null])
    // A hit on an answer DLP found nothing in, by the request's own key, keeps its bodies.
    expect((await record(clean[1]!))?.responseBody).toContain('nothing on file')
    for (const res of [...flagged, byKey, byKeyAgain]) {
      expect(JSON.stringify(await record(res))).not.toMatch(CARD_TRACE)
      expect(JSON.stringify(await record(res))).not.toContain(EMAIL)
    }
  })

  it('dlp: a blocked streamed answer ends with the terminal error event before the number reaches the client', async () => {
    world.mock.reset()
    const url = await world.start({ dlp: dlp('block', ['response']) })
    world.mock.enqueue({ reply: `sure, the card is ${CARD} and that is all` })
    const res = await send(`${url}${CHAT}`, { body: chat('card?', { stream: true }) })
    expect(res.status).toBe(200)
    expect(res.text).not.toMatch(CARD_TRACE)
    expect(res.text).toContain('2030')
    expect(res.text).not.toContain('[DONE]')
  })

  it('guardrails: a rule classifier blocks a prompt with 424 (2016) and flags another category, recorded', async () => {
    world.mock.reset()
    const url = await world.start({
      guardrails: {
        classifiers: [
          {
            type: 'rules',
            rules: [
              { category: 'S9', keywords: ['nerve agent'] },
              { category: 'S6', patterns: ['(?i)dosage of \\w+'] },
            ],
          },
        ],
        prompt: { S9: 'BLOCK', S6: 'FLAG' },
      },
    })
    const blocked = await send(`${url}${CHAT}`, { body: chat('how to make a nerve agent at home') })
    expect(blocked.status).toBe(424)
    expect(blocked.json()).toMatchObject({ internalCode: 2016, message: expect.stringContaining('S9') })
    const flagged = await send(`${url}${CHAT}`, { body: chat('what is the usual dosage of ibuprofen') })
    expect(flagged.status).toBe(200)
    await world.gateway?.flushLogs()
    const record = await world.gateway?.logs?.get(flagged.headers['cf-aig-log-id'] as string)
    expect(record?.guard?.guardrails).toMatchObject({
      action: 'FLAG',
      prompt: [{ category: 'S6', score: 1 }],
    })
    expect(world.mock.calls).toHaveLength(1)
  })

  it('guardrails: Llama Guard behind the mock provider, through the gateway: prompt and answer, whole and streamed', async () => {
    world.mock.reset()
    const url = await world.start({
      guardrails: {
        classifiers: [{ type: 'llama-guard', model: 'openai/llama-guard-3-8b' }],
        prompt: { S1: 'block' },
        answer: { S10: 'block' },
        streamChunkChars: 64,
      },
    })
    const prompt = await send(`${url}${CHAT}`, { body: chat('[[unsafe:S1]] tell me how') })
    expect(prompt.status).toBe(424)
    expect(prompt.json()).toMatchObject({ internalCode: 2016 })
    world.mock.reset()
    // The classifier's call for the prompt comes first, then the answer, then the answer's classification.
    world.mock.enqueue({}, { reply: 'here is something [[unsafe:S10]] hateful' })
    const answer = await send(`${url}${CHAT}`, { body: chat('say something') })
    expect(answer.status).toBe(424)
    expect(answer.json()).toMatchObject({ internalCode: 2017 })
    expect(answer.text).not.toContain('hateful')
    world.mock.reset()
    world.mock.enqueue({}, { reply: 'here is something [[unsafe:S10]] hateful' })
    const streamed = await send(`${url}${CHAT}`, { body: chat('say something', { stream: true }) })
    expect(streamed.text).not.toContain('hateful')
    expect(streamed.text).toContain('2017')
    await world.gateway?.flushLogs()
    const record = await world.gateway?.logs?.get(streamed.headers['cf-aig-log-id'] as string)
    expect(record?.guard?.guardrails).toMatchObject({ action: 'BLOCK', answer: [{ category: 'S10' }] })
    expect(record?.responseBody ?? '').not.toContain('hateful')
    const fine = await send(`${url}${CHAT}`, { body: chat('say something nice', { stream: true }) })
    expect(streamedText(fine.text).text).toBe('mock reply to: say something nice')
  })

  it('guardrails: a classifier that fails answers 503 (2132) where a block rule applies, or passes flagged with whenUnavailable pass', async () => {
    world.mock.reset()
    const options = (whenUnavailable: 'refuse' | 'pass'): GatewayOptions => ({
      guardrails: {
        classifiers: [{ type: 'llama-guard', model: 'openai/llama-guard-3-8b' }],
        prompt: { S1: 'block' },
        whenUnavailable,
      },
    })
    const refuse = await world.start(options('refuse'))
    world.mock.enqueue({ status: 500 })
    const down = await send(`${refuse}${CHAT}`, { body: chat('hello') })
    expect(down.status).toBe(503)
    expect(down.json()).toMatchObject({ internalCode: 2132 })
    const pass = await world.start(options('pass'))
    world.mock.enqueue({ status: 500 })
    const through = await send(`${pass}${CHAT}`, { body: chat('hello') })
    expect(through.status).toBe(200)
  })

  it('guardrails: in parallel, a blocked prompt gets 424 and the answer already asked for never reaches the client', async () => {
    world.mock.reset()
    const url = await world.start({
      guardrails: {
        classifiers: [{ type: 'llama-guard', model: 'openai/llama-guard-3-8b' }],
        prompt: { S1: 'block' },
        parallel: true,
      },
    })
    const res = await send(`${url}${CHAT}`, { body: chat('[[unsafe:S1]] now') })
    expect(res.status).toBe(424)
    expect(res.text).not.toContain('mock reply')
    // Both went out at once: the classification and the call it refused.
    expect(world.mock.calls).toHaveLength(2)
  })

  it('guardrails and dlp: wrong options stop the gateway from being made', async () => {
    await expect(
      world.start({ dlp: { policies: [{ id: 'x', profiles: ['nope'], action: 'block' }] } }),
    ).rejects.toThrow(/nope/)
    await expect(
      world.start({
        guardrails: {
          classifiers: [{ type: 'rules', rules: [{ category: 'S1', patterns: ['(a'] }] }],
          prompt: { S1: 'block' },
        },
      }),
    ).rejects.toThrow(/classifiers/)
  })
}

/**
 * Guardrails and DLP against a raw upstream: streams a character per event, bytes split anywhere, CRLF
 * framing, parts cut mid-word, tool calls; Gemini's JSON-array stream; oversized and deeply nested answers.
 */
export function guardStreamFaultScenarios(world: World): void {
  it('guardrails: a keyword cut where one streamed part ends and the next begins is seen whole, and blocks', async () => {
    const firstPartOut = signal()
    const upstream = await startFaultServer(async (_req, res) => {
      const first = 'The recommended amount depends on the patient and the doctor who advises the dos'
      await writeEvents(res, [openaiChunk(first)], { end: false })
      await firstPartOut.promise
      await writeEvents(res, openaiStream(['age for this drug, ask your doctor about it.']))
    })
    try {
      const url = await world.start({
        providers: { openai: { apiKey: 'sk-stored', baseURL: `${upstream.url}/v1` } },
        guardrails: {
          classifiers: [{ type: 'rules', rules: [{ category: 'S6', keywords: ['dosage'] }] }],
          answer: { S6: 'block' },
          streamChunkChars: 64,
        },
      })
      const body = await readAsItComes(`${url}${CHAT}`, chat('how much?', { stream: true }), (sofar) => {
        if (sofar.includes('advises the dos')) firstPartOut.resolve()
      })
      expect(body).toContain('2017')
      expect(streamedText(body).text).not.toContain('age for this drug')
    } finally {
      await upstream.close()
    }
  })

  it('guardrails: tool-call events after a short streamed text go out as they come, the text classified once', async () => {
    const toolCallsOut = signal()
    const upstream = await startFaultServer(async (_req, res) => {
      const toolCalls = Array.from({ length: 20 }, (_, i) => toolCallChunk(`"part ${i}",`))
      await writeEvents(res, [openaiChunk('Sure, writing it.'), ...toolCalls], { end: false })
      await toolCallsOut.promise
      await writeEvents(res, [openaiChunk('', 'tool_calls'), OPENAI_DONE])
    })
    const classified: string[] = []
    try {
      const url = await world.start({
        providers: { openai: { apiKey: 'sk-stored', baseURL: `${upstream.url}/v1` } },
        guardrails: {
          classifiers: [
            {
              id: 'seen',
              classify: async (text) => {
                classified.push(text)
                return { unsafe: false, categories: [] }
              },
            },
          ],
          answer: { S1: 'block' },
        },
      })
      const body = await readAsItComes(`${url}${CHAT}`, chat('write it', { stream: true }), (sofar) => {
        if (sofar.includes('tool_calls')) toolCallsOut.resolve()
      })
      expect(streamedText(body).text).toBe('Sure, writing it.')
      expect(body.endsWith('data: [DONE]\n\n')).toBe(true)
      expect(classified).toEqual(['Sure, writing it.'])
    } finally {
      await upstream.close()
    }
  })

  it("guardrails: Gemini's stream without alt=sse (one JSON array) is classified, every chunk's text read", async () => {
    const chunk = (text: string) => ({
      candidates: [{ content: { role: 'model', parts: [{ text }] }, index: 0 }],
    })
    const upstream = await startFaultServer((_req, res) => {
      writeFixed(res, 200, JSON.stringify([chunk('Here is how to build a bo'), chunk('mb: step one')]))
    })
    try {
      const url = await world.start({
        providers: { 'google-ai-studio': { apiKey: 'goog-stored', baseURL: upstream.url } },
        guardrails: {
          classifiers: [{ type: 'rules', rules: [{ category: 'S9', keywords: ['bomb'] }] }],
          answer: { S9: 'block' },
        },
      })
      const res = await send(
        `${url}/ai/google-ai-studio/v1beta/models/gemini-2.5-flash:streamGenerateContent`,
        {
          body: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] },
        },
      )
      expect(res.status).toBe(424)
      expect(res.json()).toMatchObject({ internalCode: 2017 })
      expect(res.text).not.toContain('step one')
    } finally {
      await upstream.close()
    }
  })

  it("guardrails: Ollama's own answers are classified, whole (chat and generate) and in JSON lines", async () => {
    const upstream = await startFaultServer(async (request, res) => {
      const chat = request.url === '/api/chat'
      const line = (text: string, done: boolean) =>
        chat
          ? { model: 'llama3.2', message: { role: 'assistant', content: text }, done }
          : { model: 'llama3.2', response: text, done }
      if ((request.json() as { stream?: boolean }).stream === false) {
        writeFixed(res, 200, JSON.stringify(line('Here is how to build a bomb: step one', true)))
        return
      }
      res.writeHead(200, { 'content-type': 'application/x-ndjson' })
      for (const text of ['Here is how to build a bo', 'mb: step one'])
        await writeAsync(res, `${JSON.stringify(line(text, false))}\n`)
      res.end(`${JSON.stringify(line('', true))}\n`)
    })
    try {
      const url = await world.start({
        customProviders: { ollama: { baseURL: upstream.url } },
        guardrails: {
          classifiers: [{ type: 'rules', rules: [{ category: 'S9', keywords: ['bomb'] }] }],
          answer: { S9: 'block' },
        },
      })
      for (const path of ['/api/chat', '/api/generate']) {
        const body = { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], prompt: 'hi' }
        const whole = await send(`${url}/ai/custom-ollama${path}`, { body: { ...body, stream: false } })
        expect(whole.status, path).toBe(424)
        expect(whole.json()).toMatchObject({ internalCode: 2017 })
        const lines = await send(`${url}/ai/custom-ollama${path}`, { body })
        expect(lines.text, path).not.toContain('step one')
        expect(lines.text.trim().split('\n').at(-1)).toContain('"code":2017')
      }
    } finally {
      await upstream.close()
    }
  })

  it("guardrails: a guard model's answer is read up to its 1 MiB cap, no further: the classifier is unavailable", async () => {
    let written: Promise<number> | undefined
    const upstream = await startFaultServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"choices":[{"message":{"content":"safe"}}],"pad":"')
      written = pump(res, () => ' '.repeat(64 * 1024))
    })
    try {
      const url = await world.start({
        providers: { openai: { apiKey: 'sk-stored', baseURL: `${upstream.url}/v1` } },
        guardrails: {
          classifiers: [{ type: 'llama-guard', model: 'openai/llama-guard-3-8b' }],
          prompt: { S1: 'block' },
        },
        maxResponseBytes: 64 * 1024 * 1024,
      })
      const res = await send(`${url}${CHAT}`, { body: chat('hello') })
      expect(res.status).toBe(503)
      expect(res.json()).toMatchObject({ internalCode: 2132 })
      // What loopback's buffers took besides the cap; read to the body's own cap, it would be 64 MiB.
      expect(await written).toBeLessThan(16 * 1024 * 1024)
    } finally {
      await upstream.close()
    }
  })

  it('dlp: redacting a prompt nested too deeply to write again is 400 (2112), never sent, its card kept out of the log', async () => {
    world.mock.reset()
    const url = await world.start({ dlp: dlp('redact', ['request']) })
    const body = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"card ${CARD}"}],"blob":${nested(100_000)}}`
    const res = await send(`${url}${CHAT}`, { body })
    expect(res.status).toBe(400)
    expect(res.json()).toMatchObject({ internalCode: 2112 })
    expect(world.mock.calls).toHaveLength(0)
    await world.gateway?.flushLogs()
    const record = await world.gateway?.logs?.get(res.headers['cf-aig-log-id'] as string)
    expect(record?.statusCode).toBe(400)
    expect(JSON.stringify(record)).not.toMatch(CARD_TRACE)
  })

  it('dlp: redacting an answer nested too deeply to write again is 502 (2115), none of it sent', async () => {
    const upstream = await startFaultServer((_req, res) => {
      const answer = `{"choices":[{"index":0,"message":{"role":"assistant","content":"card ${CARD}"}}],"x":${nested(100_000)}}`
      writeFixed(res, 200, answer)
    })
    try {
      const url = await world.start({
        providers: { openai: { apiKey: 'sk-stored', baseURL: `${upstream.url}/v1` } },
        dlp: dlp('redact', ['response']),
      })
      const res = await send(`${url}${CHAT}`, { body: chat('card?') })
      expect(res.status).toBe(502)
      expect(res.json()).toMatchObject({ internalCode: 2115 })
      expect(res.text).not.toMatch(CARD_TRACE)
    } finally {
      await upstream.close()
    }
  })

  it.each([
    ['its text', (card: string) => ({ content: `card ${card}` })],
    ['a tool call', (card: string) => ({ tool_calls: [{ index: 0, function: { arguments: card } }] })],
  ])(
    'dlp: redacting a streamed event nested too deeply to write again (in %s) ends the stream with 2115, the card never sent',
    async (_where, delta) => {
      const event = `{"choices":[{"index":0,"delta":${JSON.stringify(delta(CARD))}}],"x":${nested(100_000)}}`
      const upstream = await startFaultServer(async (_req, res) => {
        res.writeHead(200, SSE_HEADERS)
        await writeAsync(res, openaiChunk('Here it is. '))
        await writeAsync(res, `data: ${event}\n\n`)
        await writeAsync(res, OPENAI_DONE)
        res.end()
      })
      try {
        const url = await world.start({
          providers: { openai: { apiKey: 'sk-stored', baseURL: `${upstream.url}/v1` } },
          dlp: dlp('redact', ['response']),
        })
        const res = await send(`${url}${CHAT}`, { body: chat('card?', { stream: true }) })
        expect(res.status).toBe(200)
        expect(res.text).not.toMatch(CARD_TRACE)
        expect(res.text).toContain('"code":2115')
        expect(res.text).not.toContain('[DONE]')
      } finally {
        await upstream.close()
      }
    },
  )

  it.each([1, 7, 64])(
    'dlp: a stream a character per event, written %i bytes at a time, is redacted exactly and keeps its finish',
    async (split) => {
      const secret = `call 555-867-5309? no: card ${CARD}, ssn 536-90-4421. bye`
      const events = [...[...secret].map((c) => openaiChunk(c)), openaiChunk('', 'stop'), OPENAI_DONE].map(
        (event) => event.replaceAll('\n', '\r\n'),
      )
      const bytes = Buffer.from(events.join(''))
      const upstream = await startFaultServer(async (_req, res) => {
        res.writeHead(200, SSE_HEADERS)
        for (let at = 0; at < bytes.length; at += split) await writeAsync(res, bytes.subarray(at, at + split))
        res.end()
      })
      try {
        const url = await world.start({
          providers: { openai: { apiKey: 'sk-stored', baseURL: `${upstream.url}/v1` } },
          dlp: { policies: [{ id: 'all', profiles: ['financial', 'government_ids'], action: 'redact' }] },
        })
        const res = await send(`${url}${CHAT}`, { body: chat('tell me', { stream: true }) })
        const { text, events: seen } = streamedText(res.text)
        expect(text).toBe('call 555-867-5309? no: card [REDACTED:credit_card], ssn [REDACTED:us_ssn]. bye')
        expect(seen.at(-1)).toMatchObject({ choices: [{ finish_reason: 'stop' }] })
        expect(res.text.endsWith('data: [DONE]\n\n') || res.text.endsWith('data: [DONE]\r\n\r\n')).toBe(true)
      } finally {
        await upstream.close()
      }
    },
  )
}
