import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import {
  ANSWER_TEXT,
  ANTHROPIC_DELTA_COUNT,
  answerPieces,
  EVENT_GAP_PARAM,
  OPENAI_CHUNK_COUNT,
  OPENAI_STREAM_PIECES,
} from './answer.js'
import { GUARD_EMAIL, GUARD_MODEL } from './guard-config.js'
import { count, listenAndReport } from './shared.js'

// A fake OpenAI and Anthropic that does as little as an honest server can: it reads the whole request body,
// then answers precomputed bytes. Anything slower here would shrink the gateway's share of the measured time.

const CREATED = 1_735_689_600
const SSE_HEADERS = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' }

/** One provider endpoint's answers: a JSON document, and the events of a stream in the order they go out. */
interface Answers {
  readonly json: Buffer
  readonly events: readonly Buffer[]
}

// OpenAI Chat Completions: `POST /v1/chat/completions`.

const COMPLETION = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-bench0000000000000000000000000',
    object: 'chat.completion',
    created: CREATED,
    model: 'gpt-4o-mini-2024-07-18',
    system_fingerprint: 'fp_0000000000',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: ANSWER_TEXT, refusal: null },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: { prompt_tokens: 12, completion_tokens: 48, total_tokens: 60 },
  }),
)

/**
 * A chunk of the stream; `withUsage` is a stream asked for usage (`stream_options.include_usage`), where
 * OpenAI puts `"usage":null` on every chunk and sends the usage in one more chunk with no choices.
 */
function openaiEvent(index: number, withUsage: boolean): Buffer {
  const last = index === OPENAI_CHUNK_COUNT - 1
  const chunk = {
    id: 'chatcmpl-bench0000000000000000000000000',
    object: 'chat.completion.chunk',
    created: CREATED,
    model: 'gpt-4o-mini-2024-07-18',
    system_fingerprint: 'fp_0000000000',
    choices: [
      {
        index: 0,
        delta:
          index === 0
            ? { role: 'assistant', content: '' }
            : last
              ? {}
              : { content: OPENAI_STREAM_PIECES[index - 1] },
        logprobs: null,
        finish_reason: last ? 'stop' : null,
      },
    ],
    ...(withUsage ? { usage: null } : {}),
  }
  return Buffer.from(`data: ${JSON.stringify(chunk)}\n\n`)
}

const OPENAI_DONE = Buffer.from('data: [DONE]\n\n')

const OPENAI: Answers = {
  json: COMPLETION,
  events: [
    ...Array.from({ length: OPENAI_CHUNK_COUNT }, (_, index) => openaiEvent(index, false)),
    OPENAI_DONE,
  ],
}

const OPENAI_USAGE_CHUNK = Buffer.from(
  `data: ${JSON.stringify({
    id: 'chatcmpl-bench0000000000000000000000000',
    object: 'chat.completion.chunk',
    created: CREATED,
    model: 'gpt-4o-mini-2024-07-18',
    system_fingerprint: 'fp_0000000000',
    choices: [],
    usage: { prompt_tokens: 12, completion_tokens: 19, total_tokens: 31 },
  })}\n\n`,
)

/** The same stream for a request with `"include_usage":true`: what the gateway asks for when it logs. */
const OPENAI_WITH_USAGE: Answers = {
  json: COMPLETION,
  events: [
    ...Array.from({ length: OPENAI_CHUNK_COUNT }, (_, index) => openaiEvent(index, true)),
    OPENAI_USAGE_CHUNK,
    OPENAI_DONE,
  ],
}
const INCLUDE_USAGE = Buffer.from('"include_usage":true')

// Llama Guard on the same endpoint: a chat request naming a `llama-guard` model gets its verdict, `safe`.

const GUARD_VERDICT = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-benchguard00000000000000000000',
    object: 'chat.completion',
    created: CREATED,
    model: GUARD_MODEL,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: 'safe', refusal: null },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: { prompt_tokens: 220, completion_tokens: 2, total_tokens: 222 },
  }),
)
const GUARD_MODEL_FIELD = Buffer.from(`"model":"${GUARD_MODEL}"`)
const GUARD_EMAIL_BYTES = Buffer.from(GUARD_EMAIL)

// Anthropic Messages: `POST /v1/messages`, the same text, with the usage block Anthropic reports.

const MESSAGE_ID = 'msg_01Bench000000000000000000'
const CLAUDE_MODEL = 'claude-sonnet-4-5-20250929'
const INPUT_USAGE = {
  input_tokens: 12,
  cache_creation_input_tokens: 0,
  cache_read_input_tokens: 0,
  cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
}

