import type { IncomingMessage, ServerResponse } from 'node:http'
import { GatewayError } from '../errors.js'
import type { BodyReader, GatewayRequest } from '../types.js'
import { splitQuery } from '../url.js'
import { isGone, isWrittenWhole } from './response.js'

export interface NodeRequestOptions {
  /** Request target relative to the mount point, with its query string (Express's `req.url`, say). */
  url: string
  /** The body a host parser already produced (`req.body`, `ctx.request.body`), if any. */
  hostBody?: unknown
  /** The exact bytes a host parser kept (`ctx.request.rawBody`, a `verify` hook's copy), if any. */
  rawBody?: unknown
  /** The framework's own request object (Express `req`, Koa `ctx`, Fastify `request`), handed to `identify`. */
  host?: unknown
  /** A host parser refused the body: reading it rejects with this (the core answers through its error path). */
  bodyError?: unknown
  /** The bytes are no longer as encoded (a host parser inflated them): `content-encoding` is left out. */
  decoded?: boolean
  /** The request target before the host's router took the mount point off (Express's `req.originalUrl`). */
  originalUrl?: string | undefined
}

/**
 * Builds the core's request from Node's. The body is not read here: the core reads it only if the path is
 * the gateway's and a step needs it. The client closing its connection before the response is finished
 * cancels the upstream call: the response's own `close` tells it (`onClientClose`), and `signal` is made
 * only when a step asks for it, since an AbortController per request is a measurable share of the gateway's
 * own time.
 */
export function toGatewayRequest(
  req: IncomingMessage,
  res: ServerResponse,
  options: NodeRequestOptions,
): GatewayRequest {
  return new NodeGatewayRequest(req, res, options)
}

// A class rather than an object literal with getters: Node 20's V8 builds such a literal on a slow path
// (about a microsecond per request), where a class keeps its getters on the prototype.
class NodeGatewayRequest implements GatewayRequest {
  readonly method: string
  readonly path: string
  readonly search: string
  readonly headers: GatewayRequest['headers']
  readonly body: BodyReader
  readonly ip: string | undefined
  readonly host: unknown
  readonly originalUrl: string | undefined
  readonly secure: boolean
  readonly #close: ClientClose

  constructor(req: IncomingMessage, res: ServerResponse, options: NodeRequestOptions) {
    this.#close = new ClientClose(res)
    const { path, search } = splitQuery(options.url)
    const consumed = isConsumed(req)
    const usesHostBody = options.rawBody === undefined && consumed
    const { bodyError } = options
    this.method = req.method ?? 'GET'
    this.path = path
    this.search = search
    // A host parser inflates what it reads, and the bytes it keeps (`verify`'s buffer, co-body's
    // `rawBody`) are the inflated ones too: once it read the body, the encoding no longer describes it.
    this.headers =
      consumed || options.decoded ? withoutEncoding(req.headers) : (req.headers as GatewayRequest['headers'])
    this.body =
      bodyError === undefined ? bodyReader(req, res, options, usesHostBody) : () => Promise.reject(bodyError)
    this.ip = req.socket.remoteAddress
    this.host = options.host ?? req
    this.originalUrl = options.originalUrl
    this.secure = (req.socket as { encrypted?: boolean }).encrypted === true
  }

  get signal(): AbortSignal {
    return this.#close.signal
  }

  get clientClosed(): boolean {
    return this.#close.closed
  }

  onClientClose(listener: () => void): () => void {
    return this.#close.listen(listener)
  }
}

/** Whether, and when, the client left before its response was finished. */
class ClientClose {
  closed = false
  #controller: AbortController | undefined
  #listeners: (() => void)[] = []

  constructor(res: ServerResponse) {
    // A host may hold a request before it reaches the gateway (a slow middleware, say): its client may have
    // left already, and the response said `close` then, before anything here listened.
    if (isGone(res) && !isWrittenWhole(res)) {
      this.closed = true
      return
    }
    // `on`: a response closes once, and `once` would add a wrapper and a removal to every request.
    res.on('close', () => {
      if (isWrittenWhole(res)) return
      this.closed = true
      this.#controller?.abort()
      const listeners = this.#listeners
      this.#listeners = []
      for (const listener of listeners) listener()
    })
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController()
      if (this.closed) this.#controller.abort()
    }
    return this.#controller.signal
  }

  listen(listener: () => void): () => void {
    if (this.closed) {
      listener()
      return () => {}
    }
    this.#listeners.push(listener)
    return () => {
      const at = this.#listeners.indexOf(listener)
      if (at !== -1) this.#listeners.splice(at, 1)
    }
  }
}

