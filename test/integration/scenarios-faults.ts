import { once } from 'node:events'
import type { ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import { inspect } from 'node:util'
import { gzipSync } from 'node:zlib'
import { type Dispatcher, request } from 'undici'
import { afterEach, beforeEach, describe, expect, it, onTestFailed, onTestFinished } from 'vitest'
import type { RequestEndEvent } from '../../src/events.js'
import type { Gateway, GatewayOptions } from '../../src/index.js'
import {
  anthropicDelta,
  anthropicMessage,
  anthropicStart,
  anthropicStream,
  cutAfter,
  type FaultHandler,
  type FaultServer,
  OPENAI_DONE,
  openaiChunk,
  openaiCompletion,
  openaiStream,
  pump,
  type RawConnection,
  type RawFaultServer,
  SSE_HEADERS,
  sendHeaders,
  startFaultServer,
  startRawServer,
  trickle,
  writeAsync,
  writeChunked,
  writeEvents,
  writeFixed,
} from '../helpers/fault-server.js'
import { send } from '../helpers/http.js'
import { eventually } from '../helpers/until.js'
import { uncaughtErrors } from '../setup/uncaught.js'
import { chat, type World } from './scenarios.js'

const CHAT = '/ai/openai/chat/completions'
const COMPAT = '/ai/compat/chat/completions'
const MiB = 1024 * 1024
const STORED_KEY = 'sk-stored-0123456789abcdefghijklmnop'
const STORED_ANTHROPIC_KEY = 'sk-ant-stored-0123456789abcdefghijklmnop'
const CALLER_KEY = 'sk-caller-0123456789abcdefghijklmnop'
/** The shortest run of a stored key that must never reach a caller, a log or an event. */
const KEY_RUN = 12

// ---------------------------------------------------------------------------------------------------------
// Test plumbing

/** A fault server closed when the test ends. */
async function faultServer(handler: FaultHandler): Promise<FaultServer> {
  const server = await startFaultServer(handler)
  onTestFinished(() => server.close())
  return server
}

async function rawServer(
  handler: (connection: RawConnection) => void | Promise<void>,
): Promise<RawFaultServer> {
  const server = await startRawServer(handler)
  onTestFinished(() => server.close())
  return server
}

/** Starts the host app with OpenAI and Anthropic pointed at `upstream`, each with a stored key. */
function startAt(world: World, upstream: { url: string }, options: GatewayOptions = {}): Promise<string> {
  return world.start({
    ...options,
    providers: {
      openai: { apiKey: STORED_KEY, baseURL: `${upstream.url}/v1` },
      anthropic: { apiKey: STORED_ANTHROPIC_KEY, baseURL: upstream.url },
    },
  })
}

/** POSTs JSON and resolves at the response headers; the body is the caller's to read (destroyed at the end). */
async function open(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Dispatcher.ResponseData> {
  const response = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  })
  onTestFinished(() => {
    response.body.destroy()
  })
  return response
}

interface Drained {
  bytes: Buffer
  /** The body ended normally. */
  ended: boolean
  /** Reading failed (the connection was cut). */
  error?: unknown
}

/** Reads a body until it ends, fails, or goes past `limit` bytes (then stops reading with `ended: false`). */
async function drain(body: AsyncIterable<Buffer>, limit = Number.POSITIVE_INFINITY): Promise<Drained> {
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of body) {
      chunks.push(chunk)
      size += chunk.length
      if (size > limit) return { bytes: Buffer.concat(chunks), ended: false }
    }
    return { bytes: Buffer.concat(chunks), ended: true }
  } catch (error) {
    return { bytes: Buffer.concat(chunks), ended: false, error }
  }
}

function tail(text: string, length = 300): string {
  return text.length <= length ? text : `…${text.slice(-length)}`
}

/**
 * The stream ends with one terminal error event in the OpenAI dialect carrying `code`, and no `[DONE]`.
 * Whatever came before it is not judged here (a cut may leave a partial line), only that the error event is
 * the very last thing and well formed.
 */
function expectTerminalError(text: string, code: number): void {
  expect(text.includes('[DONE]'), `a made-up [DONE] in ${tail(text)}`).toBe(false)
  const start = text.lastIndexOf('data: {"error"')
  expect(start, `no terminal error event at the end of: ${tail(text)}`).toBeGreaterThanOrEqual(0)
  const last = text.slice(start)
  expect(last.endsWith('\n\n'), `the terminal event is not the last, whole event: ${tail(last)}`).toBe(true)
  let parsed: unknown
  expect(
    () => {
      parsed = JSON.parse(last.slice('data: '.length, -2))
    },
    `the terminal event is not one JSON event: ${tail(last)}`,
  ).not.toThrow()
  expect(parsed).toMatchObject({ error: { code } })
}

/**
 * A failure with `code`, as a stream's terminal error event (headers already sent) or, when the failure
 * came before the first byte, as the gateway's 502 JSON error.
 */
function expectFailure(status: number, text: string, code: number): void {
  if (status === 200) {
    expectTerminalError(text, code)
    return
  }
  expect(status).toBe(502)
  expect(JSON.parse(text)).toMatchObject({ error: [{ code }], name: 'AiGatewayError' })
}

/** The host app itself still answers: a plain GET to the mount root reaches the host's own handler. */
async function expectHostAlive(url: string): Promise<void> {
  const res = await send(`${url}/ai/`)
  expect(res.status).toBe(200)
  expect(res.text).toMatch(/^host:/)
}

/** Neither the key, nor any run of 12 or more of its first or last characters. */
function expectNoKey(text: string, key: string, where: string): void {
  expect(text.includes(key), `${where} holds the stored key`).toBe(false)
  const prefix = key.slice(0, KEY_RUN)
  const suffix = key.slice(-KEY_RUN)
  expect(text.includes(prefix), `${where} holds the key's first ${KEY_RUN} characters '${prefix}'`).toBe(
    false,
  )
  expect(text.includes(suffix), `${where} holds the key's last ${KEY_RUN} characters '${suffix}'`).toBe(false)
}

/** OpenAI's way of masking a key in its 401s: a 14-character prefix, stars, the last 4. */
function masked(key: string): string {
  return `${key.slice(0, 14)}${'*'.repeat(key.length - 18)}${key.slice(-4)}`
}

function serialize(value: unknown): string {
  let json: string
  try {
    json = JSON.stringify(value, (_key, field: unknown) =>
      field instanceof Error ? { name: field.name, message: field.message, stack: field.stack } : field,
    )
  } catch {
    json = ''
  }
  const shown = inspect(value, {
    depth: 10,
    breakLength: Number.POSITIVE_INFINITY,
    maxArrayLength: Number.POSITIVE_INFINITY,
    maxStringLength: Number.POSITIVE_INFINITY,
  })
  return `${json} ${shown}`
}

