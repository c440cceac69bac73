import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { createServer } from 'node:http'
import { isRecord } from '../json.js'
import {
  buildResponse,
  type Credential,
  type Dialect,
  describeExchange,
  errorBody,
  errorEvent,
  findCredential,
  invalidJsonBody,
  type MockResponse,
  missingCredential,
  prefillOf,
  type Refusal,
  type Route,
  rejectedCredential,
  resolveRoute,
  scriptedUnauthorized,
} from './mock-dialects.js'
import { createMockRealtime, type MockRealtime } from './mock-realtime.js'

/**
 * Where the mock provider listens, and how strict it is.
 *
 * By default the mock refuses what a real provider refuses, in that provider's own error shape:
 * - a call without a credential where the dialect reads one: OpenAI `authorization: Bearer` (and `api-key`
 *   on Azure `/openai/deployments/...` and `/openai/v1/...` paths), Anthropic `x-api-key` (or a Bearer token),
 *   Gemini `x-goog-api-key`, `?key=` or a Bearer token. OpenAI, Azure and Anthropic answer 401; Gemini answers
 *   403 PERMISSION_DENIED, as Google does;
 * - with `keys` given, any other credential: 401 (Gemini: 400 API_KEY_INVALID for an API key, 401 for a
 *   Bearer token), the key quoted in the message when `echoKeyInErrors` is on;
 * - a POST body that is not a JSON object: 400.
 *
 * Error bodies go out chunked (Transfer-Encoding: chunked, no Content-Length, in at least two writes), as real
 * providers send them. Paths the mock does not recognise answer 404 whatever the credential.
 * @example
 * const mock = await createMockProvider() // strict: any non-empty key is accepted
 * const keyed = await createMockProvider({ keys: ['sk-test'], echoKeyInErrors: true })
 * // POST /v1/chat/completions with `authorization: Bearer sk-wrong` →
 * // 401 { error: { message: 'Incorrect API key provided: sk-wrong. You can find ...', code: 'invalid_api_key' } }
 * const old = await createMockProvider({ lenient: true }) // no credential or body checks, Content-Length errors
 */
export interface MockProviderOptions {
  /** Defaults to '127.0.0.1'. */
  host?: string
  /** Defaults to 0 (a free port). */
  port?: number
  /**
   * The credentials the mock accepts; any other is refused as a real provider refuses a wrong key. Without it,
   * any non-empty credential is accepted. Giving `keys` turns `requireKey` on, even with `lenient`.
   * @example await createMockProvider({ keys: ['sk-test', 'sk-ant-test'] })
   */
  keys?: readonly string[]
  /**
   * Quote the refused key verbatim in the error message, as OpenAI does ("Incorrect API key provided:
   * sk-..."), in every dialect; lets a test check that a gateway never passes a key back to its client.
   * A script's own `echoKeyInErrors` overrides it for one call. Defaults to false.
   * @example await createMockProvider({ keys: ['sk-test'], echoKeyInErrors: true })
   */
  echoKeyInErrors?: boolean
  /**
   * Restores the permissive mock: no credential check, any body accepted (a body that is not JSON is read as
   * `{}`), and error bodies sent in one write with Content-Length. `requireKey`, `requireJson` and
   * `chunkedErrors` override it one by one.
   * @example await createMockProvider({ lenient: true })
   */
  lenient?: boolean
  /**
   * Refuse calls to a recognised route that carry no credential. Defaults to `!lenient`, or true with `keys`.
   * @example await createMockProvider({ requireKey: false }) // still strict about bodies
   */
  requireKey?: boolean
  /**
   * Refuse a POST to a recognised route whose body is not a JSON object, with 400. Defaults to `!lenient`.
   * @example await createMockProvider({ requireJson: false })
   */
  requireJson?: boolean
  /**
   * Send error bodies (any non-2xx answer) chunked, in at least two writes, without Content-Length. A script's
   * `chunked` overrides it for one call. Defaults to `!lenient`.
   * @example await createMockProvider({ chunkedErrors: false }) // errors with Content-Length
   */
  chunkedErrors?: boolean
}

/**
 * One request the mock provider received.
 * @example
 * const [call] = mock.calls
 * expect(call?.headers.authorization).toBe('Bearer sk-test')
 */
