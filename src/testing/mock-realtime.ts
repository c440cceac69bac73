import { EventEmitter } from 'node:events'
import type { IncomingMessage, Server } from 'node:http'
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import { type RawData, WebSocket, WebSocketServer } from 'ws'
import { isRecord } from '../json.js'
import {
  type Dialect,
  errorBody,
  findCredential,
  missingCredential,
  type Refusal,
  type Route,
  rejectedCredential,
} from './mock-dialects.js'

/** OpenAI Realtime's endpoint, below the mock's `/v1`. */
const OPENAI_REALTIME = /^(?:\/v1)?\/realtime$/
/** Gemini Live's endpoint. */
const GEMINI_LIVE =
  /^\/ws\/google\.ai\.generativelanguage\.v1(?:alpha|beta)\.GenerativeService\.BidiGenerateContent$/
/** The subprotocol browsers carry an OpenAI key in. */
const OPENAI_KEY_PROTOCOL = 'openai-insecure-api-key.'
/** What the mock keeps in its own send queue during a flood before it waits for the socket to drain. */
const FLOOD_QUEUE_BYTES = 1024 * 1024

/**
 * How the mock answers one realtime connection; consumed one per connection, in order.
 * @example mock.realtime.enqueue({ status: 429 }, { usage: { input_tokens: 1000, output_tokens: 500 } })
 */
export interface MockRealtimeScript {
  /** Refuse the handshake with this HTTP status and the dialect's error body. */
  status?: number
  /** The text of every answer; default `mock reply to: <last user text>`, or `mock reply`. */
  reply?: string
  /** The usage every answer reports, in OpenAI's names; default: a token per 4 characters in, a token per word out. */
  usage?: { input_tokens: number; output_tokens: number; cached_tokens?: number }
}

/** One realtime connection the mock took. */
export interface MockRealtimeSession extends EventEmitter {
  readonly dialect: 'openai' | 'gemini'
  readonly path: string
  /** Raw search string including '?', or ''. */
  readonly query: string
  /** Lower-case names, as received. */
  readonly headers: Record<string, string>
  /** The subprotocols the client offered, and the one the mock chose. */
  readonly protocols: readonly string[]
  readonly protocol: string
  /**
   * Every client event, parsed (a frame that is not JSON as its text), in order; an
   * `input_audio_buffer.append` is kept as `{ type, audioBytes }`.
   */
  readonly received: unknown[]
  /** The mock's own socket: its `bufferedAmount` is what it could not send yet. */
  readonly socket: WebSocket
  /** Resolves with the close code and reason once the connection closed. */
  readonly closed: Promise<{ code: number; reason: string }>
  /** A flood under way (`mock.flood`): frames sent so far of the total, and whether it waits for the socket. */
  readonly flood: { sent: number; total: number; waiting: boolean }
  /** Sends a server event (an object is sent as JSON). */
  send(event: unknown): void
  /** Closes the connection from the provider's side. */
  close(code?: number, reason?: string): void
  /** Resolves once the mock has received at least `count` client events. */
  receivedAtLeast(count: number): Promise<void>
}

/** The realtime side of the mock provider. */
export interface MockRealtime {
  /** Every connection taken, in order (refused ones are not). */
  readonly sessions: MockRealtimeSession[]
  /** Scripts for the next connections, one each. */
  enqueue(...scripts: MockRealtimeScript[]): void
  /** Resolves with the `index`th connection (0-based) once it is open; by default the next one. */
  session(index?: number): Promise<MockRealtimeSession>
  /** Forgets the sessions and the scripts (open connections stay open). */
  reset(): void
  /** Closes every open connection (1001) and stops taking new ones. */
  close(): Promise<void>
}

/** What the realtime mock takes from the provider's options: how strict it is about keys. */
export interface MockRealtimePolicy {
  readonly requireKey: boolean
  readonly keys: ReadonlySet<string> | undefined
  readonly echoKeyInErrors: boolean
}

/**
 * Serves OpenAI Realtime (`/v1/realtime?model=…`) and Gemini Live (`…BidiGenerateContent`) on the mock's
 * server, in a small but faithful subset: OpenAI sends `session.created` on connect, answers
 * `session.update`, records `conversation.item.create`, and answers `response.create` with
 * `response.created`, text deltas (`response.output_text.delta`, or `response.text.delta` with
 * `OpenAI-Beta: realtime=v1`) and `response.done` with its usage; Gemini answers `setup` with
 * `setupComplete` and each `clientContent` turn with text parts, then `turnComplete` and `usageMetadata`
 * (sent as binary frames, as Google sends them). Keys are checked as on HTTP, in the header, `?key=` for
 * Gemini, or the browser subprotocol `openai-insecure-api-key.<key>` for OpenAI.
 *
 * A client event `{"type":"mock.flood","frames":N,"bytes":B}` makes the mock send N audio deltas of B
 * bytes as fast as its socket takes them, holding at most 1 MiB queued itself: a test of a slow reader.
 *
 * @example
 * const realtime = createMockRealtime(server, { requireKey: true, keys: undefined, echoKeyInErrors: false })
 * const session = await realtime.session(0) // the first connection, once it is open
 */