/** Every payload of the gateway's upstream, request:end and error events, serialised as they come. */
function recordEvents(gateway: Gateway): string[] {
  const seen: string[] = []
  const names = ['upstream:request', 'upstream:response', 'upstream:retry', 'request:end', 'error'] as const
  for (const name of names)
    gateway.events.on(name, (payload: unknown) => seen.push(`${name} ${serialize(payload)}`))
  return seen
}

function nextRequestEnd(gateway: Gateway): Promise<RequestEndEvent> {
  return new Promise((resolve) => gateway.events.once('request:end', resolve))
}

/** Waits for the request's log record to be written, then returns it with the whole store's listing. */
async function loggedText(gateway: Gateway, id: string | undefined): Promise<string> {
  expect(id, 'cf-aig-log-id').toBeDefined()
  const store = gateway.logs!
  // Asked again until it is there, with no deadline but the test's own.
  const record = await eventually(async () => {
    await gateway.flushLogs()
    return store.get(id!)
  })
  const page = await store.list({ limit: 1000, includeBodies: true })
  return `${JSON.stringify(record)}\n${JSON.stringify(page)}`
}

/** Once the request ended: the key is in neither its log record nor any event the gateway emitted. */
async function expectKeptOut(
  gateway: Gateway,
  key: string,
  logId: string | undefined,
  events: readonly string[],
  ended: Promise<unknown>,
): Promise<void> {
  await ended
  expectNoKey(await loggedText(gateway, logId), key, 'the log')
  expectNoKey(events.join('\n'), key, 'the events')
}

/**
 * Names what the test is waiting for at each point, printed if it fails: a gateway that hangs shows up as a
 * test timeout, and this says where it hung.
 */
function stages(detail: () => string = () => ''): (name: string) => void {
  let current = 'starting'
  onTestFailed(() => {
    console.error(`fault test failed or timed out while: ${current} ${detail()}`)
  })
  return (name) => {
    current = name
  }
}

/** Lets queued callbacks (nextTick, setImmediate) run, so errors they raise surface before asserting. */
async function settle(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve))
}

interface RawClient {
  readonly socket: Socket
  received(): Buffer
  readonly closed: Promise<void>
  /** Resolves once `done(received)` holds (`closed: false`) or the connection closed (`closed: true`). */
  until(done: (bytes: Buffer) => boolean): Promise<{ closed: boolean }>
}

/**
 * A client on a bare socket: one HTTP/1.1 POST (keep-alive), then every byte that comes back is kept. With
 * `read: false` the socket is paused at once and never read: a client that stopped reading.
 */
async function rawPost(
  url: string,
  path: string,
  body: unknown,
  options: { read?: boolean } = {},
): Promise<RawClient> {
  const { hostname, port, host } = new URL(url)
  const socket = connect(Number(port), hostname)
  socket.on('error', () => {})
  onTestFinished(() => {
    socket.destroy()
  })
  await once(socket, 'connect')
  const chunks: Buffer[] = []
  const received = () => Buffer.concat(chunks)
  let isClosed = false
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      isClosed = true
      resolve()
    }),
  )
  const listeners = new Set<() => void>()
  if (options.read !== false) {
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      for (const listener of listeners) listener()
    })
  }
  const json = JSON.stringify(body)
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`,
  )
  if (options.read === false) socket.pause()
  return {
    socket,
    received,
    closed,
    until(done) {
      return new Promise((resolve) => {
        const check = () => {
          if (!done(received())) return
          listeners.delete(check)
          resolve({ closed: isClosed })
        }
        listeners.add(check)
        closed.then(() => {
          listeners.delete(check)
          resolve({ closed: true })
        })
        check()
      })
    },
  }
}

function splitResponse(bytes: Buffer): { head: string; body: Buffer } {
  const end = bytes.indexOf('\r\n\r\n')
  if (end === -1) return { head: bytes.toString('latin1'), body: Buffer.alloc(0) }
  return { head: bytes.subarray(0, end).toString('latin1'), body: bytes.subarray(end + 4) }
}

// ---------------------------------------------------------------------------------------------------------
// Upstream answers

const OPENAI_FINAL_ERROR = '{"error":{"message":"final attempt failed","type":"server_error","code":null}}'
const ANTHROPIC_FINAL_ERROR =
  '{"type":"error","error":{"type":"overloaded_error","message":"final attempt failed"}}'

const DISCARDED_BODIES = [
  'chunked, still arriving',
  'fixed length',
  'declared 2 MiB, still arriving',
  'an event stream, still arriving',
] as const
type DiscardedBody = (typeof DISCARDED_BODIES)[number]

/** A 503 the gateway is expected to give up on (retry or fall back), with the body shape under test. */
async function writeDiscarded(res: ServerResponse, kind: DiscardedBody): Promise<void> {
  switch (kind) {
    case 'chunked, still arriving':
      // One chunk, then nothing: the body never finishes.
      return writeChunked(res, 503, ['{"error":{"message":"overloaded, please'], { end: false })
    case 'fixed length':
      return writeFixed(res, 503, '{"error":{"message":"overloaded","type":"server_error","code":null}}')
    case 'declared 2 MiB, still arriving':
      res.writeHead(503, { 'content-type': 'application/json', 'content-length': String(2 * MiB) })
      return writeAsync(res, `{"error":{"message":"${'o'.repeat(64 * 1024)}`)
    case 'an event stream, still arriving':
      res.writeHead(503, SSE_HEADERS)
      return writeEvents(res, [openaiChunk('busy, come back later')], { end: false })
  }
}

/** Each discarded attempt's connection closed, or (whole bodies) its response was written to its end. */
async function expectReleased(fault: FaultServer, kind: DiscardedBody, indexes: number[]): Promise<void> {
  await Promise.all(
    indexes.map((index) => (kind === 'fixed length' ? fault.settled(index) : fault.connectionClosed(index))),
  )
}

function openai401(quoted: string): string {
  return JSON.stringify({
    error: {
      message: `Incorrect API key provided: ${quoted}. You can find your API key at https://platform.openai.com/account/api-keys.`,
      type: 'invalid_request_error',
      param: null,
      code: 'invalid_api_key',
    },
  })
}

function anthropic401(quoted: string): string {
  return JSON.stringify({
    type: 'error',
    error: { type: 'authentication_error', message: `invalid x-api-key: ${quoted}` },
  })
}

/** Two pieces split in the middle of `within`, so a scrubber must see across chunk boundaries. */
function splitInside(text: string, within: string): [string, string] {
  const at = text.indexOf(within) + Math.floor(within.length / 2)
  return [text.slice(0, at), text.slice(at)]
}

