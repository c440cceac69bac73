import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { connect, type Socket } from 'node:net'
import express5 from 'express'
import express4 from 'express4'
import Fastify from 'fastify'
import Koa3 from 'koa'
import Koa2 from 'koa2'
import OpenAI from 'openai'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { aiGateway as expressGateway } from '../../adapters/express.js'
import { aiGateway as fastifyGateway } from '../../adapters/fastify.js'
import { aiGateway as koaGateway } from '../../adapters/koa.js'
import { createGateway, type Gateway } from '../../src/index.js'
import { discardBound } from '../../src/node/request.js'
import { closeServer, serverUrl } from '../helpers/http.js'

// An oversize upload (issue item 10) must read as a 413, not as a connection error: a client still sending
// a body over `maxBodyBytes` gets the whole 413 (code 2101) and no EPIPE / ECONNRESET, so SDKs do not retry
// it; one that sends on past the drain bound has its connection cut.

const MiB = 1024 * 1024
const LIMIT = 10 * MiB // the default maxBodyBytes
const CHAT = '/ai/openai/chat/completions'

/** An 11 MiB chat request: valid JSON, one long user message. */
function oversizeChat(bytes = 11 * MiB): Buffer {
  const head = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"'
  const tail = '"}]}'
  return Buffer.from(head + 'x'.repeat(bytes - head.length - tail.length) + tail)
}
const BIG = oversizeChat()

/** A raw upstream that counts calls; nothing oversize may ever reach it. */
let upstream: { url: string; calls: number; close(): Promise<void> }

beforeAll(async () => {
  const server: Server = createServer((req, res) => {
    upstream.calls++
    req.resume()
    req.on('end', () => {
      const answer = JSON.stringify({
        id: 'chatcmpl-1',
        object: 'chat.completion',
        created: 1,
        model: 'gpt-4o-mini',
        choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
      })
      res.writeHead(200, { 'content-type': 'application/json' }).end(answer)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  upstream = { url: serverUrl(server), calls: 0, close: () => closeServer(server) }
})
afterAll(() => upstream.close())

interface App {
  url: string
  gateway: Gateway
  close(): Promise<void>
}

/** Every app mounts the gateway at `/ai` and answers `GET /health` itself with `ok`. */
type Build = (gateway: Gateway) => Promise<Omit<App, 'gateway'>>

function expressApp(express: typeof express5): Build {
  return async (gateway) => {
    const app = express()
    app.use('/ai', expressGateway(gateway))
    app.get('/health', (_req, res) => {
      res.send('ok')
    })
    const server = app.listen(0, '127.0.0.1')
    await once(server, 'listening')
    return { url: serverUrl(server), close: () => closeServer(server) }
  }
}

function koaApp(Koa: typeof Koa3): Build {
  return async (gateway) => {
    const app = new Koa()
    app.use(koaGateway(gateway, { prefix: '/ai' }))
    app.use((ctx) => {
      if (ctx.path === '/health') ctx.body = 'ok'
    })
    const server = app.listen(0, '127.0.0.1')
    await once(server, 'listening')
    return { url: serverUrl(server), close: () => closeServer(server) }
  }
}

const fastifyApp: Build = async (gateway) => {
  const app = Fastify()
  await app.register(fastifyGateway, { prefix: '/ai', gateway })
  app.get('/health', async () => 'ok')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      app.server.closeAllConnections()
      await app.close()
    },
  }
}

const frameworks: [string, Build][] = [
  ['express 5', expressApp(express5)],
  ['express 4', expressApp(express4)],
  ['koa 3', koaApp(Koa3)],
  ['koa 2', koaApp(Koa2)],
  ['fastify 5', fastifyApp],
]

interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
}

/** Parses one complete HTTP/1.1 response framed by content-length from the front of `data`, if it is all there. */
function parseResponse(data: Buffer): { response: RawResponse; rest: Buffer } | undefined {
  const end = data.indexOf('\r\n\r\n')
  if (end === -1) return undefined
  const [statusLine = '', ...lines] = data.subarray(0, end).toString('latin1').split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  const length = Number(headers['content-length'])
  if (!Number.isInteger(length)) throw new Error(`no content-length in ${statusLine}`)
  if (data.length < end + 4 + length) return undefined
  const body = data.subarray(end + 4, end + 4 + length).toString('utf8')
  return {
    response: { status: Number(statusLine.split(' ')[1]), headers, body },
    rest: data.subarray(end + 4 + length),
  }
}

/**
 * A raw client on `node:net`: sends the head, then the body chunks as fast as the connection takes them
 * (honouring backpressure), while reading what comes back. Nothing here waits on a clock: every step waits
 * for an event (a drain, the response, the close).
 */
class RawClient {
  readonly socket: Socket
  received: Buffer = Buffer.alloc(0)
  written = 0
  error: (Error & { code?: string }) | undefined
  readonly closed: Promise<void>
  #wake: (() => void) | undefined

  constructor(url: string) {
    const { hostname, port } = new URL(url)
    this.socket = connect(Number(port), hostname)
    this.socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk])
      this.#wake?.()
    })
    this.socket.on('error', (error) => {
      this.error = error
    })
    // Not events.once: it rejects on 'error', and a reset is an outcome some tests wait for.
    this.closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve())).then(() =>
      this.#wake?.(),
    )
  }

  /** Writes every chunk, waiting for `drain` when the connection pushes back; stops early if it closes. */
  async send(chunks: Iterable<Buffer | string>): Promise<void> {
    for (const chunk of chunks) {
      if (this.socket.destroyed) return
      this.written += Buffer.byteLength(chunk)
      if (!this.socket.write(chunk)) {
        await Promise.race([new Promise((resolve) => this.socket.once('drain', resolve)), this.closed])
      }
    }
    if (this.socket.destroyed) return
    // Resolves once the kernel has taken the last bytes.
    await new Promise<void>((resolve) => this.socket.write('', () => resolve()))
  }

  /** The next complete response on the connection (resolves `undefined` if it closes first). */
  async response(): Promise<RawResponse | undefined> {
    for (;;) {
      const parsed = parseResponse(this.received)
      if (parsed !== undefined) {
        this.received = parsed.rest
        return parsed.response
      }
      if (this.socket.destroyed) return undefined
      await new Promise<void>((resolve) => {
        this.#wake = resolve
      })
    }
  }

  async end(): Promise<void> {
    this.socket.end()
    await this.closed
  }
}