export function createMockRealtime(server: Server, policy: MockRealtimePolicy): MockRealtime {
  const acceptor = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    handleProtocols: (protocols) =>
      protocols.has('realtime') ? 'realtime' : (protocols.values().next().value ?? false),
  })
  const sessions: MockRealtimeSession[] = []
  const scripts: MockRealtimeScript[] = []
  const waiters: { index: number; resolve: (session: MockRealtimeSession) => void }[] = []
  const open = new Set<Session>()
  let closing = false

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {})
    const target = req.url ?? '/'
    const at = target.indexOf('?')
    const path = at === -1 ? target : target.slice(0, at)
    const query = at === -1 ? '' : target.slice(at)
    const dialect = OPENAI_REALTIME.test(path) ? 'openai' : GEMINI_LIVE.test(path) ? 'gemini' : undefined
    if (closing || dialect === undefined) {
      refuse(socket, { status: 404, body: errorBody('openai', 404, `no mock route for ${path}`) })
      return
    }
    const script = scripts.shift() ?? {}
    const headers = headersOf(req)
    const protocols = (headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean)
    const refusal = checkKey(dialect, headers, query, protocols, policy)
    if (refusal !== undefined) return refuse(socket, refusal)
    if (script.status !== undefined) {
      return refuse(socket, { status: script.status, body: errorBody(dialect, script.status) })
    }
    acceptor.handleUpgrade(req, socket, head, (ws) => {
      const session = new Session(ws, { dialect, path, query, headers, protocols, script })
      open.add(session)
      void session.closed.then(() => open.delete(session))
      sessions.push(session)
      for (const waiter of [...waiters]) {
        if (sessions[waiter.index] === undefined) continue
        waiters.splice(waiters.indexOf(waiter), 1)
        waiter.resolve(session)
      }
      session.start()
    })
  })

  return {
    sessions,
    enqueue: (...more) => {
      scripts.push(...more)
    },
    session(index = sessions.length) {
      const found = sessions[index]
      if (found !== undefined) return Promise.resolve(found)
      return new Promise((resolve) => waiters.push({ index, resolve }))
    },
    reset() {
      sessions.length = 0
      scripts.length = 0
    },
    async close() {
      closing = true
      const ending = [...open].map((session) => {
        session.socket.close(1001, 'mock provider closing')
        return session.closed
      })
      await Promise.all(ending)
      acceptor.close()
    },
  }
}

class Session extends EventEmitter implements MockRealtimeSession {
  readonly received: unknown[] = []
  readonly closed: Promise<{ code: number; reason: string }>
  readonly flood = { sent: 0, total: 0, waiting: false }
  readonly dialect: 'openai' | 'gemini'
  readonly path: string
  readonly query: string
  readonly headers: Record<string, string>
  readonly protocols: readonly string[]
  readonly #script: MockRealtimeScript
  #lastText = ''
  #responses = 0

