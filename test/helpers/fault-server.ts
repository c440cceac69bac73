/**
 * A small toolkit of misbehaving upstreams for fault tests, on raw `node:http` and `node:net` (never the
 * project's mock provider): servers that record what they were sent and say, through events and promises,
 * when each request arrived and when its connection closed, plus writers for the usual ways a provider's
 * answer goes wrong (chunked error bodies, SSE in OpenAI's and Anthropic's dialects, cuts, stalls, trickles,
 * endless streams).
 */
import { EventEmitter } from 'node:events'
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import { type AddressInfo, createServer as createNetServer, type Server, type Socket } from 'node:net'

/** One request as the fault server received it, body included. */
export interface ObservedRequest {
  /** 0-based, in arrival order. */
  readonly index: number
  readonly method: string
  /** Path and query string, as sent. */
  readonly url: string
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
  readonly text: string
  json(): unknown
  /** The server side of the connection the request came on. */
  readonly socket: Socket
  /** Resolves when that connection closes (for whatever reason, on either side). */
  readonly closed: Promise<void>
  /**
   * Resolves when the response was written to its end (`finished`), or the connection closed first
   * (`closed`): the answer was either delivered whole or cut off, not left hanging.
   */
  readonly settled: Promise<'finished' | 'closed'>
}

export type FaultHandler = (
  request: ObservedRequest,
  res: ServerResponse,
  socket: Socket,
) => void | Promise<void>

export interface FaultServer {
  /** `http://127.0.0.1:<port>`: use as a provider base URL (append `/v1` for OpenAI). */
  readonly url: string
  /** Same as `url`. */
  readonly origin: string
  /** Requests received so far, in order. */
  readonly requests: ObservedRequest[]
  /** Emits `request` (ObservedRequest) when a request's body has arrived, and `connection-close`. */
  readonly events: EventEmitter
  /** Resolves with the `n`th request (0-based) once it arrived. */
  request(n: number): Promise<ObservedRequest>
  /** Resolves when the connection that carried the `n`th request closes. */
  connectionClosed(n: number): Promise<void>
  /** Resolves when the `n`th response was written whole or its connection closed. */
  settled(n: number): Promise<'finished' | 'closed'>
  close(): Promise<void>
}

/**
 * An HTTP upstream on 127.0.0.1:0. Each request's body is read whole and recorded before `handler` runs; the
 * handler then answers (or misbehaves) through the raw `res` and `socket`. A handler that throws destroys
 * the connection.
 */