export interface MockCall {
  method: string
  /** Pathname only. */
  path: string
  /** Raw search string including '?', or ''. */
  query: string
  /** Lower-case names; multi-valued headers joined with ', '. */
  headers: Record<string, string>
  /** Raw request body as received (utf8). */
  body: string
  /** Parsed body, or undefined when not JSON. */
  json: unknown
  /** Resolves 'finished' when the response was fully written, 'aborted' when the connection ended first. */
  readonly outcome: Promise<'finished' | 'aborted'>
}

/**
 * How the mock answers one call; every field is optional and the defaults answer normally.
 * @example mock.enqueue({ status: 429, retryAfter: 2 }, { cutAfterEvents: 3 })
 */
export interface MockScript {
  /** Default 200; a non-2xx status answers with the dialect's error body unless `body` is given. */
  status?: number
  /** Extra response headers. */
  headers?: Record<string, string>
  /** Sets Retry-After. */
  retryAfter?: number | string
  /** Replaces the whole response body (object → JSON, string → as is); no streaming then. */
  body?: unknown
  /** Assistant text; defaults to `mock reply to: <last user text>`, or 'mock reply' when there is none. */
  reply?: string
  /** Wait this long before sending headers. */
  latencyMs?: number
  /** Never answer, until the client goes away or the provider closes. */
  stallBeforeHeaders?: boolean
  /** Pause between streamed events (default 0). */
  chunkDelayMs?: number
  /** After N streamed events, stop sending for `stallMs` (default: forever), then continue. */
  stallAfterEvents?: number
  stallMs?: number
  /** After N streamed events, destroy the socket: no terminal marker, no chunked terminator. */
  cutAfterEvents?: number
  /** Emit `data: {not json` as the content event at this 0-based index. */
  malformedEventAt?: number
  /**
   * After N streamed events, send the dialect's in-band error event and end the stream, as providers do
   * after their 200 (Anthropic's `overloaded_error`). `errorType` sets the error's type.
   * @example mock.enqueue({ errorEventAfter: 1 }) // message_start, then event: error
   */
  errorEventAfter?: number
  errorType?: string
  /** Wait this long before the answer's first event, after the preamble (role chunk, `message_start`, ping). */
  firstTokenDelayMs?: number
  /** Leave out the stream's last event (`data: [DONE]`, `message_stop`): it ends cleanly after its finish. */
  omitTerminator?: boolean
  /**
   * Quote the call's key in this call's auth error, overriding the provider's `echoKeyInErrors`. With
   * `status: 401` the body is the dialect's wrong-key error for the key the call carried.
   * @example mock.enqueue({ status: 401, echoKeyInErrors: true }) // "Incorrect API key provided: sk-..."
   */
  echoKeyInErrors?: boolean
  /**
   * Send this call's JSON body chunked (true) or with Content-Length (false). Defaults to chunked for
   * non-2xx answers, unless the provider's `chunkedErrors` is off; success bodies use Content-Length.
   * @example mock.enqueue({ status: 500, chunked: false })
   */
  chunked?: boolean
  /**
   * Refuse a request that ends with an assistant message (a prefill) with a 400, as models that take no
   * prefill do; other requests are answered as usual.
   */
  rejectPrefill?: boolean
}

/**
 * A running mock provider.
 * @example
 * const mock = await createMockProvider()
 * mock.enqueue({ status: 503 })
 * const headers = { authorization: 'Bearer sk-test' }
 * await fetch(`${mock.url}/v1/chat/completions`, { method: 'POST', headers, body: '{}' }) // 503
 * await fetch(`${mock.url}/v1/chat/completions`, { method: 'POST', body: '{}' }) // 401: no key
 * await mock.close()
 */
export interface MockProvider {
  /** 'http://127.0.0.1:PORT', without a trailing slash. */
  readonly url: string
  readonly port: number
  /** Every request received, in order. */
  readonly calls: MockCall[]
  /**
   * Scripts are consumed one per incoming call, in order, refused calls (no key, a bad body) included; with
   * the queue empty, calls get the default behaviour.
   */
  enqueue(...scripts: MockScript[]): void
  /**
   * The realtime WebSocket endpoints: OpenAI Realtime at `/v1/realtime` and Gemini Live at
   * `/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent` (see `createMockRealtime`).
   */
  readonly realtime: MockRealtime
  /** Clears the recorded calls and the script queue. */
  reset(): void
  /** Closes the server and destroys open sockets, including stalled responses. */
  close(): Promise<void>
}

