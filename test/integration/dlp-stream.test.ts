/**
 * DLP on streamed answers, from a raw upstream whose events are cut and interleaved as providers do: a
 * finding is masked whole however its text is split, whatever passes between its pieces, and every event
 * goes out once. Server-sent events and Ollama's JSON lines alike.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type MountedGateway, mountGateway } from '../helpers/express-gateway.js'
import {
  type FaultServer,
  type ObservedRequest,
  OPENAI_DONE,
  openaiChunk,
  SSE_HEADERS,
  startFaultServer,
  writeAsync,
  writeFixed,
} from '../helpers/fault-server.js'
import { send } from '../helpers/http.js'
import { seededRandom } from '../helpers/random.js'

const CHAT = '/ai/openai/chat/completions'
const GEMINI = '/ai/google-ai-studio/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse'
const IBAN_SENTENCE = 'Please transfer the money to GB82 WEST 1234 5698 7654 32. Thanks!'
const OLLAMA_CHAT = '/ai/custom-ollama/api/chat'
const NDJSON_HEADERS = { 'content-type': 'application/x-ndjson' }

/** What each request is answered with, set by each test: events, and promises the upstream waits on. */
let answer: (request: ObservedRequest) => (string | Buffer | Promise<void>)[] = () => []
let upstream: FaultServer
let gateway: MountedGateway

beforeAll(async () => {
  upstream = await startFaultServer(async (request, res) => {
    // Ollama's own API answers in JSON lines.
    res.writeHead(200, request.url.startsWith('/api/') ? NDJSON_HEADERS : SSE_HEADERS)
    for (const item of answer(request)) await (item instanceof Promise ? item : writeAsync(res, item))
    res.end()
  })
  gateway = await mountGateway({
    providers: {
      openai: { apiKey: 'sk-stored', baseURL: `${upstream.url}/v1` },
      'google-ai-studio': { apiKey: 'goog-stored', baseURL: upstream.url },
    },
    customProviders: { ollama: { baseURL: upstream.url } },
    dlp: {
      policies: [{ id: 'mask', profiles: ['financial', 'pii'], check: ['response'], action: 'redact' }],
    },
  })
})
afterAll(async () => {
  await gateway.close()
  await upstream.close()
})

/** The fields of OpenAI's and Gemini's stream events these tests read. */
interface StreamEvent {
  choices?: { index: number; delta?: { content?: string | null } }[]
  usage?: unknown
  candidates?: { finishReason?: string; content: { parts: { text?: string; functionCall?: unknown }[] } }[]
  usageMetadata?: unknown
}

/** The `data:` events of a stream, parsed; `[DONE]` and comments left out. */
function dataEvents(sse: string): StreamEvent[] {
  return sse
    .split(/\n\n/)
    .map((block) => block.split('\n').find((line) => line.startsWith('data: {')))
    .filter((line) => line !== undefined)
    .map((line) => JSON.parse(line.slice(6)))
}

/** Each choice's text, by its index. */
function choiceTexts(sse: string): string[] {
  const texts: string[] = []
  for (const event of dataEvents(sse)) {
    for (const choice of event.choices ?? []) {
      texts[choice.index] = (texts[choice.index] ?? '') + (choice.delta?.content ?? '')
    }
  }
  return texts
}

async function streamChat(prompt = 'hi') {
  return send(`${gateway.url}${CHAT}`, {
    body: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: prompt }] },
  })
}

/** `text` cut at `at`, the rest in deltas of 1 to 6 characters, as models stream. */
function smallDeltas(text: string, at: number, random: (n: number) => number): string[] {
  const pieces = [text.slice(0, at)]
  for (let start = at; start < text.length; ) {
    const end = start + 1 + random(6)
    pieces.push(text.slice(start, end))
    start = end
  }
  return pieces
}

