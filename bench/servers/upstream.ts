import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { listenAndReport } from './shared.js'

// A fake OpenAI that does as little as an honest server can: it reads the whole request body, then answers
// precomputed bytes. Anything slower here would shrink the gateway's share of the measured time.

const COMPLETION_PATH = '/v1/chat/completions'
const CREATED = 1_735_689_600

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
        message: {
          role: 'assistant',
          content:
            'Hello! This is a fixed answer from the benchmark upstream. It is long enough to look like a ' +
            'real short completion, so that the proxies under test move a realistic number of bytes per ' +
            'request. Nothing in it depends on the request.',
          refusal: null,
        },
        logprobs: null,
        finish_reason: 'stop',
      },
    ],
    usage: { prompt_tokens: 12, completion_tokens: 48, total_tokens: 60 },
  }),
)

const CHUNK_COUNT = 20
const STREAM_EVENTS = Array.from({ length: CHUNK_COUNT }, (_, index) => sseEvent(index))
const STREAM_DONE = Buffer.from('data: [DONE]\n\n')

function sseEvent(index: number): Buffer {
  const last = index === CHUNK_COUNT - 1
  const chunk = {
    id: 'chatcmpl-bench0000000000000000000000000',
    object: 'chat.completion.chunk',
    created: CREATED,
    model: 'gpt-4o-mini-2024-07-18',
    system_fingerprint: 'fp_0000000000',
    choices: [
      {
        index: 0,
        delta: index === 0 ? { role: 'assistant', content: '' } : last ? {} : { content: ` word${index}` },
        logprobs: null,
        finish_reason: last ? 'stop' : null,
      },
    ],
  }
  return Buffer.from(`data: ${JSON.stringify(chunk)}\n\n`)
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'POST' || req.url !== COMPLETION_PATH) {
    res.writeHead(404, { 'content-type': 'text/plain', 'content-length': '9' }).end('not found')
    return
  }
  const chunks: Buffer[] = []
  req.on('data', (chunk: Buffer) => chunks.push(chunk))
  req.on('end', () => {
    if (Buffer.concat(chunks).includes('"stream":true')) answerStream(res)
    else answerJson(res)
  })
}

function answerJson(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': COMPLETION.length })
  res.end(COMPLETION)
}

/** Each event is its own write, as a provider emitting tokens would send them. */
function answerStream(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' })
  for (const event of STREAM_EVENTS) res.write(event)
  res.end(STREAM_DONE)
}

await listenAndReport(createServer({ keepAliveTimeout: 60_000 }, handle))