  constructor(
    readonly socket: WebSocket,
    setup: {
      dialect: 'openai' | 'gemini'
      path: string
      query: string
      headers: Record<string, string>
      protocols: readonly string[]
      script: MockRealtimeScript
    },
  ) {
    super()
    this.dialect = setup.dialect
    this.path = setup.path
    this.query = setup.query
    this.headers = setup.headers
    this.protocols = setup.protocols
    this.#script = setup.script
    this.closed = new Promise((resolve) => {
      socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() }))
    })
    socket.on('error', () => {})
  }

  get protocol(): string {
    return this.socket.protocol
  }

  start(): void {
    this.socket.on('message', (data, binary) => this.#onMessage(data, binary))
    if (this.dialect === 'openai') {
      this.send({
        type: 'session.created',
        event_id: this.#eventId(),
        session: { id: 'sess_mock', object: 'realtime.session', model: this.#model(), modalities: ['text'] },
      })
    }
  }

  send(event: unknown): void {
    if (this.socket.readyState !== WebSocket.OPEN) return
    const text = typeof event === 'string' ? event : JSON.stringify(event)
    // Google sends its JSON messages as binary frames.
    this.socket.send(text, { binary: this.dialect === 'gemini' })
  }

  close(code = 1000, reason = ''): void {
    this.socket.close(code, reason)
  }

  receivedAtLeast(count: number): Promise<void> {
    if (this.received.length >= count) return Promise.resolve()
    return new Promise((resolve) => {
      const check = () => {
        if (this.received.length < count) return
        this.off('event', check)
        resolve()
      }
      this.on('event', check)
    })
  }

  #onMessage(data: RawData, _binary: boolean): void {
    const text = Buffer.isBuffer(data)
      ? data.toString('utf8')
      : Array.isArray(data)
        ? Buffer.concat(data).toString('utf8')
        : Buffer.from(data).toString('utf8')
    let event: unknown
    try {
      event = JSON.parse(text)
    } catch {
      event = text
    }
    // Audio is kept as its size only: a test may send megabytes of it.
    const kept =
      isRecord(event) && event.type === 'input_audio_buffer.append' && typeof event.audio === 'string'
        ? { type: event.type, audioBytes: event.audio.length }
        : event
    this.received.push(kept)
    this.emit('event', event)
    if (!isRecord(event)) return
    if (event.type === 'mock.flood') {
      void this.#flood(Number(event.frames) || 0, Number(event.bytes) || 0)
      return
    }
    if (this.dialect === 'gemini') this.#gemini(event)
    else this.#openai(event)
  }

  #openai(event: Record<string, unknown>): void {
    const type = event.type
    if (type === 'session.update') {
      this.send({ type: 'session.updated', event_id: this.#eventId(), session: event.session ?? {} })
    } else if (type === 'conversation.item.create') {
      this.#lastText = itemText(event.item) ?? this.#lastText
      this.send({ type: 'conversation.item.created', event_id: this.#eventId(), item: event.item ?? {} })
    } else if (type === 'response.create') {
      this.#respondOpenai()
    } else if (type !== 'input_audio_buffer.append') {
      this.send({
        type: 'error',
        event_id: this.#eventId(),
        error: {
          type: 'invalid_request_error',
          code: 'unknown_event',
          message: `Unknown event: ${String(type)}`,
        },
      })
    }
  }

  #respondOpenai(): void {
    const id = `resp_mock_${++this.#responses}`
    const beta =
      /realtime=v1/.test(this.headers['openai-beta'] ?? '') ||
      this.protocols.includes('openai-beta.realtime-v1')
    const delta = beta ? 'response.text.delta' : 'response.output_text.delta'
    const done = beta ? 'response.text.done' : 'response.output_text.done'
    const reply = this.#reply()
    this.send({
      type: 'response.created',
      event_id: this.#eventId(),
      response: { id, status: 'in_progress' },
    })
    for (const piece of pieces(reply)) {
      this.send({
        type: delta,
        event_id: this.#eventId(),
        response_id: id,
        item_id: `item_${id}`,
        delta: piece,
      })
    }
    this.send({ type: done, event_id: this.#eventId(), response_id: id, text: reply })
    const usage = this.#usage(reply)
    this.send({
      type: 'response.done',
      event_id: this.#eventId(),
      response: {
        id,
        object: 'realtime.response',
        status: 'completed',
        output: [{ type: 'message', role: 'assistant', content: [{ type: 'output_text', text: reply }] }],
        usage: {
          total_tokens: usage.input_tokens + usage.output_tokens,
          input_tokens: usage.input_tokens,
          output_tokens: usage.output_tokens,
          input_token_details: {
            cached_tokens: usage.cached_tokens ?? 0,
            text_tokens: usage.input_tokens,
            audio_tokens: 0,
          },
          output_token_details: { text_tokens: usage.output_tokens, audio_tokens: 0 },
        },
      },
    })
  }

  #gemini(event: Record<string, unknown>): void {
    if (isRecord(event.setup)) {
      this.send({ setupComplete: {} })
      return
    }
    if (!isRecord(event.clientContent)) return
    this.#lastText = geminiText(event.clientContent) ?? this.#lastText
    const reply = this.#reply()
    for (const piece of pieces(reply)) {
      this.send({ serverContent: { modelTurn: { role: 'model', parts: [{ text: piece }] } } })
    }
    const usage = this.#usage(reply)
    this.send({
      serverContent: { turnComplete: true },
      usageMetadata: {
        promptTokenCount: usage.input_tokens,
        responseTokenCount: usage.output_tokens,
        totalTokenCount: usage.input_tokens + usage.output_tokens,
        ...(usage.cached_tokens ? { cachedContentTokenCount: usage.cached_tokens } : {}),
      },
    })
  }

  /** Sends `frames` audio deltas of `bytes` each as fast as the socket takes them, never queueing over 1 MiB. */
  async #flood(frames: number, bytes: number): Promise<void> {
    this.flood.total += frames
    const audio = Buffer.alloc(Math.ceil((bytes * 3) / 4), 7)
      .toString('base64')
      .slice(0, bytes)
    // Resolves once the last frame sent was written out: by then the socket's queue has drained.
    let written: Promise<void> = Promise.resolve()
    for (let index = 0; index < frames; index++) {
      if (this.socket.readyState !== WebSocket.OPEN) return
      if (this.socket.bufferedAmount > FLOOD_QUEUE_BYTES) {
        this.flood.waiting = true
        this.emit('flood:waiting', this.flood)
        await written
        this.flood.waiting = false
        if (this.socket.readyState !== WebSocket.OPEN) return
      }
      const frame = JSON.stringify({ type: 'response.output_audio.delta', index, delta: audio })
      written = new Promise((resolve) => this.socket.send(frame, () => resolve()))
      this.flood.sent++
    }
    this.emit('flood:done', this.flood)
  }

  #reply(): string {
    return this.#script.reply ?? (this.#lastText ? `mock reply to: ${this.#lastText}` : 'mock reply')
  }

  #usage(reply: string): { input_tokens: number; output_tokens: number; cached_tokens?: number } {
    if (this.#script.usage !== undefined) return this.#script.usage
    return {
      input_tokens: Math.max(1, Math.ceil(this.#lastText.length / 4)),
      output_tokens: reply.split(/\s+/).filter(Boolean).length,
    }
  }

  #model(): string {
    return new URLSearchParams(this.query).get('model') ?? 'gpt-realtime'
  }

  #eventId(): string {
    return `event_${Math.random().toString(36).slice(2, 12)}`
  }
}

/** Splits an answer into the deltas it is streamed as: a word (with its space) each. */
function pieces(text: string): string[] {
  return text.match(/\S+\s*/g) ?? [text]
}

function itemText(item: unknown): string | undefined {
  if (!isRecord(item) || !Array.isArray(item.content)) return undefined
  const texts = item.content.flatMap((part) =>
    isRecord(part) && typeof part.text === 'string' ? [part.text] : [],
  )
  return texts.length === 0 ? undefined : texts.join(' ')
}

function geminiText(content: Record<string, unknown>): string | undefined {
  if (!Array.isArray(content.turns)) return undefined
  const texts: string[] = []
  for (const turn of content.turns) {
    if (!isRecord(turn) || !Array.isArray(turn.parts)) continue
    for (const part of turn.parts) if (isRecord(part) && typeof part.text === 'string') texts.push(part.text)
  }
  return texts.length === 0 ? undefined : texts.join(' ')
}

function headersOf(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const [name, values] of Object.entries(req.headersDistinct)) {
    if (values) headers[name] = values.join(', ')
  }
  return headers
}