describe('dlp on streamed answers', () => {
  it('masks a finding whole, wherever the stream is cut and however small its deltas: no digit goes out', async () => {
    const random = seededRandom(7)
    answer = (request) => {
      const at = Number((request.json() as { messages: { content: string }[] }).messages[0]!.content)
      return [...smallDeltas(IBAN_SENTENCE, at, random).map((piece) => openaiChunk(piece)), OPENAI_DONE]
    }
    for (let at = 1; at < IBAN_SENTENCE.length; at++) {
      const res = await streamChat(String(at))
      const [text] = choiceTexts(res.text)
      expect(text, `cut at ${at}`).toBe('Please transfer the money to [REDACTED:iban]. Thanks!')
      expect(text).not.toMatch(/\d/)
    }
  })

  it('masks a run of overlapping findings longer than twice the hold-back window in every event it spans', async () => {
    // 'a b' and 'b a' overlap all along the run: 40 characters, past what the scanner holds whole (24).
    const own = await mountGateway({
      providers: { openai: { apiKey: 'sk-stored', baseURL: `${upstream.url}/v1` } },
      dlp: {
        profiles: [
          {
            id: 'words',
            entries: [
              { id: 'ab', type: 'keyword', value: 'a b' },
              { id: 'ba', type: 'keyword', value: 'b a' },
            ],
          },
        ],
        policies: [{ id: 'mask', profiles: ['words'], check: ['response'], action: 'redact' }],
        holdBackChars: 12,
      },
    })
    try {
      answer = () => [...`x ${'a b '.repeat(10)}y`].map((char) => openaiChunk(char)).concat(OPENAI_DONE)
      const res = await send(`${own.url}${CHAT}`, {
        body: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] },
      })
      expect(choiceTexts(res.text)[0]).toMatch(/^x \[REDACTED:[a-z,]+\] y$/)
    } finally {
      await own.close()
    }
  })

  it.each([
    ['a comment', ': keep-alive\n\n'],
    ['an empty delta', openaiChunk('')],
    [
      'a reasoning delta',
      `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: null, reasoning_content: 'hmm' } }] })}\n\n`,
    ],
  ])('masks a card and an email split over events with %s between their halves', async (_name, between) => {
    answer = () => [
      openaiChunk('Your card is 4111 1111'),
      between,
      openaiChunk(' 1111 1111 and mail ana.silva@exa'),
      between,
      openaiChunk('mple.com ok'),
      openaiChunk('', 'stop'),
      OPENAI_DONE,
    ]
    const res = await streamChat()
    expect(choiceTexts(res.text)).toEqual([
      'Your card is [REDACTED:credit_card] and mail [REDACTED:email] ok',
    ])
    expect(res.text).not.toMatch(/4111|ana\.silva/)
    // What came between passes, in its place.
    expect(res.text.split(between.trim())).toHaveLength(3)
  })

  it('lets a keep-alive comment out at once while it holds the start of a card', async () => {
    let resume = () => {}
    const resumed = new Promise<void>((resolve) => {
      resume = resolve
    })
    answer = () => [
      openaiChunk('Your card is 4111 1111'),
      ': keep-alive\n\n',
      resumed,
      openaiChunk(' 1111 1111 ok'),
      OPENAI_DONE,
    ]
    const res = await fetch(`${gateway.url}${CHAT}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'gpt-4o-mini',
        stream: true,
        messages: [{ role: 'user', content: 'hi' }],
      }),
    })
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
    let seen = ''
    while (!seen.includes(': keep-alive')) {
      const next = await reader.read()
      if (next.done) break
      seen += next.value
    }
    expect(seen).toContain(': keep-alive')
    expect(seen).not.toMatch(/4111/)
    resume()
    for (let next = await reader.read(); !next.done; next = await reader.read()) seen += next.value
    expect(choiceTexts(seen)).toEqual(['Your card is [REDACTED:credit_card] ok'])
  })

  it("sends each event's other fields once: a Gemini function call, its finish and usage", async () => {
    const gemini = (parts: unknown[], last = false) => {
      const candidate = { content: { role: 'model', parts }, index: 0, ...(last && { finishReason: 'STOP' }) }
      const usage = last && {
        usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 7, totalTokenCount: 12 },
      }
      return `data: ${JSON.stringify({ candidates: [candidate], ...usage })}\r\n\r\n`
    }
    answer = () => [
      gemini([{ text: 'I will look that up. ' }]),
      gemini(
        [{ text: 'Calling the weather tool now' }, { functionCall: { name: 'get_weather', args: {} } }],
        true,
      ),
    ]
    const res = await send(`${gateway.url}${GEMINI}`, {
      body: { contents: [{ role: 'user', parts: [{ text: 'weather?' }] }] },
    })
    const events = dataEvents(res.text.replaceAll('\r\n', '\n'))
    const parts = events.flatMap((event) => event.candidates?.[0]?.content.parts ?? [])
    expect(parts.filter((part) => part.functionCall !== undefined)).toHaveLength(1)
    expect(events.filter((event) => event.candidates?.[0]?.finishReason !== undefined)).toHaveLength(1)
    expect(events.filter((event) => event.usageMetadata !== undefined)).toHaveLength(1)
    expect(parts.map((part) => part.text ?? '').join('')).toBe(
      'I will look that up. Calling the weather tool now',
    )
  })

  it("masks the other strings of an event that carries text: a Gemini function call's arguments beside it", async () => {
    const event = {
      candidates: [
        {
          index: 0,
          content: {
            role: 'model',
            parts: [
              { text: 'Sending it now.' },
              { functionCall: { name: 'send_mail', args: { to: 'ana.silva@example.com', iban: 'none' } } },
            ],
          },
          finishReason: 'STOP',
        },
      ],
    }
    answer = () => [`data: ${JSON.stringify(event)}\r\n\r\n`]
    const res = await send(`${gateway.url}${GEMINI}`, {
      body: { contents: [{ role: 'user', parts: [{ text: 'mail it' }] }] },
    })
    expect(res.text).not.toContain('ana.silva')
    const parts = dataEvents(res.text.replaceAll('\r\n', '\n')).flatMap(
      (each) => each.candidates?.[0]?.content.parts ?? [],
    )
    expect(parts).toEqual([
      { text: 'Sending it now.' },
      { functionCall: { name: 'send_mail', args: { to: '[REDACTED:email]', iban: 'none' } } },
    ])
  })

  it('sends a finish and usage once, after all of the text', async () => {
    const finish = JSON.parse(openaiChunk('general Kenobi. You are a bold one', 'stop').slice(6))
    answer = () => [
      openaiChunk('Hello there, '),
      `data: ${JSON.stringify({ ...finish, usage: { prompt_tokens: 3, completion_tokens: 9, total_tokens: 12 } })}\n\n`,
      OPENAI_DONE,
    ]
    const res = await streamChat()
    const events = dataEvents(res.text)
    expect(events).toHaveLength(2)
    expect(events[1]).toMatchObject({ choices: [{ finish_reason: 'stop' }], usage: { total_tokens: 12 } })
    expect(choiceTexts(res.text)).toEqual(['Hello there, general Kenobi. You are a bold one'])
  })

  it('scans each choice of an n=2 stream on its own, each keeping its text', async () => {
    const choice = (index: number, content: string) => {
      const event = JSON.parse(openaiChunk(content).slice(6))
      return `data: ${JSON.stringify({ ...event, choices: [{ ...event.choices[0], index }] })}\n\n`
    }
    answer = () => [
      choice(0, 'Apples are'),
      choice(1, 'Mail ana.silva@exa'),
      choice(0, ' red fruit.'),
      choice(1, 'mple.com now.'),
      OPENAI_DONE,
    ]
    const res = await streamChat()
    expect(choiceTexts(res.text)).toEqual(['Apples are red fruit.', 'Mail [REDACTED:email] now.'])
  })
})

/** A line of Ollama's `/api/chat` stream. */
function ollamaLine(content: string, extra: Record<string, unknown> = {}): string {
  const message = { role: 'assistant', content, ...extra }
  return `${JSON.stringify({ model: 'llama3.2', created_at: '2025-01-01T00:00:00Z', message, done: false })}\n`
}
const OLLAMA_DONE = `${JSON.stringify({ model: 'llama3.2', message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop', eval_count: 9 })}\n`

/** The JSON lines of an answer, parsed. */
function jsonLines(body: string): Record<string, unknown>[] {
  return body
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line))
}

/** The text of Ollama's chat lines, joined. */
function ollamaText(body: string): string {
  return jsonLines(body)
    .map((line) => (line.message as { content?: string } | undefined)?.content ?? line.response ?? '')
    .join('')
}

describe("dlp on Ollama's JSON-lines streams", () => {
  const chat = (prompt = 'hi') =>
    send(`${gateway.url}${OLLAMA_CHAT}`, {
      body: { model: 'llama3.2', messages: [{ role: 'user', content: prompt }] },
    })

  it('masks a finding split over lines, the bytes cut anywhere (inside a character too), and keeps every line', async () => {
    const lines = [
      ollamaLine('Café au lait? Your card is 4111 1111'),
      ollamaLine(' 1111 1111 and mail ana.silva@exa'),
      ollamaLine('mple.com, merci ☕'),
      OLLAMA_DONE,
    ]
    const bytes = Buffer.from(lines.join(''))
    for (const split of [1, 5, 64]) {
      answer = () => {
        const pieces: Buffer[] = []
        for (let at = 0; at < bytes.length; at += split) pieces.push(bytes.subarray(at, at + split))
        return pieces
      }
      const res = await chat()
      expect(res.headers['content-type']).toContain('application/x-ndjson')
      expect(ollamaText(res.text), `written ${split} bytes at a time`).toBe(
        'Café au lait? Your card is [REDACTED:credit_card] and mail [REDACTED:email], merci ☕',
      )
      expect(res.text).not.toMatch(/4111|ana\.silva/)
      expect(jsonLines(res.text)).toHaveLength(4)
      expect(jsonLines(res.text).at(-1)).toMatchObject({ done: true, done_reason: 'stop' })
    }
  })

  it("masks a generation's text and a tool call's arguments", async () => {
    answer = (request) =>
      request.url === '/api/generate'
        ? [
            `${JSON.stringify({ model: 'llama3.2', response: 'write to ana.silva@', done: false })}\n`,
            `${JSON.stringify({ model: 'llama3.2', response: 'example.com', done: false })}\n`,
            `${JSON.stringify({ model: 'llama3.2', response: '', done: true })}\n`,
          ]
        : [
            ollamaLine('', {
              tool_calls: [{ function: { name: 'pay', arguments: { card: '4111 1111 1111 1111' } } }],
            }),
            OLLAMA_DONE,
          ]
    const generated = await send(`${gateway.url}/ai/custom-ollama/api/generate`, {
      body: { model: 'llama3.2', prompt: 'mail?' },
    })
    expect(ollamaText(generated.text)).toBe('write to [REDACTED:email]')
    const called = await chat()
    expect(called.text).not.toMatch(/4111/)
    expect(jsonLines(called.text)[0]).toMatchObject({
      message: { tool_calls: [{ function: { arguments: { card: '[REDACTED:credit_card]' } } }] },
    })
  })

  it('scans JSON lines that arrive whole, with a length', async () => {
    const own = await startFaultServer((_request, res) => {
      writeFixed(res, 200, [ollamaLine('card 4111 1111 1111 1111'), OLLAMA_DONE].join(''), NDJSON_HEADERS)
    })
    const mounted = await mountGateway({
      customProviders: { ollama: { baseURL: own.url } },
      dlp: { policies: [{ id: 'mask', profiles: ['financial'], check: ['response'], action: 'redact' }] },
    })
    try {
      const res = await send(`${mounted.url}${OLLAMA_CHAT}`, {
        body: { model: 'llama3.2', messages: [{ role: 'user', content: 'card?' }] },
      })
      expect(ollamaText(res.text)).toBe('card [REDACTED:credit_card]')
    } finally {
      await mounted.close()
      await own.close()
    }
  })

  it("ends a blocked stream with Ollama's error line (2030) before the finding goes out", async () => {
    const blocking = await mountGateway({
      customProviders: { ollama: { baseURL: upstream.url } },
      dlp: { policies: [{ id: 'stop', profiles: ['financial'], check: ['response'], action: 'block' }] },
    })
    try {
      answer = () => [ollamaLine('Sure. Your card is 4111 1111'), ollamaLine(' 1111 1111.'), OLLAMA_DONE]
      const res = await send(`${blocking.url}${OLLAMA_CHAT}`, {
        body: { model: 'llama3.2', messages: [{ role: 'user', content: 'card?' }] },
      })
      expect(res.text).not.toMatch(/4111/)
      expect(jsonLines(res.text).at(-1)).toEqual({
        error: 'Response content blocked due to DLP policy violations',
        code: 2030,
      })
      expect(res.text).not.toContain('"done":true')
    } finally {
      await blocking.close()
    }
  })
})

describe('dlp that only flags, on streams', () => {
  it("passes each finding on as it is and masks it in the record's copy: split over events, in a tool call, in JSON lines", async () => {
    const flagging = await mountGateway({
      providers: { openai: { apiKey: 'sk-stored', baseURL: `${upstream.url}/v1` } },
      customProviders: { ollama: { baseURL: upstream.url } },
      dlp: {
        policies: [{ id: 'note', profiles: ['financial', 'pii'], check: ['response'], action: 'flag' }],
      },
    })
    const toolCall = {
      choices: [
        {
          index: 0,
          delta: { tool_calls: [{ index: 0, function: { arguments: '{"to":"ana.silva@example.com"}' } }] },
        },
      ],
    }
    try {
      answer = (request) =>
        request.url.startsWith('/api/')
          ? [
              ollamaLine('Your card is 4111 1111'),
              ollamaLine(' 1111 1111, noted.'),
              ollamaLine('', {
                tool_calls: [{ function: { name: 'mail', arguments: { to: 'ana.silva@example.com' } } }],
              }),
              OLLAMA_DONE,
            ]
          : [
              openaiChunk('Your card is 4111 1111'),
              openaiChunk(' 1111 1111, noted.'),
              `data: ${JSON.stringify(toolCall)}\n\n`,
              openaiChunk('', 'tool_calls'),
              OPENAI_DONE,
            ]
      const sse = await send(`${flagging.url}${CHAT}`, {
        body: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'card?' }] },
      })
      const lines = await send(`${flagging.url}${OLLAMA_CHAT}`, {
        body: { model: 'llama3.2', messages: [{ role: 'user', content: 'card?' }] },
      })
      expect(choiceTexts(sse.text)).toEqual(['Your card is 4111 1111 1111 1111, noted.'])
      expect(sse.text).toContain('ana.silva@example.com')
      expect(ollamaText(lines.text)).toBe('Your card is 4111 1111 1111 1111, noted.')
      expect(lines.text).toContain('ana.silva@example.com')
      await flagging.gateway.flushLogs()
      const logged = async (res: { headers: Record<string, unknown> }) =>
        flagging.gateway.logs!.get(res.headers['cf-aig-log-id'] as string)
      const sseRecord = await logged(sse)
      expect(sseRecord?.guard?.dlp).toMatchObject({ action: 'FLAG' })
      expect(sseRecord?.responseBody).toContain('Your card is [REDACTED:credit_card], noted.')
      const linesRecord = await logged(lines)
      expect(ollamaText(linesRecord?.responseBody ?? '')).toBe('Your card is [REDACTED:credit_card], noted.')
      expect(linesRecord?.responseBody).toContain('"to":"[REDACTED:email]"')
      for (const record of [sseRecord, linesRecord]) {
        expect(JSON.stringify(record)).not.toMatch(/4111|ana\.silva/)
      }
    } finally {
      await flagging.close()
    }
  })
})