interface ProviderState {
  calls: MockCall[]
  queue: MockScript[]
  /** One controller per unanswered call, aborted when its connection ends or the provider closes. */
  pending: Set<AbortController>
  policy: Policy
}

/** The options' strictness, resolved once. */
interface Policy {
  requireKey: boolean
  /** Undefined: any non-empty credential. */
  keys: ReadonlySet<string> | undefined
  requireJson: boolean
  chunkedErrors: boolean
  echoKeyInErrors: boolean
}

function resolvePolicy(options: MockProviderOptions): Policy {
  const strict = options.lenient !== true
  return {
    requireKey: options.requireKey ?? (strict || options.keys !== undefined),
    keys: options.keys === undefined ? undefined : new Set(options.keys),
    requireJson: options.requireJson ?? strict,
    chunkedErrors: options.chunkedErrors ?? strict,
    echoKeyInErrors: options.echoKeyInErrors ?? false,
  }
}

// setTimeout clamps anything larger to 1 ms, which would turn a long stall into none.
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * Starts a mock AI provider speaking the OpenAI, Anthropic and Gemini wire formats, as strict as the real ones
 * about credentials and bodies unless told otherwise (see `MockProviderOptions`). Models named `llama-guard`
 * answer chat as Llama Guard, and `POST .../models/{org}/{name with prompt-guard}` answers as Prompt Guard
 * text classification, both from trigger markers such as `[[unsafe:S1]]` and `[[injection]]` (table in
 * `mock-dialects.ts`, above `llamaGuardReply`).
 * @example
 * const mock = await createMockProvider()
 * const res = await fetch(`${mock.url}/v1/messages`, {
 *   method: 'POST',
 *   headers: { 'x-api-key': 'sk-ant-test' },
 *   body: JSON.stringify({ messages: [] }),
 * })
 * await mock.close()
 */
export async function createMockProvider(options: MockProviderOptions = {}): Promise<MockProvider> {
  const state: ProviderState = { calls: [], queue: [], pending: new Set(), policy: resolvePolicy(options) }
  const server = createServer((req, res) => {
    handleRequest(req, res, state).catch(() => res.destroy())
  })
  const realtime = createMockRealtime(server, state.policy)
  const host = options.host ?? '127.0.0.1'
  const port = await listen(server, host, options.port ?? 0)
  let closing: Promise<void> | undefined
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    calls: state.calls,
    realtime,
    enqueue: (...scripts) => {
      state.queue.push(...scripts)
    },
    reset: () => {
      state.calls.length = 0
      state.queue.length = 0
      realtime.reset()
    },
    close: () => {
      // Upgraded sockets hold a server's close open: they go first.
      closing ??= realtime.close().then(() => closeServer(server, state))
      return closing
    },
  }
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      const address = server.address()
      if (typeof address === 'object' && address !== null) resolve(address.port)
      else reject(new Error('mock provider has no TCP address'))
    })
  })
}

function closeServer(server: Server, state: ProviderState): Promise<void> {
  for (const controller of state.pending) controller.abort()
  state.pending.clear()
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
}

async function handleRequest(req: IncomingMessage, res: ServerResponse, state: ProviderState): Promise<void> {
  const controller = new AbortController()
  state.pending.add(controller)
  const outcome = new Promise<'finished' | 'aborted'>((resolve) => {
    res.on('close', () => {
      state.pending.delete(controller)
      controller.abort()
      resolve(res.writableFinished ? 'finished' : 'aborted')
    })
  })
  const call = recordCall(req, await readBody(req), outcome)
  state.calls.push(call)
  const script = state.queue.shift() ?? {}
  if (controller.signal.aborted) return
  await respond(res, call, script, state, controller.signal)
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  try {
    for await (const chunk of req) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)))
  } catch {
    // A client that hangs up mid-upload is still recorded, with what arrived.
  }
  return Buffer.concat(chunks).toString('utf8')
}