/** The refusal a real provider answers a handshake with for a missing or wrong key, if any. */
function checkKey(
  dialect: 'openai' | 'gemini',
  headers: Record<string, string>,
  query: string,
  protocols: readonly string[],
  policy: MockRealtimePolicy,
): Refusal | undefined {
  const route: Route = { dialect: dialect satisfies Dialect, endpoint: 'chat' }
  const fromProtocol = protocols.find((protocol) => protocol.startsWith(OPENAI_KEY_PROTOCOL))
  const seen =
    dialect === 'openai' && fromProtocol !== undefined && headers.authorization === undefined
      ? { ...headers, authorization: `Bearer ${fromProtocol.slice(OPENAI_KEY_PROTOCOL.length)}` }
      : headers
  const credential = findCredential(route, seen, query)
  if (!policy.requireKey) return undefined
  if (credential === undefined) return missingCredential(route)
  if (policy.keys !== undefined && !policy.keys.has(credential.key)) {
    return rejectedCredential(route, credential, policy.echoKeyInErrors)
  }
  return undefined
}

function refuse(socket: Duplex, refusal: Refusal): void {
  const body = Buffer.from(JSON.stringify(refusal.body))
  const head = [
    `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? 'Error'}`,
    'content-type: application/json',
    `content-length: ${body.length}`,
    'connection: close',
    '',
    '',
  ].join('\r\n')
  socket.end(Buffer.concat([Buffer.from(head), body]))
}