/**
 * Where the body bytes come from: kept raw bytes first (exact), then a host parser's result when the parser
 * already drained the stream (re-serialised, so formatting may differ but content does not), else the
 * stream itself, read up to the limit.
 */
function bodyReader(
  req: IncomingMessage,
  res: ServerResponse,
  options: NodeRequestOptions,
  usesHostBody: boolean,
): BodyReader {
  // Bytes at hand are returned as they are, not in a promise: the core then takes them in the same turn.
  if (isBytes(options.rawBody)) {
    const raw = options.rawBody
    return () => (typeof raw === 'string' ? Buffer.from(raw) : raw)
  }
  if (usesHostBody) {
    const { hostBody } = options
    // Something in front of the gateway read the body and kept it where the gateway cannot see it (a
    // request logger, a parser of its own): sending the request on without it would be a wrong request.
    if ((hostBody === undefined || hostBody === null) && declaresBody(req)) {
      return () => Promise.reject(new GatewayError('INTERNAL', BODY_READ_BEFORE))
    }
    return () => serializeHostBody(hostBody, req.headers['content-type'])
  }
  return (limitBytes) => readStream(req, res, limitBytes)
}

const BODY_READ_BEFORE =
  "the request body was read before the gateway and kept neither as the host's parsed body nor as its raw bytes (req.rawBody)"

function declaresBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  return length === undefined ? req.headers['transfer-encoding'] !== undefined : Number(length) > 0
}

function isBytes(value: unknown): value is string | Uint8Array {
  return typeof value === 'string' || value instanceof Uint8Array
}

function isConsumed(req: IncomingMessage): boolean {
  // body-parser marks `_body`; every parser leaves the stream ended.
  return req.readableEnded || (req as { _body?: unknown })._body === true
}

function serializeHostBody(body: unknown, contentType: string | undefined): Uint8Array | undefined {
  if (body === undefined || body === null) return undefined
  if (isBytes(body)) return typeof body === 'string' ? Buffer.from(body) : body
  if (contentType?.includes('application/x-www-form-urlencoded')) {
    return Buffer.from(new URLSearchParams(body as Record<string, string>).toString())
  }
  return Buffer.from(JSON.stringify(body))
}

// A parser that inflated a gzip body leaves decoded bytes: the encoding header no longer describes them.
function withoutEncoding(headers: IncomingMessage['headers']): GatewayRequest['headers'] {
  if (headers['content-encoding'] === undefined) return headers as GatewayRequest['headers']
  const { 'content-encoding': _dropped, ...rest } = headers
  return rest as GatewayRequest['headers']
}

const MiB = 1024 * 1024

/**
 * How many body bytes in all an oversized upload may run to before its connection is cut: 4 × the limit,
 * and never less than 4 MiB (40 MiB under the default 10 MiB `maxBodyBytes`). Up to it, the rest of the
 * upload is read and thrown away after the 413, so a client that sends the whole body before it reads the
 * answer gets the 413 instead of a reset connection; past it, the connection is destroyed. Node's own
 * draining of an unread body (`IncomingMessage._dump`) has no bound at all, so the gateway never leaves
 * it to Node.
 *
 * @example
 * discardBound(10 * 1024 * 1024) // 41943040
 */
export function discardBound(limitBytes: number): number {
  return Math.max(4 * limitBytes, 4 * MiB)
}

/**
 * Reads the request stream up to the limit. Over it, it refuses: at once when the declared length says
 * so (before reading a byte), else as soon as the bytes read pass the limit. Either way the rest of the
 * upload is then drained (see `discardBound`).
 */