function recordCall(req: IncomingMessage, body: string, outcome: MockCall['outcome']): MockCall {
  const target = req.url ?? '/'
  const queryStart = target.indexOf('?')
  const headers: Record<string, string> = {}
  for (const [name, values] of Object.entries(req.headersDistinct)) {
    if (values) headers[name] = values.join(', ')
  }
  return {
    method: req.method ?? 'GET',
    path: queryStart === -1 ? target : target.slice(0, queryStart),
    query: queryStart === -1 ? '' : target.slice(queryStart),
    headers,
    body,
    json: parseJson(body),
    outcome,
  }
}

function parseJson(body: string): unknown {
  if (body.trim() === '') return undefined
  try {
    return JSON.parse(body) as unknown
  } catch {
    return undefined
  }
}

async function respond(
  res: ServerResponse,
  call: MockCall,
  script: MockScript,
  state: ProviderState,
  signal: AbortSignal,
): Promise<void> {
  const sequence = state.calls.length
  if (script.stallBeforeHeaders) {
    await pause(undefined, signal)
    return
  }
  if (script.latencyMs !== undefined && !(await pause(script.latencyMs, signal))) return
  const extraHeaders = scriptHeaders(script)
  const send = (status: number, body: unknown): Promise<void> =>
    sendBody(res, status, extraHeaders, body, chunkedBody(status, script, state.policy), signal)
  const route = resolveRoute(call.method, call.path)
  const credential = findCredential(route, call.headers, call.query)
  const echo = script.echoKeyInErrors ?? state.policy.echoKeyInErrors
  // What a real provider refuses comes first: a script shapes only the answer to a call that got through.
  const refusal =
    route.endpoint === 'unknown' ? undefined : refuse(route, call, credential, state.policy, echo)
  if (refusal) return send(refusal.status, refusal.body)
  if (script.body !== undefined) return send(script.status ?? 200, script.body)
  if (route.endpoint === 'unknown') {
    // A scripted failure still applies here; a scripted success cannot, as there is nothing to answer with.
    const status = script.status !== undefined && !isSuccess(script.status) ? script.status : 404
    const message = `no mock route for ${call.method} ${call.path}`
    return send(status, errorBody('openai', status, message))
  }
  const status = script.status ?? 200
  if (status === 401) return send(status, scriptedUnauthorized(route, credential, echo))
  if (!isSuccess(status)) return send(status, errorBody(route.dialect, status))
  const request = isRecord(call.json) ? call.json : {}
  if (script.rejectPrefill && prefillOf(route.dialect, request) !== undefined) {
    const message = 'This model does not support assistant message prefill.'
    return send(400, errorBody(route.dialect, 400, message))
  }
  const exchange = describeExchange(route, request, call.query, sequence, script.reply)
  const response = buildResponse(exchange, script.malformedEventAt)
  if (response.kind === 'json') await send(status, response.body)
  else await sendStream(res, status, extraHeaders, response, route.dialect, script, signal)
}

/** The refusal a real provider would answer this call with, if any: a missing or wrong key, then a bad body. */
function refuse(
  route: Route,
  call: MockCall,
  credential: Credential | undefined,
  policy: Policy,
  echo: boolean,
): Refusal | undefined {
  if (policy.requireKey) {
    if (credential === undefined) return missingCredential(route)
    if (policy.keys !== undefined && !policy.keys.has(credential.key)) {
      return rejectedCredential(route, credential, echo)
    }
  }
  if (policy.requireJson && call.method === 'POST' && !isRecord(call.json)) {
    return invalidJsonBody(route, call.json === undefined ? 'syntax' : 'not-object')
  }
  return undefined
}

function chunkedBody(status: number, script: MockScript, policy: Policy): boolean {
  return script.chunked ?? (policy.chunkedErrors && !isSuccess(status))
}

function isSuccess(status: number): boolean {
  return status >= 200 && status < 300
}

function scriptHeaders(script: MockScript): Record<string, string> {
  const headers = { ...script.headers }
  if (script.retryAfter !== undefined) headers['retry-after'] = String(script.retryAfter)
  return headers
}