const anthropicChat = (extra: Record<string, unknown> = {}) => ({
  model: 'anthropic/claude-x',
  max_tokens: 16,
  messages: [{ role: 'user', content: 'hi' }],
  ...extra,
})

/**
 * Streams the gateway rewrites as it reads them: it waits for the client with nothing to read, so only the
 * body it reads can tell it that the client was given up on.
 */
const WRAPPED_STREAMS = [
  { wrapper: 'translated', path: COMPAT, body: anthropicChat({ stream: true }), options: {} },
  {
    wrapper: 'resumable',
    path: COMPAT,
    body: chat('hi', { model: 'openai/gpt-4o-mini', models: ['openai/gpt-4o'], stream: true }),
    options: {},
  },
  {
    wrapper: 'guarded',
    path: CHAT,
    body: chat('hi', { stream: true }),
    options: { dlp: { policies: [{ id: 'mask-pii', profiles: ['pii'], action: 'redact' }] } },
  },
] satisfies { wrapper: string; path: string; body: unknown; options: GatewayOptions }[]

// ---------------------------------------------------------------------------------------------------------

/**
 * Faults from raw `node:http` and `node:net` upstreams: discarded bodies, stored keys quoted back, resets,
 * stalls, oversized and compressed answers, clients that stop reading. The same table for every framework.
 */