function head(url: string, lines: string[]): string {
  return [`POST ${CHAT} HTTP/1.1`, `host: ${new URL(url).host}`, ...lines, '', ''].join('\r\n')
}

function* slices(buffer: Buffer, size = 256 * 1024): Generator<Buffer> {
  for (let at = 0; at < buffer.length; at += size) yield buffer.subarray(at, at + size)
}

function* chunked(buffer: Buffer): Generator<Buffer | string> {
  for (const slice of slices(buffer)) {
    yield `${slice.length.toString(16)}\r\n`
    yield slice
    yield '\r\n'
  }
  yield '0\r\n\r\n'
}

function expect413(response: RawResponse | undefined): void {
  expect(response?.status).toBe(413)
  expect(response?.headers['content-type']).toBe('application/json')
  expect(JSON.parse(response!.body)).toMatchObject({
    success: false,
    error: [{ code: 2101, message: expect.stringContaining('Request body too large') }],
  })
}

for (const [framework, build] of frameworks) {
  describe(`${framework}: an oversize upload`, () => {
    let app: App
    let started = 0

    beforeAll(async () => {
      const gateway = createGateway({
        providers: { openai: { apiKey: 'sk-stored', baseURL: `${upstream.url}/v1` } },
      })
      gateway.events.on('request:start', () => {
        started++
      })
      const running = await build(gateway)
      app = { ...running, gateway, close: () => running.close().then(() => gateway.close()) }
    })
    afterAll(() => app.close())

    it('undici: 11 MiB with content-length gets a complete 413 with code 2101', async () => {
      const calls = upstream.calls
      const response = await request(`${app.url}${CHAT}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: BIG,
      })
      expect(response.statusCode).toBe(413)
      expect(await response.body.json()).toMatchObject({ error: [{ code: 2101 }] })
      expect(upstream.calls).toBe(calls)
    })

    it('raw client: 11 MiB with content-length, sent whole, then the 413; the connection stays usable', async () => {
      const calls = upstream.calls
      const client = new RawClient(app.url)
      await client.send([head(app.url, ['content-type: application/json', `content-length: ${BIG.length}`])])
      await client.send(slices(BIG))
      expect(client.written).toBeGreaterThan(BIG.length)
      expect413(await client.response())
      expect(client.error).toBeUndefined()
      // The whole upload was read off the connection: the next request on it is answered normally.
      await client.send([`GET /health HTTP/1.1\r\nhost: ${new URL(app.url).host}\r\n\r\n`])
      const health = await client.response()
      expect(health?.status).toBe(200)
      expect(health?.body).toBe('ok')
      await client.end()
      expect(client.error).toBeUndefined()
      expect(upstream.calls).toBe(calls)
    })

    it('raw client: 11 MiB with content-length and connection: close gets the 413, then a clean close', async () => {
      const client = new RawClient(app.url)
      await client.send([
        head(app.url, [
          'content-type: application/json',
          `content-length: ${BIG.length}`,
          'connection: close',
        ]),
      ])
      await client.send(slices(BIG))
      expect413(await client.response())
      expect(client.received.length).toBe(0)
      await client.closed
      expect(client.error).toBeUndefined()
    })

    it('raw client: 11 MiB chunked gets a complete 413 with code 2101', async () => {
      const calls = upstream.calls
      const client = new RawClient(app.url)
      await client.send([head(app.url, ['content-type: application/json', 'transfer-encoding: chunked'])])
      await client.send(chunked(BIG))
      expect413(await client.response())
      expect(client.error).toBeUndefined()
      // Read to its last chunk: the connection is still good for the next request.
      await client.send([`GET /health HTTP/1.1\r\nhost: ${new URL(app.url).host}\r\n\r\n`])
      expect((await client.response())?.body).toBe('ok')
      await client.end()
      expect(client.error).toBeUndefined()
      expect(upstream.calls).toBe(calls)
    })

    for (const connection of ['keep-alive', 'close']) {
      it(`raw client: declaring 1 GiB and sending on, it is cut off past the bound (connection: ${connection})`, async () => {
        const client = new RawClient(app.url)
        const chunk = Buffer.alloc(MiB, 'x')
        await client.send([
          head(app.url, [
            'content-type: application/json',
            `content-length: ${1024 * MiB}`,
            `connection: ${connection}`,
          ]),
        ])
        // At most 1 GiB: the server must close long before.
        await client.send(
          (function* () {
            for (let i = 0; i < 1024; i++) yield chunk
          })(),
        )
        await client.closed
        expect(client.written).toBeGreaterThan(discardBound(LIMIT))
        expect(client.written).toBeLessThan(1024 * MiB)
        if (connection === 'keep-alive') {
          // The 413 went out before the drain began, so a client that reads as it sends has it.
          expect(client.received.toString('latin1')).toMatch(/^HTTP\/1\.1 413 /)
        }
      })
    }

    if (framework === 'express 5') {
      it('OpenAI SDK (maxRetries: 2): an oversize chat is an APIError 413, not retried', async () => {
        const calls = upstream.calls
        const before = started
        const client = new OpenAI({ baseURL: `${app.url}/ai/openai`, apiKey: 'sk-client', maxRetries: 2 })
        const error = await client.chat.completions
          .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(11 * MiB) }] })
          .then(
            () => undefined,
            (caught: unknown) => caught,
          )
        expect(error).toBeInstanceOf(OpenAI.APIError)
        expect(error).not.toBeInstanceOf(OpenAI.APIConnectionError)
        expect((error as InstanceType<typeof OpenAI.APIError>).status).toBe(413)
        expect(started - before).toBe(1)
        expect(upstream.calls).toBe(calls)
      })
    }
  })
}

describe('discardBound', () => {
  it('is 4 × the limit, never under 4 MiB', () => {
    expect(discardBound(LIMIT)).toBe(40 * MiB)
    expect(discardBound(1024)).toBe(4 * MiB)
  })
})