/** Base headers first, so scripted headers override them whatever their case. */
function writeHead(
  res: ServerResponse,
  status: number,
  base: Record<string, string>,
  extra: Record<string, string>,
): void {
  for (const [name, value] of Object.entries(base)) res.setHeader(name, value)
  for (const [name, value] of Object.entries(extra)) res.setHeader(name, value)
  res.writeHead(status)
}

/**
 * Sends a whole body: with Content-Length in one write, or chunked (no Content-Length) in two writes, the
 * second only once the first reached the socket, so they stay two chunks on the wire.
 */
async function sendBody(
  res: ServerResponse,
  status: number,
  extra: Record<string, string>,
  body: unknown,
  chunked: boolean,
  signal: AbortSignal,
): Promise<void> {
  const payload = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8')
  // These statuses forbid a body; writing one anyway would corrupt the connection for the next call.
  const bodyless = status === 204 || status === 304 || (status >= 100 && status < 200)
  if (bodyless) {
    writeHead(res, status, {}, extra)
    res.end()
    return
  }
  if (!chunked || payload.length < 2) {
    const base = { 'content-type': 'application/json', 'content-length': String(payload.length) }
    writeHead(res, status, base, extra)
    res.end(payload)
    return
  }
  writeHead(res, status, { 'content-type': 'application/json' }, extra)
  const half = Math.ceil(payload.length / 2)
  if (!(await writeEvent(res, payload.subarray(0, half))) || signal.aborted) return
  res.end(payload.subarray(half))
}

async function sendStream(
  res: ServerResponse,
  status: number,
  extra: Record<string, string>,
  response: Extract<MockResponse, { kind: 'stream' }>,
  dialect: Dialect,
  script: MockScript,
  signal: AbortSignal,
): Promise<void> {
  writeHead(res, status, { 'content-type': response.contentType, 'cache-control': 'no-cache' }, extra)
  res.flushHeaders()
  if (!(await interruptAfter(0, res, dialect, script, signal))) return
  const events =
    script.omitTerminator && response.endsWithTerminator ? response.events.slice(0, -1) : response.events
  for (const [index, event] of events.entries()) {
    if (index > 0 && script.chunkDelayMs && !(await pause(script.chunkDelayMs, signal))) return
    if (index === response.answerAt && script.firstTokenDelayMs !== undefined) {
      if (!(await pause(script.firstTokenDelayMs, signal))) return
    }
    if (!(await writeEvent(res, event))) return
    if (!(await interruptAfter(index + 1, res, dialect, script, signal))) return
  }
  res.end()
}

/** Applies the scripted cut or stall once `sent` events are out; false when the stream must stop. */
async function interruptAfter(
  sent: number,
  res: ServerResponse,
  dialect: Dialect,
  script: MockScript,
  signal: AbortSignal,
): Promise<boolean> {
  if (script.cutAfterEvents === sent) {
    res.destroy()
    return false
  }
  if (script.errorEventAfter === sent) {
    res.end(errorEvent(dialect, script.errorType))
    return false
  }
  if (script.stallAfterEvents === sent) return pause(script.stallMs, signal)
  return true
}

/**
 * Waiting for the write callback keeps events apart on the wire and lets a cut happen only after
 * the events before it reached the socket; it also doubles as backpressure.
 */
function writeEvent(res: ServerResponse, event: string | Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    if (res.destroyed) {
      resolve(false)
      return
    }
    const onClose = (): void => resolve(false)
    res.once('close', onClose)
    res.write(event, (error) => {
      res.off('close', onClose)
      resolve(!error)
    })
  })
}

/** Resolves true after `ms` (never, when undefined), or false as soon as the call is abandoned. */
function pause(ms: number | undefined, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve(false)
      return
    }
    let timer: NodeJS.Timeout | undefined
    const onAbort = (): void => {
      clearTimeout(timer)
      resolve(false)
    }
    signal.addEventListener('abort', onAbort, { once: true })
    if (ms === undefined) return
    timer = setTimeout(
      () => {
        signal.removeEventListener('abort', onAbort)
        resolve(true)
      },
      Math.min(Math.max(ms, 0), MAX_TIMER_MS),
    )
  })
}