function readStream(
  req: IncomingMessage,
  res: ServerResponse,
  limitBytes: number,
): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const refuse = (received: number) => {
      const error = new GatewayError('BODY_TOO_LARGE', `the limit is ${limitBytes} bytes`)
      const drained = discardRest(req, discardBound(limitBytes) - received)
      // On a connection that stays open the 413 goes out at once, while the upload drains behind it (a
      // client that reads as it sends stops early). Node closes any other connection as soon as the answer
      // is written, which resets it while bytes are still coming, so there the 413 waits for the drain.
      if (closesAfterResponse(res)) void drained.then(() => reject(error))
      else reject(error)
    }
    if (Number(req.headers['content-length']) > limitBytes) return refuse(0)
    if (req.readableEnded) return resolve(undefined)
    // The client left before anything read the body (a step before it waited on a host's lookup, say):
    // the stream is destroyed and has said `close` already, so no event below would ever come.
    if (req.destroyed) return reject(new GatewayError('CLIENT_CLOSED'))
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > limitBytes) {
        cleanup()
        chunks.length = 0
        refuse(size)
        return
      }
      chunks.push(chunk)
    }
    // Once the body ended the listeners stay: no data or end can follow, a later close or error finds the
    // promise settled, and taking four listeners off a stream on every request cost some 4k instructions.
    const onEnd = () => {
      resolve(size === 0 ? undefined : Buffer.concat(chunks, size))
      chunks.length = 0
    }
    const onClose = () => {
      if (req.readableEnded) return
      cleanup()
      reject(new GatewayError('CLIENT_CLOSED'))
    }
    const cleanup = () => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onClose)
      req.off('close', onClose)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onClose)
    req.on('close', onClose)
  })
}

/**
 * Reads the rest of the request and throws it away, at most `budget` more bytes; past that it destroys
 * the connection. Resolves when the request has ended or its connection is gone. Reading it here also
 * keeps Node from draining it itself after the response (unbounded) or leaving it unread (the client
 * stalls until a timeout).
 */
function discardRest(req: IncomingMessage, budget: number): Promise<void> {
  return new Promise((resolve) => {
    if (req.readableEnded || req.destroyed) return resolve()
    if (budget < 0) {
      req.socket?.destroy()
      return resolve()
    }
    let left = budget
    const onData = (chunk: Buffer) => {
      left -= chunk.length
      if (left >= 0) return
      done()
      req.socket?.destroy()
    }
    const done = () => {
      req.off('data', onData)
      req.off('end', done)
      req.off('close', done)
      req.off('error', ignore)
      resolve()
    }
    req.on('data', onData)
    req.once('end', done)
    req.once('close', done)
    // A client that gives up mid-upload is not an error here: the answer is already a 413.
    req.on('error', ignore)
    req.resume()
  })
}

function ignore(): void {}

/** Whether Node ends the connection once this response is written (an HTTP/1.0 or `Connection: close` client). */
function closesAfterResponse(res: ServerResponse): boolean {
  // HTTP/2's compatibility response has no `shouldKeepAlive`: an answer there ends its own stream, never
  // the connection, and the client may stop sending once it has it.
  if (res.shouldKeepAlive === undefined) return false
  if (!res.shouldKeepAlive) return true
  const connection = res.getHeader('connection')
  return typeof connection === 'string' && /\bclose\b/i.test(connection)
}

/**
 * The request target below `prefix`, or `undefined` when the request is outside it. `/ai` matches `/ai`,
 * `/ai/...` and `/ai?...`, never `/aix`.
 */
export function relativeUrl(url: string, prefix: string): string | undefined {
  if (prefix === '' || prefix === '/') return url
  if (!url.startsWith(prefix)) return undefined
  const rest = url.slice(prefix.length)
  if (rest === '') return '/'
  if (rest[0] === '/') return rest
  if (rest[0] === '?') return `/${rest}`
  return undefined
}

/** `'/ai/'` → `'/ai'`; `''` and `'/'` → `''`. */
export function normalizePrefix(prefix: string | undefined): string {
  if (!prefix || prefix === '/') return ''
  const withSlash = prefix.startsWith('/') ? prefix : `/${prefix}`
  return withSlash.endsWith('/') ? withSlash.slice(0, -1) : withSlash
}