export async function startFaultServer(handler: FaultHandler): Promise<FaultServer> {
  const events = new EventEmitter()
  events.setMaxListeners(0)
  const requests: ObservedRequest[] = []
  const sockets = new Set<Socket>()
  const socketClosed = new WeakMap<Socket, Promise<void>>()

  const server = createServer((req, res) => {
    const socket = req.socket
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('error', () => {})
    res.on('error', () => {})
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      const closed = socketClosed.get(socket) ?? Promise.resolve()
      const finished = new Promise<'finished'>((resolve) => res.once('finish', () => resolve('finished')))
      const observed: ObservedRequest = {
        index: requests.length,
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: req.headers,
        body,
        text: body.toString('utf8'),
        json: () => JSON.parse(body.toString('utf8')),
        socket,
        closed,
        settled: Promise.race([finished, closed.then(() => 'closed' as const)]),
      }
      requests.push(observed)
      events.emit('request', observed)
      Promise.resolve()
        .then(() => handler(observed, res, socket))
        .catch(() => socket.destroy())
    })
  })
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    socketClosed.set(
      socket,
      new Promise((resolve) =>
        socket.once('close', () => {
          sockets.delete(socket)
          events.emit('connection-close', socket)
          resolve()
        }),
      ),
    )
  })
  server.on('clientError', (_error, socket) => socket.destroy())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const request = (n: number) => nth(events, 'request', requests, n)
  return {
    url,
    origin: url,
    requests,
    events,
    request,
    connectionClosed: (n) => request(n).then((observed) => observed.closed),
    settled: (n) => request(n).then((observed) => observed.settled),
    async close() {
      for (const socket of sockets) socket.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** One raw TCP connection to a `startRawServer` upstream. */
export interface RawConnection {
  readonly index: number
  readonly socket: Socket
  /** Every byte the peer sent so far. */
  received(): Buffer
  /** Resolves once a whole HTTP request (head, and body by content-length or chunked) has arrived. */
  readonly request: Promise<{ head: string; body: Buffer }>
  /** Resolves when the connection closes. */
  readonly closed: Promise<void>
}

export interface RawFaultServer {
  readonly url: string
  readonly origin: string
  readonly connections: RawConnection[]
  /** Emits `connection` (RawConnection) and `connection-close`. */
  readonly events: EventEmitter
  connection(n: number): Promise<RawConnection>
  connectionClosed(n: number): Promise<void>
  close(): Promise<void>
}

/**
 * A TCP upstream for byte-level faults: the handler gets each connection as it opens and writes (or
 * destroys) whatever it likes, e.g. a reset before any byte, or half a status line.
 *
 * @example
 * startRawServer(async (connection) => {
 *   await connection.request
 *   connection.socket.write('HTTP/1.1 200 OK\r\nContent-', () => connection.socket.destroy())
 * })
 */
export async function startRawServer(
  handler: (connection: RawConnection) => void | Promise<void>,
): Promise<RawFaultServer> {
  const events = new EventEmitter()
  events.setMaxListeners(0)
  const connections: RawConnection[] = []
  const sockets = new Set<Socket>()
  const server: Server = createNetServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    const chunks: Buffer[] = []
    const received = () => Buffer.concat(chunks)
    const closed = new Promise<void>((resolve) =>
      socket.once('close', () => {
        sockets.delete(socket)
        events.emit('connection-close', socket)
        resolve()
      }),
    )
    // Recorded first, so that the request check below sees the chunk that just came.
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    const request = new Promise<{ head: string; body: Buffer }>((resolve) => {
      const check = () => {
        const parsed = parseRequest(received())
        if (parsed === undefined) return
        socket.off('data', check)
        resolve(parsed)
      }
      socket.on('data', check)
    })
    const connection: RawConnection = { index: connections.length, socket, received, request, closed }
    connections.push(connection)
    events.emit('connection', connection)
    Promise.resolve()
      .then(() => handler(connection))
      .catch(() => socket.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const connection = (n: number) => nth(events, 'connection', connections, n)
  return {
    url,
    origin: url,
    connections,
    events,
    connection,
    connectionClosed: (n) => connection(n).then((c) => c.closed),
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

function nth<T>(events: EventEmitter, name: string, list: readonly T[], n: number): Promise<T> {
  const present = list[n]
  if (present !== undefined) return Promise.resolve(present)
  return new Promise((resolve) => {
    const onItem = () => {
      const item = list[n]
      if (item === undefined) return
      events.off(name, onItem)
      resolve(item)
    }
    events.on(name, onItem)
  })
}

/** A whole HTTP/1.1 request in `bytes`, or undefined while some of it is still to come. */
function parseRequest(bytes: Buffer): { head: string; body: Buffer } | undefined {
  const end = bytes.indexOf('\r\n\r\n')
  if (end === -1) return undefined
  const head = bytes.subarray(0, end).toString('latin1')
  const rest = bytes.subarray(end + 4)
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1]
  if (length !== undefined) {
    return rest.length >= Number(length) ? { head, body: rest.subarray(0, Number(length)) } : undefined
  }
  if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
    return rest.includes('0\r\n\r\n') ? { head, body: rest } : undefined
  }
  return { head, body: Buffer.alloc(0) }
}

// ---------------------------------------------------------------------------------------------------------
// Writers

/** Writes a chunk and resolves once it is handed to the socket (or the response is gone). */
export function writeAsync(res: ServerResponse | Socket, chunk: string | Buffer): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed || res.writableEnded) return resolve()
    res.write(chunk, () => resolve())
  })
}

/** Sends the status line and headers now, without any body byte. */
export function sendHeaders(res: ServerResponse, status: number, headers: Record<string, string>): void {
  res.writeHead(status, headers)
  res.flushHeaders()
}

/**
 * A JSON body without a length (chunked transfer encoding), written in the given pieces one after the other;
 * `end: false` leaves the response open after the last piece, as a provider still sending would.
 */
export async function writeChunked(
  res: ServerResponse,
  status: number,
  pieces: readonly (string | Buffer)[],
  options: { end?: boolean; headers?: Record<string, string> } = {},
): Promise<void> {
  res.writeHead(status, { 'content-type': 'application/json', ...options.headers })
  for (const piece of pieces) await writeAsync(res, piece)
  if (options.end !== false) res.end()
}

/** A whole body with its length. */
export function writeFixed(
  res: ServerResponse,
  status: number,
  body: string | Buffer,
  headers: Record<string, string> = { 'content-type': 'application/json' },
): void {
  res.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(body)) })
  res.end(body)
}

export const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }

/**
 * SSE events, each written (and flushed) on its own. `end: false` leaves the stream open after them.
 */
export async function writeEvents(
  res: ServerResponse,
  events: readonly string[],
  options: { end?: boolean; headers?: Record<string, string> } = {},
): Promise<void> {
  if (!res.headersSent) res.writeHead(200, { ...SSE_HEADERS, ...options.headers })
  for (const event of events) await writeAsync(res, event)
  if (options.end !== false) res.end()
}

