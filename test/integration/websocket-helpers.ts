import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { type ClientOptions, type RawData, WebSocket, WebSocketServer } from 'ws'

/** A WebSocket that opened, or the HTTP answer its handshake got instead. */
export type Opened =
  | { readonly open: true; readonly socket: WebSocket; readonly messages: Inbox }
  | {
      readonly open: false
      readonly status: number
      readonly headers: IncomingMessage['headers']
      readonly body: string
    }

/**
 * Every message a socket received, parsed when it is JSON, with a way to wait for the one a test expects:
 * `next(predicate)` resolves with the first message (already received or still to come) that matches.
 */
export class Inbox {
  readonly all: unknown[] = []
  #waiters: { predicate: (message: unknown) => boolean; resolve: (message: unknown) => void }[] = []

  readonly #socket: WebSocket
  readonly #listener: (data: RawData) => void

  constructor(socket: WebSocket) {
    this.#socket = socket
    this.#listener = (data: RawData) => {
      const text = Buffer.isBuffer(data)
        ? data.toString('utf8')
        : Buffer.from(data as ArrayBuffer).toString('utf8')
      let message: unknown
      try {
        message = JSON.parse(text)
      } catch {
        message = text
      }
      this.all.push(message)
      for (const waiter of [...this.#waiters]) {
        if (!waiter.predicate(message)) continue
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
        waiter.resolve(message)
      }
    }
    socket.on('message', this.#listener)
  }

  /** Stops keeping messages (a test that counts a flood of them itself). */
  forget(): void {
    this.#socket.off('message', this.#listener)
  }

  /** The first message that matches, waiting for it if it has not come yet. */
  next<T = Record<string, unknown>>(predicate: (message: Record<string, unknown>) => boolean): Promise<T> {
    const test = (message: unknown) =>
      typeof message === 'object' && message !== null && predicate(message as Record<string, unknown>)
    const found = this.all.find(test)
    if (found !== undefined) return Promise.resolve(found as T)
    return new Promise((resolve) =>
      this.#waiters.push({ predicate: test, resolve: resolve as (m: unknown) => void }),
    )
  }

  /** The first message of any kind (a text frame that is not JSON as its text). */
  first(): Promise<unknown> {
    if (this.all.length > 0) return Promise.resolve(this.all[0])
    return new Promise((resolve) => this.#waiters.push({ predicate: () => true, resolve }))
  }

  /** The first message of this `type`. */
  type<T = Record<string, unknown>>(type: string): Promise<T> {
    return this.next<T>((message) => message.type === type)
  }

  /** Every message of this `type` received so far. */
  ofType(type: string): Record<string, unknown>[] {
    return this.all.filter(
      (message): message is Record<string, unknown> =>
        typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type,
    )
  }
}

/** Opens a WebSocket; resolves once it is open, or with the HTTP answer that refused it. */
export function open(url: string, protocols: string[] = [], options: ClientOptions = {}): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, protocols, options)
    const messages = new Inbox(socket)
    socket.once('open', () => resolve({ open: true, socket, messages }))
    socket.once('unexpected-response', (request, response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => {
        body += chunk
      })
      response.once('end', () => {
        request.destroy()
        resolve({ open: false, status: response.statusCode ?? 0, headers: response.headers, body })
      })
    })
    socket.on('error', (error) => reject(error))
  })
}

/** Opens a WebSocket that must open. */
export async function connect(url: string, protocols: string[] = [], options: ClientOptions = {}) {
  const opened = await open(url, protocols, options)
  if (!opened.open) throw new Error(`the handshake was refused with ${opened.status}: ${opened.body}`)
  return opened
}

/** Resolves with the close code and reason once the socket closed. */
export function closed(socket: WebSocket): Promise<{ code: number; reason: string }> {
  if (socket.readyState === WebSocket.CLOSED) return Promise.resolve({ code: 1006, reason: '' })
  return new Promise((resolve) => {
    socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() }))
  })
}

/**
 * The host's own WebSocket server on `path`, as hosts wire one beside the gateway's: it takes upgrades for
 * its path from the server's `upgrade` event and leaves the others. Each connection is greeted with `host:hello`.
 */
export function hostSockets(server: Pick<Server, 'on'>, path: string): WebSocketServer {
  const wss = new WebSocketServer({ noServer: true })
  wss.on('connection', (socket) => socket.send('host:hello'))
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (req.url !== path) return
    wss.handleUpgrade(req, socket, head, (client) => wss.emit('connection', client, req))
  })
  return wss
}

/** A universal-endpoint step for the mock's OpenAI chat completions. */
export function openaiStep(text: string, extra: Record<string, unknown> = {}) {
  return {
    provider: 'openai',
    endpoint: 'chat/completions',
    headers: {},
    query: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }], ...extra },
  }
}