const MESSAGE = Buffer.from(
  JSON.stringify({
    id: MESSAGE_ID,
    type: 'message',
    role: 'assistant',
    model: CLAUDE_MODEL,
    content: [{ type: 'text', text: ANSWER_TEXT }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { ...INPUT_USAGE, output_tokens: 48, service_tier: 'standard' },
  }),
)

/** Anthropic names every event twice: in its `event:` line and in the `type` of its data. */
function anthropicEvent(type: string, data: string): Buffer {
  return Buffer.from(`event: ${type}\ndata: ${data}\n\n`)
}

const ANTHROPIC: Answers = {
  json: MESSAGE,
  events: [
    anthropicEvent(
      'message_start',
      JSON.stringify({
        type: 'message_start',
        message: {
          id: MESSAGE_ID,
          type: 'message',
          role: 'assistant',
          model: CLAUDE_MODEL,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { ...INPUT_USAGE, output_tokens: 1, service_tier: 'standard' },
        },
      }),
    ),
    anthropicEvent(
      'content_block_start',
      JSON.stringify({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
    ),
    // Anthropic's ping data is written with a space after the colon.
    anthropicEvent('ping', '{"type": "ping"}'),
    ...answerPieces(ANTHROPIC_DELTA_COUNT).map((text) =>
      anthropicEvent(
        'content_block_delta',
        JSON.stringify({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }),
      ),
    ),
    anthropicEvent('content_block_stop', JSON.stringify({ type: 'content_block_stop', index: 0 })),
    anthropicEvent(
      'message_delta',
      JSON.stringify({
        type: 'message_delta',
        delta: { stop_reason: 'end_turn', stop_sequence: null },
        usage: { output_tokens: 48 },
      }),
    ),
    anthropicEvent('message_stop', JSON.stringify({ type: 'message_stop' })),
  ],
}

const ROUTES: ReadonlyMap<string, Answers> = new Map([
  ['/v1/chat/completions', OPENAI],
  ['/v1/messages', ANTHROPIC],
])

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? ''
  let answers = req.method === 'POST' ? ROUTES.get(url) : undefined
  let gapMs = 0
  // Only a request that asks for spaced events has a query: the usual ones take the lookup above alone.
  const query = answers === undefined && req.method === 'POST' ? url.indexOf('?') : -1
  if (query !== -1) {
    answers = ROUTES.get(url.slice(0, query))
    gapMs = Number(new URLSearchParams(url.slice(query + 1)).get(EVENT_GAP_PARAM)) || 0
  }
  if (answers === undefined) {
    res.writeHead(404, { 'content-type': 'text/plain', 'content-length': '9' }).end('not found')
    return
  }
  const chunks: Buffer[] = []
  req.on('data', (chunk: Buffer) => chunks.push(chunk))
  req.on('end', () => {
    const body = Buffer.concat(chunks)
    // The runner checks this count to prove that a cache answered without reaching the provider.
    count('answers')
    // The guard rows' requests carry this address, which the gateway must have redacted before the call.
    if (body.includes(GUARD_EMAIL_BYTES)) count('unredacted')
    if (answers === OPENAI && body.includes(GUARD_MODEL_FIELD)) {
      // The runner reads this count against the requests the gateway received: each is classified twice.
      count('guardCalls')
      answerJson(res, GUARD_VERDICT)
    } else if (!body.includes('"stream":true')) answerJson(res, answers.json)
    else {
      const events =
        answers === OPENAI && body.includes(INCLUDE_USAGE) ? OPENAI_WITH_USAGE.events : answers.events
      if (gapMs > 0) answerSpacedStream(res, events, gapMs)
      else answerStream(res, events)
    }
  })
}

function answerJson(res: ServerResponse, json: Buffer): void {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': json.length })
  res.end(json)
}

/** Each event is its own write, as a provider emitting tokens would send them; the last one ends the answer. */
function answerStream(res: ServerResponse, events: readonly Buffer[]): void {
  res.writeHead(200, SSE_HEADERS)
  const last = events.length - 1
  for (let i = 0; i < last; i++) res.write(events[i])
  res.end(events[last])
}

/**
 * The same events `gapMs` apart (`?event-gap-ms=`), so that the first token comes well before the end and
 * a proxy that holds the stream back shows it. Stops when the client went away.
 */
function answerSpacedStream(res: ServerResponse, events: readonly Buffer[], gapMs: number): void {
  res.writeHead(200, SSE_HEADERS)
  const last = events.length - 1
  let next = 0
  const send = () => {
    if (res.destroyed) return
    if (next === last) {
      res.end(events[last])
      return
    }
    res.write(events[next++])
    setTimeout(send, gapMs)
  }
  send()
}

await listenAndReport(createServer({ keepAliveTimeout: 60_000 }, handle))