/** Writes the pieces, then closes the connection (FIN) without ending the body: a cut mid-body. */
export async function cutAfter(res: ServerResponse, pieces: readonly (string | Buffer)[]): Promise<void> {
  for (const piece of pieces) await writeAsync(res, piece)
  res.socket?.destroy()
}

/**
 * Sends `text` one byte per `intervalMs`, over and over, until the connection closes (the returned promise
 * then resolves). Headers go out first.
 */
export function trickle(
  res: ServerResponse,
  text: string,
  intervalMs: number,
  headers: Record<string, string> = SSE_HEADERS,
): Promise<void> {
  if (!res.headersSent) sendHeaders(res, 200, headers)
  const bytes = Buffer.from(text)
  let position = 0
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (res.destroyed) return
      res.write(bytes.subarray(position, position + 1))
      position = (position + 1) % bytes.length
    }, intervalMs)
    res.once('close', () => {
      clearInterval(timer)
      resolve()
    })
  })
}

/**
 * Writes `next(i)` for i = 0, 1, 2, ... as fast as the reader takes them (waiting for `drain` when the
 * socket is full), until `total` bytes went out (then ends the response) or, without `total`, until the
 * connection closes. Resolves with the bytes written.
 */
export function pump(
  res: ServerResponse,
  next: (i: number) => string | Buffer,
  options: { total?: number; end?: boolean; onWrite?: (written: number) => void } = {},
): Promise<number> {
  let written = 0
  let i = 0
  return new Promise((resolve) => {
    const stop = () => resolve(written)
    res.once('close', stop)
    const loop = () => {
      while (!res.destroyed) {
        if (options.total !== undefined && written >= options.total) {
          if (options.end !== false) res.end()
          return
        }
        let chunk = next(i++)
        if (options.total !== undefined && written + chunk.length > options.total) {
          chunk = Buffer.from(chunk).subarray(0, options.total - written)
        }
        written += chunk.length
        const more = res.write(chunk)
        options.onWrite?.(written)
        if (!more) return void res.once('drain', loop)
      }
    }
    loop()
  })
}

// ---------------------------------------------------------------------------------------------------------
// SSE dialects

/** One OpenAI `chat.completion.chunk` event carrying `content`. */
export function openaiChunk(content: string, finish: string | null = null): string {
  const chunk = {
    id: 'chatcmpl-fault',
    object: 'chat.completion.chunk',
    created: 1_700_000_000,
    model: 'gpt-fault',
    choices: [{ index: 0, delta: { content }, finish_reason: finish }],
  }
  return `data: ${JSON.stringify(chunk)}\n\n`
}

export const OPENAI_DONE = 'data: [DONE]\n\n'

/** A whole OpenAI chat completion stream: one chunk per part, a finishing chunk, `[DONE]`. */
export function openaiStream(parts: readonly string[]): string[] {
  return [...parts.map((part) => openaiChunk(part)), openaiChunk('', 'stop'), OPENAI_DONE]
}

export function anthropicEvent(type: string, payload: Record<string, unknown> = {}): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, ...payload })}\n\n`
}

/** The opening events of an Anthropic Messages stream, up to the first content block's start. */
export function anthropicStart(model = 'claude-x'): string[] {
  const message = {
    id: 'msg_fault',
    type: 'message',
    role: 'assistant',
    model,
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage: { input_tokens: 3, output_tokens: 1 },
  }
  return [
    anthropicEvent('message_start', { message }),
    anthropicEvent('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
  ]
}

export function anthropicDelta(text: string): string {
  return anthropicEvent('content_block_delta', { index: 0, delta: { type: 'text_delta', text } })
}

/** The closing events of an Anthropic Messages stream, `message_stop` last. */
export function anthropicEnd(outputTokens = 2): string[] {
  return [
    anthropicEvent('content_block_stop', { index: 0 }),
    anthropicEvent('message_delta', {
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: { output_tokens: outputTokens },
    }),
    anthropicEvent('message_stop'),
  ]
}

/** A whole Anthropic Messages stream with one text delta per part. */
export function anthropicStream(parts: readonly string[]): string[] {
  return [...anthropicStart(), ...parts.map(anthropicDelta), ...anthropicEnd()]
}

/** A non-streamed Anthropic message. */
export function anthropicMessage(text: string): string {
  return JSON.stringify({
    id: 'msg_fault',
    type: 'message',
    role: 'assistant',
    model: 'claude-x',
    content: [{ type: 'text', text }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: 3, output_tokens: 2 },
  })
}

/** A non-streamed OpenAI chat completion. */
export function openaiCompletion(content: string): string {
  return JSON.stringify({
    id: 'chatcmpl-fault',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: 'gpt-fault',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
  })
}