export function faultScenarios(world: World): void {
  describe('faults', () => {
    // Anything thrown outside a request's own promise chain (an 'error' event nobody listens to on a
    // discarded body, say) would take a real host down. The process guard (test/setup) fails the test it
    // happened in; `expectNoCrash` checks at a point of the test's choosing.
    let seenBefore = 0
    beforeEach(() => {
      seenBefore = uncaughtErrors().length
    })
    afterEach(async () => {
      await settle()
    })
    async function expectNoCrash(): Promise<void> {
      await settle()
      expect(
        uncaughtErrors()
          .slice(seenBefore)
          .map((error) => inspect(error)),
        'uncaught errors (the host would crash)',
      ).toEqual([])
    }

    // 1. Discarded answers ------------------------------------------------------------------------------

    for (const kind of DISCARDED_BODIES) {
      it(`faults: passthrough retries discard a 503 whose body is ${kind} without crashing the host`, async () => {
        const fault = await faultServer((req, res) => {
          // Three attempts per request: two discarded 503s, then the answer (request 1: 200, request 2: 503).
          if (req.index % 3 < 2) return writeDiscarded(res, kind)
          if (req.index < 3) return writeFixed(res, 200, openaiCompletion('third time lucky'))
          return writeFixed(res, 503, OPENAI_FINAL_ERROR)
        })
        const stage = stages()
        const url = await startAt(world, fault)
        const headers = { 'cf-aig-max-attempts': '3', 'cf-aig-retry-delay': '0' }
        stage(
          `request 1: the answer after two discarded 503s (upstream requests so far: ${fault.requests.length})`,
        )
        const ok = await send(`${url}${CHAT}`, { body: chat('retry me'), headers })
        expect(ok.status).toBe(200)
        expect(ok.json()).toMatchObject({ choices: [{ message: { content: 'third time lucky' } }] })
        stage('request 2: the last 503 after two discarded ones')
        const failed = await send(`${url}${CHAT}`, { body: chat('retry me'), headers })
        expect(failed.status).toBe(503)
        expect(failed.text).toBe(OPENAI_FINAL_ERROR)
        expect(fault.requests).toHaveLength(6)
        stage('the discarded attempts released (connection closed, or the response written whole)')
        await expectReleased(fault, kind, [0, 1, 3, 4])
        await expectNoCrash()
        await expectHostAlive(url)
      })

      it(`faults: universal fallback discards a 503 whose body is ${kind} without crashing the host`, async () => {
        const fault = await faultServer((req, res) => {
          if (req.index % 2 === 0) return writeDiscarded(res, kind)
          if (req.index === 1) return writeFixed(res, 200, openaiCompletion('from step one'))
          return writeFixed(res, 503, OPENAI_FINAL_ERROR)
        })
        const url = await startAt(world, fault)
        const step = (text: string) => ({
          provider: 'openai',
          endpoint: 'chat/completions',
          headers: {},
          query: chat(text),
        })
        const stage = stages(() => `(upstream requests: ${fault.requests.length})`)
        stage('request 1: the answer of step 1 after a discarded step 0')
        const ok = await send(`${url}/ai`, { body: [step('first'), step('second')] })
        expect(ok.status).toBe(200)
        expect(ok.headers['cf-aig-step']).toBe('1')
        expect(ok.json()).toMatchObject({ choices: [{ message: { content: 'from step one' } }] })
        stage("request 2: step 1's 503 after a discarded step 0")
        const failed = await send(`${url}/ai`, { body: [step('first'), step('second')] })
        expect(failed.status).toBe(503)
        expect(failed.headers['cf-aig-step']).toBe('1')
        expect(failed.text).toBe(OPENAI_FINAL_ERROR)
        expect(fault.requests.map((req) => req.url)).toEqual(Array(4).fill('/v1/chat/completions'))
        stage('the discarded steps released (connection closed, or the response written whole)')
        await expectReleased(fault, kind, [0, 2])
        await expectNoCrash()
        await expectHostAlive(url)
      })

      it(`faults: compat fallback (universal 'compat' steps) discards a 503 whose body is ${kind} without crashing the host`, async () => {
        const fault = await faultServer((req, res) => {
          if (req.index % 2 === 0) return writeDiscarded(res, kind)
          if (req.index === 1) return writeFixed(res, 200, anthropicMessage('fallback answer'))
          return writeFixed(res, 503, ANTHROPIC_FINAL_ERROR)
        })
        const url = await startAt(world, fault)
        const step = { provider: 'compat', endpoint: 'chat/completions', headers: {}, query: anthropicChat() }
        const stage = stages(() => `(upstream requests: ${fault.requests.length})`)
        stage('request 1: the answer of step 1 after a discarded step 0')
        const ok = await send(`${url}/ai`, { body: [step, step] })
        expect(ok.status).toBe(200)
        expect(ok.headers['cf-aig-step']).toBe('1')
        expect(ok.json()).toMatchObject({
          object: 'chat.completion',
          choices: [{ message: { content: 'fallback answer' } }],
        })
        stage("request 2: step 1's 503 after a discarded step 0")
        const failed = await send(`${url}/ai`, { body: [step, step] })
        expect(failed.status).toBe(503)
        expect(failed.headers['cf-aig-step']).toBe('1')
        expect(failed.json()).toMatchObject({ error: { message: 'final attempt failed' } })
        expect(fault.requests.map((req) => req.url)).toEqual(Array(4).fill('/v1/messages'))
        stage('the discarded steps released (connection closed, or the response written whole)')
        await expectReleased(fault, kind, [0, 2])
        await expectNoCrash()
        await expectHostAlive(url)
      })
    }

    // 2. Stored keys never reach callers ------------------------------------------------------------------

    for (const quoting of ['whole', 'masked'] as const) {
      for (const framing of ['chunked', 'fixed length'] as const) {
        it(`faults: a stored key quoted ${quoting} in a ${framing} 401 reaches neither the caller, the log nor any event`, async () => {
          const quoted = quoting === 'whole' ? STORED_KEY : masked(STORED_KEY)
          const body = openai401(quoted)
          const fault = await faultServer((_req, res) =>
            framing === 'chunked'
              ? writeChunked(res, 401, splitInside(body, quoted))
              : writeFixed(res, 401, body),
          )
          const url = await startAt(world, fault)
          const gateway = world.gateway!
          const seen = recordEvents(gateway)
          const ended = nextRequestEnd(gateway)
          const res = await send(`${url}${CHAT}`, { body: chat('hi') })
          expect(fault.requests[0]?.headers.authorization).toBe(`Bearer ${STORED_KEY}`)
          expect(res.status).toBe(401)
          expectNoKey(res.text, STORED_KEY, 'the answer')
          expect(res.text).toContain('[REDACTED]')
          expect(res.json()).toMatchObject({
            error: { type: 'invalid_request_error', code: 'invalid_api_key' },
          })
          await expectKeptOut(gateway, STORED_KEY, res.headers['cf-aig-log-id'], seen, ended)
        })
      }
    }

    it('faults: a stored key in an SSE event (split across writes) reaches neither the caller, the log nor any event', async () => {
      const event = openaiChunk(`your key is ${STORED_KEY}, keep it safe`)
      const fault = await faultServer((_req, res) =>
        writeEvents(res, [...splitInside(event, STORED_KEY), openaiChunk('', 'stop'), OPENAI_DONE]),
      )
      const url = await startAt(world, fault)
      const gateway = world.gateway!
      const seen = recordEvents(gateway)
      const ended = nextRequestEnd(gateway)
      const res = await send(`${url}${CHAT}`, { body: chat('hi', { stream: true }) })
      expect(res.status).toBe(200)
      expectNoKey(res.text, STORED_KEY, 'the stream')
      expect(res.text).toContain('[REDACTED]')
      expect(res.text.endsWith(OPENAI_DONE), `the stream lost its end: ${tail(res.text)}`).toBe(true)
      await expectKeptOut(gateway, STORED_KEY, res.headers['cf-aig-log-id'], seen, ended)
    })

    for (const [quoting, framing] of [
      ['whole', 'chunked'],
      ['masked', 'fixed length'],
    ] as const) {
      it(`faults: compat → Anthropic: a stored key quoted ${quoting} in a ${framing} 401 reaches neither the caller, the log nor any event`, async () => {
        const quoted = quoting === 'whole' ? STORED_ANTHROPIC_KEY : masked(STORED_ANTHROPIC_KEY)
        const body = anthropic401(quoted)
        const fault = await faultServer((_req, res) =>
          framing === 'chunked'
            ? writeChunked(res, 401, splitInside(body, quoted))
            : writeFixed(res, 401, body),
        )
        const url = await startAt(world, fault)
        const gateway = world.gateway!
        const seen = recordEvents(gateway)
        const ended = nextRequestEnd(gateway)
        const res = await send(`${url}${COMPAT}`, { body: anthropicChat() })
        expect(fault.requests[0]?.url).toBe('/v1/messages')
        expect(fault.requests[0]?.headers['x-api-key']).toBe(STORED_ANTHROPIC_KEY)
        expect(res.status).toBe(401)
        expectNoKey(res.text, STORED_ANTHROPIC_KEY, 'the answer')
        expect(res.text).toContain('[REDACTED]')
        expect(res.json()).toMatchObject({ error: { type: 'authentication_error' } })
        await expectKeptOut(gateway, STORED_ANTHROPIC_KEY, res.headers['cf-aig-log-id'], seen, ended)
      })
    }

    it("faults: a caller's own key echoed back by the provider is left as it is", async () => {
      const fault = await faultServer((req, res) => {
        const key = String(req.headers.authorization ?? '').replace(/^Bearer /, '')
        return writeChunked(res, 401, splitInside(openai401(key), key))
      })
      const url = await startAt(world, fault)
      const res = await send(`${url}${CHAT}`, {
        body: chat('hi'),
        headers: { authorization: `Bearer ${CALLER_KEY}` },
      })
      expect(fault.requests[0]?.headers.authorization).toBe(`Bearer ${CALLER_KEY}`)
      expect(res.status).toBe(401)
      expect(res.text).toBe(openai401(CALLER_KEY))
    })

    it("faults: a stored key quoted in the answer's headers (www-authenticate, a redirect's location, the provider's own) reaches no caller", async () => {
      const fault = await faultServer((req, res) => {
        if (req.index === 0) {
          return writeFixed(res, 401, openai401('nope'), {
            'content-type': 'application/json',
            'www-authenticate': `Bearer error="invalid_token", error_description="bad key ${STORED_KEY}"`,
            'x-echo-authorization': `Bearer ${STORED_KEY}`,
          })
        }
        return writeFixed(res, 307, '', {
          location: `https://elsewhere.example/v1/chat?api_key=${STORED_KEY}`,
        })
      })
      const url = await startAt(world, fault)
      const refused = await send(`${url}${CHAT}`, { body: chat('hi') })
      expect(refused.status).toBe(401)
      expect(refused.headers['www-authenticate']).toBe(
        'Bearer error="invalid_token", error_description="bad key [REDACTED]"',
      )
      expect(refused.headers['x-echo-authorization']).toBe('Bearer [REDACTED]')
      const moved = await send(`${url}${CHAT}`, { body: chat('hi') })
      expect(moved.status).toBe(307)
      expect(moved.headers.location).toBe('https://elsewhere.example/v1/chat?api_key=[REDACTED]')
    })

    for (const [surface, path, body, inBand] of [
      [
        'passthrough',
        CHAT,
        chat('hi', { stream: true }),
        [openaiChunk(''), `data: ${openai401(STORED_KEY)}\n\n`],
      ],
      [
        'compat → Anthropic',
        COMPAT,
        anthropicChat({ stream: true }),
        [...anthropicStart(), `event: error\ndata: ${anthropic401(STORED_ANTHROPIC_KEY)}\n\n`],
      ],
    ] as const) {
      it(`faults: ${surface}: a stored key in an in-band error before the commit reaches neither onError (the error's cause included) nor any event`, async () => {
        const fault = await faultServer((_req, res) => writeEvents(res, inBand))
        const seenByOnError: unknown[] = []
        const url = await startAt(world, fault, { onError: (error) => void seenByOnError.push(error) })
        const gateway = world.gateway!
        const seen = recordEvents(gateway)
        const ended = nextRequestEnd(gateway)
        const res = await send(`${url}${path}`, { body })
        expect(res.status).toBe(502)
        expect(seenByOnError).toMatchObject([
          { key: 'UPSTREAM_STREAM_ERROR', cause: { type: expect.any(String) } },
        ])
        expectNoKey(serialize(seenByOnError), STORED_KEY, 'the error onError saw')
        expectNoKey(serialize(seenByOnError), STORED_ANTHROPIC_KEY, 'the error onError saw')
        await expectKeptOut(gateway, STORED_KEY, res.headers['cf-aig-log-id'], seen, ended)
        expectNoKey(seen.join('\n'), STORED_ANTHROPIC_KEY, 'the events')
      })
    }

    it("faults: a stored key in the bytes undici's parser gave up on reaches neither onError nor any event", async () => {
      const fault = await rawServer(async (connection) => {
        await connection.request
        connection.socket.end(`HTTP/1.1 401 Unauthorized\r\nx-bad\x01: ${STORED_KEY}\r\n\r\n`)
      })
      const seenByOnError: unknown[] = []
      const url = await startAt(world, fault, { onError: (error) => void seenByOnError.push(error) })
      const gateway = world.gateway!
      const seen = recordEvents(gateway)
      const ended = nextRequestEnd(gateway)
      const res = await send(`${url}${CHAT}`, { body: chat('hi') })
      expect(res.status).toBe(502)
      expect(seenByOnError).toMatchObject([
        { key: 'INVALID_PROVIDER_RESPONSE', cause: { data: expect.any(String) } },
      ])
      expectNoKey(serialize(seenByOnError), STORED_KEY, 'the error onError saw')
      await expectKeptOut(gateway, STORED_KEY, res.headers['cf-aig-log-id'], seen, ended)
    })

    it('faults: a stored key in an answer coded twice (gzip, gzip) is decoded and scrubbed', async () => {
      const zipped = gzipSync(gzipSync(openai401(STORED_KEY)))
      const fault = await faultServer((_req, res) =>
        writeFixed(res, 401, zipped, {
          'content-type': 'application/json',
          'content-encoding': 'gzip, gzip',
        }),
      )
      const url = await startAt(world, fault)
      const res = await send(`${url}${CHAT}`, { body: chat('hi') })
      expect(res.status).toBe(401)
      expect(res.headers['content-encoding']).toBeUndefined()
      expect(res.json()).toMatchObject({ error: { code: 'invalid_api_key' } })
      expectNoKey(res.text, STORED_KEY, 'the answer')
      expect(res.text).toContain('[REDACTED]')
    })

    it('faults: an answer in a coding the gateway cannot read is refused (502, 2115) when a stored key may be quoted in it', async () => {
      const opaque = Buffer.from(`zstd-ish bytes quoting ${STORED_KEY}`)
      const fault = await faultServer((_req, res) =>
        writeFixed(res, 401, opaque, {
          'content-type': 'application/json',
          'content-encoding': 'gzip, zstd',
        }),
      )
      const url = await startAt(world, fault)
      const res = await send(`${url}${CHAT}`, { body: chat('hi') })
      expect(res.status).toBe(502)
      expect(res.json()).toMatchObject({ error: [{ code: 2115 }], name: 'AiGatewayError' })
      expectNoKey(res.text, STORED_KEY, 'the answer')
    })

    // 3. Resets -----------------------------------------------------------------------------------------

    it('faults: a connection reset before any response byte is a 502 gateway error', async () => {
      const fault = await rawServer((connection) => {
        connection.socket.resetAndDestroy()
      })
      const url = await startAt(world, fault)
      const res = await send(`${url}${CHAT}`, { body: chat('hi') })
      expect(res.status).toBe(502)
      const json = res.json() as { error: { code: number }[]; name: string }
      expect(json.name).toBe('AiGatewayError')
      expect([2108, 2005]).toContain(json.error[0]?.code)
    })

    it('faults: a connection closed after the request arrived, before headers, is a 502 gateway error', async () => {
      const fault = await faultServer((_req, _res, socket) => {
        socket.destroy()
      })
      const url = await startAt(world, fault)
      const res = await send(`${url}${CHAT}`, { body: chat('hi') })
      expect(fault.requests).toHaveLength(1)
      expect(res.status).toBe(502)
      const json = res.json() as { error: { code: number }[]; name: string }
      expect(json.name).toBe('AiGatewayError')
      expect([2108, 2005]).toContain(json.error[0]?.code)
    })

    it('faults: a connection cut in the middle of the response headers is a 502 gateway error', async () => {
      const fault = await rawServer(async (connection) => {
        await connection.request
        connection.socket.write('HTTP/1.1 200 OK\r\nContent-', () => connection.socket.destroy())
      })
      const url = await startAt(world, fault)
      const res = await send(`${url}${CHAT}`, { body: chat('hi') })
      expect(res.status).toBe(502)
      expect(res.json()).toMatchObject({ error: [{ code: expect.any(Number) }], name: 'AiGatewayError' })
    })

    it('faults: an answer that arrives but cannot be read (a malformed status line, a corrupt gzip body) is 502 with code 2115, not 2005', async () => {
      const malformed = await rawServer(async (connection) => {
        await connection.request
        connection.socket.end('HTTP/1.1 2OO OK\r\ncontent-length: 2\r\n\r\n{}')
      })
      const garbled = await faultServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' })
        res.end(Buffer.from('1f8b0800000000000003ffffffffffffffff', 'hex'))
      })
      for (const fault of [malformed, garbled]) {
        const url = await startAt(world, fault)
        const res = await send(`${url}${CHAT}`, { body: chat('hi') })
        expect(res.status).toBe(502)
        expect(res.json()).toMatchObject({ error: [{ code: 2115 }], name: 'AiGatewayError' })
      }
    })

    it('faults: a fixed-length JSON answer cut mid-body is a clean 502, with nothing of the partial body', async () => {
      const partial = openaiCompletion('partial answer').replace('chatcmpl-fault', 'chatcmpl-partial')
      const fault = await faultServer(async (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '200' })
        await cutAfter(res, [partial.slice(0, 50)])
      })
      const url = await startAt(world, fault)
      const res = await send(`${url}${CHAT}`, { body: chat('hi') })
      expect(res.status).toBe(502)
      expect(res.text).not.toContain('chatcmpl-partial')
      const json = res.json() as { error: { code: number }[]; name: string }
      expect(json.name).toBe('AiGatewayError')
      expect([2108, 2005]).toContain(json.error[0]?.code)
    })

    it('faults: an SSE stream cut after two events ends with a terminal 2108 event, never [DONE]', async () => {
      const events = [openaiChunk('one'), openaiChunk(' two')]
      const fault = await faultServer(async (_req, res) => {
        res.writeHead(200, SSE_HEADERS)
        await cutAfter(res, events)
      })
      const url = await startAt(world, fault)
      const res = await send(`${url}${CHAT}`, { body: chat('hi', { stream: true }) })
      expect(res.status).toBe(200)
      expect(res.text.startsWith(events.join('')), `the two events did not arrive: ${res.text}`).toBe(true)
      expectTerminalError(res.text.slice(events.join('').length), 2108)
      // The record says what the client was told, though the answer began as a 200.
      const record = await eventually(async () => {
        await world.gateway!.flushLogs()
        return world.gateway!.logs!.get(res.headers['cf-aig-log-id']!)
      })
      expect(record).toMatchObject({
        statusCode: 200,
        success: false,
        errorCode: 2108,
        outcome: 'upstream_error',
      })
    })

    it('faults: compat: an Anthropic stream cut after a content_block_delta ends with an OpenAI terminal error event, never [DONE]', async () => {
      const fault = await faultServer(async (_req, res) => {
        res.writeHead(200, SSE_HEADERS)
        await cutAfter(res, [...anthropicStart(), anthropicDelta('Hel')])
      })
      const url = await startAt(world, fault)
      const res = await send(`${url}${COMPAT}`, { body: anthropicChat({ stream: true }) })
      expect(fault.requests[0]?.url).toBe('/v1/messages')
      expect(res.status).toBe(200)
      const events = res.text.split('\n\n').filter(Boolean)
      expect(
        events.some((event) => event.includes('"content":"Hel"')),
        res.text,
      ).toBe(true)
      expect(res.text).not.toContain('[DONE]')
      const last = events.at(-1) ?? ''
      expect(last.startsWith('data: '), `last event: ${last}`).toBe(true)
      expect(JSON.parse(last.slice('data: '.length))).toMatchObject({
        error: { message: expect.any(String), code: expect.any(Number) },
      })
      expect(res.text.endsWith('\n\n')).toBe(true)
    })

    it('faults: a Gemini stream that only says the prompt was blocked is a whole answer, on compat (content_filter) and on passthrough', async () => {
      // Gemini answers a prompt it refuses with one chunk: no candidate, no finishReason.
      const blocked = `data: ${JSON.stringify({
        promptFeedback: { blockReason: 'PROHIBITED_CONTENT' },
        usageMetadata: { promptTokenCount: 5, totalTokenCount: 5 },
      })}\r\n\r\n`
      const fault = await faultServer((_req, res) => writeEvents(res, [blocked]))
      const url = await world.start({
        providers: { 'google-ai-studio': { apiKey: 'goog-stored', baseURL: fault.url } },
      })
      const compat = await send(`${url}${COMPAT}`, {
        body: {
          model: 'google-ai-studio/gemini-2.5-flash',
          messages: [{ role: 'user', content: 'hi' }],
          stream: true,
        },
      })
      expect(compat.status, compat.text).toBe(200)
      const events = compat.text.split('\n\n').filter(Boolean)
      expect(events.at(-1)).toBe('data: [DONE]')
      expect(JSON.parse(events.at(-2)!.slice('data: '.length))).toMatchObject({
        choices: [{ delta: {}, finish_reason: 'content_filter' }],
      })
      const native = await send(
        `${url}/ai/google-ai-studio/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse`,
        { body: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] } },
      )
      expect(native.status, native.text).toBe(200)
      expect(native.text).toBe(blocked)
    })

    // 4. Stalls and trickles ----------------------------------------------------------------------------

    it('faults: a stream that stalls after one event ends with a terminal 2106 event and the upstream is cancelled', async () => {
      const first = openaiChunk('only')
      const fault = await faultServer((_req, res) => writeEvents(res, [first], { end: false }))
      const url = await startAt(world, fault, { timeouts: { idleMs: 300 } })
      const res = await send(`${url}${CHAT}`, { body: chat('hi', { stream: true }) })
      expect(res.status).toBe(200)
      expect(res.text.startsWith(first)).toBe(true)
      expectTerminalError(res.text.slice(first.length), 2106)
      await fault.connectionClosed(0)
    })

    it('faults: a stream that trickles a byte at a time forever ends at the total deadline with 2107 and the upstream is cancelled', async () => {
      // One whole event begins the answer, so the stream is committed; then a byte at a time.
      const fault = await faultServer(async (_req, res) => {
        await writeEvents(res, [openaiChunk('start')], { end: false })
        await trickle(res, openaiChunk('tick'), 20)
      })
      const url = await startAt(world, fault, { timeouts: { totalMs: 1500, idleMs: 1000 } })
      const response = await open(`${url}${CHAT}`, chat('hi', { stream: true }))
      const read = await drain(response.body, MiB)
      expect(response.statusCode).toBe(200)
      expect(read.ended, 'the stream did not end').toBe(true)
      expectTerminalError(read.bytes.toString(), 2107)
      await fault.connectionClosed(0)
    })

    // 5. Long events and long streams -------------------------------------------------------------------

    it('faults: a 2 MiB event without a line end ends with code 2121 (maxEventBytes), cancels the upstream, and the host stays responsive', async () => {
      let sentSome: () => void = () => {}
      const started = new Promise<void>((resolve) => {
        sentSome = resolve
      })
      const fault = await faultServer(async (_req, res) => {
        sendHeaders(res, 200, SSE_HEADERS)
        await writeAsync(res, 'data: ')
        await pump(res, () => 'x'.repeat(64 * 1024), {
          total: 2 * MiB,
          end: false,
          onWrite: () => sentSome(),
        })
        // No line end and no end of the response: the event never completes.
      })
      const stage = stages()
      const url = await startAt(world, fault)
      const pending = open(`${url}${CHAT}`, chat('hi', { stream: true }))
      pending.catch(() => {})
      stage('the first bytes of the long event upstream')
      await started
      stage("the host's own answer to GET /ai/ while the long event streams")
      await expectHostAlive(url)
      stage('the response headers')
      const response = await pending
      stage('the end of the client stream (the gateway neither ended it nor forwarded past the cap)')
      const read = await drain(response.body, MiB + 256 * 1024)
      const text = read.bytes.toString()
      expect(read.ended, `the client got ${read.bytes.length} bytes of one event, and more coming`).toBe(true)
      expectFailure(response.statusCode, text, 2121)
      await fault.connectionClosed(0)
    })

    it('faults: a stream past maxStreamBytes ends with code 2121, cancels the upstream, and the host stays responsive', async () => {
      const fault = await faultServer(async (_req, res) => {
        sendHeaders(res, 200, SSE_HEADERS)
        await pump(res, (i) => openaiChunk(`piece ${i} `))
      })
      const stage = stages()
      const url = await startAt(world, fault, { maxStreamBytes: 65536 })
      const pending = open(`${url}${CHAT}`, chat('hi', { stream: true }))
      pending.catch(() => {})
      stage('the upstream request')
      await fault.request(0)
      stage("the host's own answer to GET /ai/ while the stream runs")
      await expectHostAlive(url)
      stage('the response headers')
      const response = await pending
      stage('the end of the client stream')
      const read = await drain(response.body, MiB)
      expect(read.ended, `the stream went on past maxStreamBytes (${read.bytes.length} bytes read)`).toBe(
        true,
      )
      expectFailure(response.statusCode, read.bytes.toString(), 2121)
      await fault.connectionClosed(0)
    })

    // 6. Compression ------------------------------------------------------------------------------------

    it('faults: a streamed chat goes upstream with accept-encoding: identity whatever the client accepts (passthrough)', async () => {
      const fault = await faultServer((_req, res) => writeEvents(res, openaiStream(['hi'])))
      const url = await startAt(world, fault)
      const res = await send(`${url}${CHAT}`, {
        body: chat('hi', { stream: true }),
        headers: { 'accept-encoding': 'gzip' },
      })
      expect(res.status).toBe(200)
      expect(fault.requests[0]?.headers['accept-encoding']).toBe('identity')
    })

    it('faults: a streamed chat goes upstream with accept-encoding: identity whatever the client accepts (compat → Anthropic)', async () => {
      const fault = await faultServer((_req, res) => writeEvents(res, anthropicStream(['hi'])))
      const url = await startAt(world, fault)
      const res = await send(`${url}${COMPAT}`, {
        body: anthropicChat({ stream: true }),
        headers: { 'accept-encoding': 'gzip' },
      })
      expect(res.status).toBe(200)
      expect(fault.requests[0]?.url).toBe('/v1/messages')
      expect(fault.requests[0]?.headers['accept-encoding']).toBe('identity')
    })

    it('faults: a gzip-encoded SSE answer is decoded, and read like any other stream; a coding the gateway cannot read passes untouched when the caller sent its own key', async () => {
      const text = openaiStream(['zipped', ' stream']).join('')
      const zipped = gzipSync(text)
      const opaque = Buffer.from('not a coding the gateway reads: \x00\x01\x02 data: [DONE]')
      const fault = await faultServer(async (req, res) => {
        const gzip = !req.url?.includes('opaque')
        res.writeHead(200, { ...SSE_HEADERS, 'content-encoding': gzip ? 'gzip' : 'zstd' })
        const bytes = gzip ? zipped : opaque
        const half = Math.floor(bytes.length / 2)
        await writeAsync(res, bytes.subarray(0, half))
        await writeAsync(res, bytes.subarray(half))
        res.end()
      })
      const url = await startAt(world, fault)
      // With and without the client's own stream_options (without it the gateway asks for usage itself).
      for (const body of [
        chat('zip', { stream: true }),
        chat('zip', { stream: true, stream_options: { include_usage: true } }),
      ]) {
        const response = await open(`${url}${CHAT}`, body, { 'accept-encoding': 'gzip' })
        const read = await drain(response.body)
        expect(response.statusCode).toBe(200)
        expect(response.headers['content-encoding']).toBeUndefined()
        expect(read.ended).toBe(true)
        expect(read.bytes.toString(), 'the decoded events, nothing appended').toBe(text)
      }
      // With the caller's own key: no key of the gateway's can be in the answer.
      const response = await open(`${url}/ai/openai/chat/completions?opaque`, chat('zip', { stream: true }), {
        authorization: `Bearer ${CALLER_KEY}`,
      })
      const read = await drain(response.body)
      expect(response.headers['content-encoding']).toBe('zstd')
      expect(read.bytes.equals(opaque), 'bytes in a coding the gateway does not read are not altered').toBe(
        true,
      )
    })

    it('faults: a stream whose lines end in CRLF, usage chunk and all in one write, reaches the client whole without the usage the gateway asked for, and its tokens are logged', async () => {
      const crlf = (event: string) => event.replaceAll('\n', '\r\n')
      const usageNull = (event: string) => event.replace('}]}', '}],"usage":null}')
      const usage = { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 }
      const usageChunk = `data: ${JSON.stringify({ id: 'chatcmpl-fault', object: 'chat.completion.chunk', choices: [], usage })}\n\n`
      const events = openaiStream(['line', ' ends'])
      const fault = await faultServer(async (_req, res) => {
        const answer = [...events.slice(0, -1).map(usageNull), usageChunk, OPENAI_DONE]
        res.writeHead(200, SSE_HEADERS)
        res.end(answer.map(crlf).join(''))
      })
      const url = await startAt(world, fault)
      const response = await open(`${url}${CHAT}`, chat('crlf', { stream: true }))
      const read = await drain(response.body)
      expect(
        fault.requests.map((request) => (request.json() as Record<string, unknown>).stream_options),
      ).toEqual([{ include_usage: true }])
      expect(read.ended).toBe(true)
      expect(read.bytes.toString(), 'every event and [DONE], as the provider would send them unasked').toBe(
        events.map(crlf).join(''),
      )
      const logged = await loggedText(world.gateway!, String(response.headers['cf-aig-log-id']))
      expect(JSON.parse(logged.split('\n')[0]!)).toMatchObject({ tokensIn: 7, tokensOut: 3 })
    })

    it('faults: a JSON answer whose usage follows 20 KB of text that is not all ASCII, sent in many writes, has its tokens logged, its key far from its comma or not, and a nested usage after it is not taken for its own', async () => {
      const content = 'Grüße, 世界: “quoted” — '.repeat(700)
      const answer = (usage: Record<string, number>, extra: Record<string, unknown> = {}) => ({
        id: 'chatcmpl-wide',
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
        usage,
        ...extra,
      })
      const bodies = [
        JSON.stringify(answer({ prompt_tokens: 11, completion_tokens: 5, total_tokens: 16 })),
        // Pretty-printed, white space between the comma and the key: read back over in the bytes.
        JSON.stringify(answer({ prompt_tokens: 12, completion_tokens: 6, total_tokens: 18 })).replace(
          ',"usage":',
          `,${' '.repeat(100)}"usage":`,
        ),
        // The last `"usage"` is a nested key whose tail does not parse alone.
        JSON.stringify(
          answer({ prompt_tokens: 13, completion_tokens: 7, total_tokens: 20 }, { x: { usage: 1 } }),
        ),
      ]
      const fault = await faultServer(async (request, res) => {
        const body = Buffer.from(bodies[request.index]!)
        // Cut every 4 KiB, inside characters too: the gateway gets the answer in several reads.
        const pieces = Array.from({ length: Math.ceil(body.length / 4096) }, (_, i) =>
          body.subarray(i * 4096, (i + 1) * 4096),
        )
        await writeChunked(res, 200, pieces)
      })
      const url = await startAt(world, fault)
      const expected = [
        [11, 5],
        [12, 6],
        [13, 7],
      ]
      for (const [i, [tokensIn, tokensOut]] of expected.entries()) {
        const response = await open(`${url}${CHAT}`, chat(`wide ${i}`))
        const text = await response.body.text()
        expect(response.statusCode).toBe(200)
        expect(JSON.parse(text).usage.prompt_tokens, 'the answer reaches the client as sent').toBe(tokensIn)
        const logged = await loggedText(world.gateway!, String(response.headers['cf-aig-log-id']))
        expect(JSON.parse(logged.split('\n')[0]!), `answer ${i}`).toMatchObject({ tokensIn, tokensOut })
      }
    })

    // 7. Deadline on big answers ------------------------------------------------------------------------

    it('faults: a JSON answer over 1 MiB cut by the total deadline closes the connection short of its length, with no SSE text', async () => {
      const opening = '{"id":"big","object":"chat.completion","filler":"'
      const fault = await faultServer(async (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(2 * MiB) })
        await writeAsync(res, opening)
        await pump(res, () => 'y'.repeat(64 * 1024), { total: 1.5 * MiB - opening.length, end: false })
        // Stalls here, half a MiB short of what it declared.
      })
      const url = await startAt(world, fault, { timeouts: { totalMs: 1500 } })
      const client = await rawPost(url, CHAT, chat('big'))
      // Either the connection closes, or (the failure looked for) SSE text turns up in a JSON body.
      const { closed } = await client.until((bytes) => bytes.includes('data:'))
      const { head, body } = splitResponse(client.received())
      expect(body.includes('data:'), `SSE text inside a JSON body: ${tail(body.toString())}`).toBe(false)
      expect(closed, 'the connection stayed open after the answer was cut').toBe(true)
      const declared = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1]
      if (declared !== undefined) expect(body.length).toBeLessThan(Number(declared))
      else expect(body.subarray(-5).toString()).not.toBe('0\r\n\r\n')
      await fault.connectionClosed(0)
    })

    it('faults: an upstream that never sends headers is a 504 with code 2107 at the total deadline', async () => {
      const fault = await faultServer(() => {
        // Never answers.
      })
      const url = await startAt(world, fault, { timeouts: { totalMs: 1500 } })
      const res = await send(`${url}${CHAT}`, { body: chat('hi') })
      expect(res.status).toBe(504)
      expect(res.json()).toMatchObject({ error: [{ code: 2107 }], name: 'AiGatewayError' })
      await fault.connectionClosed(0)
    })

    // 8. Clients that stop reading ----------------------------------------------------------------------

    it('faults: a client that stops reading a stream is given up after writeStallMs, and the upstream is cancelled', async () => {
      const fault = await faultServer(async (_req, res) => {
        sendHeaders(res, 200, SSE_HEADERS)
        await pump(res, (i) => openaiChunk(`flood ${i} ${'z'.repeat(1000)}`))
      })
      const stage = stages()
      const url = await startAt(world, fault, { timeouts: { writeStallMs: 300 } })
      const ended = nextRequestEnd(world.gateway!)
      await rawPost(url, CHAT, chat('hi', { stream: true }), { read: false })
      stage("the gateway's request:end")
      const end = await ended
      expect(end.outcome, `request:end ${JSON.stringify(end)}`).toBe('aborted')
      stage("the upstream connection's close")
      await fault.connectionClosed(0)
    })

    for (const { wrapper, path, body, options } of WRAPPED_STREAMS) {
      it(`faults: a client that stops reading a ${wrapper} stream is given up after writeStallMs, as on passthrough`, async () => {
        const fault = await faultServer(async (req, res) => {
          sendHeaders(res, 200, SSE_HEADERS)
          if (req.url === '/v1/messages') {
            await writeAsync(res, anthropicStart().join(''))
            await pump(res, (i) => anthropicDelta(`flood ${i} ${'z'.repeat(1000)}`))
          } else await pump(res, (i) => openaiChunk(`flood ${i} ${'z'.repeat(1000)}`))
        })
        const stage = stages()
        const url = await startAt(world, fault, { ...options, timeouts: { writeStallMs: 300 } })
        const ended = nextRequestEnd(world.gateway!)
        const client = await rawPost(url, path, body, { read: false })
        stage("the gateway's request:end")
        const end = await ended
        expect(end).toMatchObject({ status: 499, outcome: 'aborted' })
        stage("the upstream connection's close")
        await fault.connectionClosed(0)
        // Read at last: what the client was sent, then the gateway's end of the connection.
        stage("the client connection's close")
        client.socket.resume()
        await client.closed
        const record = await eventually(async () => {
          await world.gateway!.flushLogs()
          return world.gateway!.logs!.get(end.id)
        })
        // The record a passthrough stream given up on gets.
        expect(record).toMatchObject({ statusCode: 499, success: false, outcome: 'aborted', errorCode: null })
      })
    }

    // 9. Non-streamed body cap --------------------------------------------------------------------------

    it('faults: a JSON answer declaring more than maxResponseBytes is a 502 with code 2121, and the upstream is cancelled', async () => {
      const fault = await faultServer(async (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(2 * MiB) })
        await writeAsync(res, '{"id":"too-big","filler":"')
        await pump(res, () => 'q'.repeat(64 * 1024), { total: MiB, end: false })
      })
      const url = await startAt(world, fault, { maxResponseBytes: MiB })
      const res = await send(`${url}${CHAT}`, { body: chat('hi') })
      expect(res.status).toBe(502)
      expect(res.text).not.toContain('too-big')
      expect(res.json()).toMatchObject({ error: [{ code: 2121 }], name: 'AiGatewayError' })
      await fault.connectionClosed(0)
    })

    it('faults: a chunked JSON answer past maxResponseBytes never reaches the client whole', async () => {
      const fault = await faultServer(async (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' })
        await pump(res, () => 'w'.repeat(64 * 1024), { total: 2 * MiB })
      })
      const url = await startAt(world, fault, { maxResponseBytes: MiB })
      const response = await open(`${url}${CHAT}`, chat('hi'))
      const read = await drain(response.body)
      if (response.statusCode === 502) {
        expect(JSON.parse(read.bytes.toString())).toMatchObject({ error: [{ code: 2121 }] })
      } else {
        expect(read.ended, `the whole ${read.bytes.length}-byte body was delivered`).toBe(false)
        expect(read.bytes.length).toBeLessThan(2 * MiB)
      }
    })
  })
}
