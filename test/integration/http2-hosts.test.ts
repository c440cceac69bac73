/**
 * The gateway on hosts that speak HTTP/2 (Fastify's `http2: true`, Node's compatibility API), reached with
 * `node:http2` as the client, against raw upstreams.
 */
import { once } from 'node:events'
import { createServer as createHttpServer } from 'node:http'
import {
  type ClientHttp2Session,
  connect,
  constants,
  createServer as createH2Server,
  type IncomingHttpHeaders,
} from 'node:http2'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import Koa from 'koa'
import { afterEach, describe, expect, it } from 'vitest'
import { aiGateway, aiGatewayAdmin } from '../../adapters/fastify.js'
import { aiGateway as koaGateway } from '../../adapters/koa.js'
import {
  attachWebSockets,
  createGateway,
  createMemoryLogStore,
  type Gateway,
  type RequestEndEvent,
} from '../../src/index.js'
import { type FaultServer, openaiCompletion, startFaultServer } from '../helpers/fault-server.js'
import { closeServer, serverUrl } from '../helpers/http.js'
import { observedLogStore } from '../helpers/log-store.js'

const CHAT = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })

interface H2Answer {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly text: string
}

function h2Request(session: ClientHttp2Session, headers: Record<string, string>, body?: string) {
  return new Promise<H2Answer>((resolve, reject) => {
    const stream = session.request(headers)
    let head: IncomingHttpHeaders = {}
    let text = ''
    stream.setEncoding('utf8')
    stream.on('response', (received) => {
      head = received
    })
    stream.on('data', (chunk: string) => {
      text += chunk
    })
    stream.on('end', () => resolve({ status: Number(head[':status']), headers: head, text }))
    stream.on('error', reject)
    stream.end(body)
  })
}

const opened: { close(): unknown }[] = []
afterEach(async () => {
  for (const thing of opened.splice(0).reverse()) await thing.close()
})

async function fastifyH2(gateway: Gateway): Promise<ClientHttp2Session> {
  const app = Fastify({ http2: true })
  await app.register(aiGateway, { prefix: '/ai', gateway })
  await app.listen({ port: 0, host: '127.0.0.1' })
  opened.push(app)
  const { port } = app.server.address() as { port: number }
  const session = connect(`http://127.0.0.1:${port}`)
  session.on('error', () => {})
  opened.push(session)
  return session
}

function gatewayFor(upstream: FaultServer): Gateway {
  const gateway = createGateway({
    providers: { openai: { apiKey: 'sk-test', baseURL: `${upstream.url}/v1` } },
    logs: false,
  })
  opened.push(gateway)
  return gateway
}

describe('fastify http2 (h2c): provider headers an HTTP/2 response may not carry', () => {
  it('leaves out http2-settings, which HTTP/2 refuses, and the client gets its answer', async () => {
    const upstream = await startFaultServer((_request, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'http2-settings': 'AAMAAABkAARAAAAA' })
      res.end(openaiCompletion('hello'))
    })
    opened.push(upstream)
    const session = await fastifyH2(gatewayFor(upstream))
    const answer = await h2Request(
      session,
      { ':method': 'POST', ':path': '/ai/openai/chat/completions', 'content-type': 'application/json' },
      CHAT,
    )
    expect(answer.status).toBe(200)
    expect(answer.headers['http2-settings']).toBeUndefined()
    expect(JSON.parse(answer.text).choices[0].message.content).toBe('hello')
  })
})

describe('fastify http2 (h2c): the admin dashboard', () => {
  const TOKEN = 'admin-token-0123456789abcdef'

  it('takes :authority for the host a browser sent to, where HTTP/2 has no host header', async () => {
    const app = Fastify({ http2: true })
    await app.register(aiGatewayAdmin, { prefix: '/ai-admin', logs: createMemoryLogStore(), token: TOKEN })
    await app.listen({ port: 0, host: '127.0.0.1' })
    opened.push(app)
    const { port } = app.server.address() as { port: number }
    const session = connect(`http://127.0.0.1:${port}`)
    session.on('error', () => {})
    opened.push(session)
    const login = (origin: string) =>
      h2Request(
        session,
        { ':method': 'POST', ':path': '/ai-admin/session', 'content-type': 'application/json', origin },
        JSON.stringify({ token: TOKEN }),
      )
    const sameOrigin = await login(`http://127.0.0.1:${port}`)
    expect(sameOrigin.status, sameOrigin.text).toBe(200)
    expect(sameOrigin.headers['set-cookie']).toBeDefined()
    const crossSite = await login('https://evil.example')
    expect(crossSite.status).toBe(403)
    expect(JSON.parse(crossSite.text)).toMatchObject({ internalCode: 2133 })
  })
})

describe('http2: a client that resets its stream while the host holds the request', () => {
  // The host holds each request until its client has left (a slow hook or middleware before the gateway),
  // calling `holding` once it holds one; the port it listens on is answered.
  const MOUNTS: Record<string, (gateway: Gateway, holding: () => void) => Promise<number>> = {
    async 'fastify (http2: true)'(gateway, holding) {
      const app = Fastify({ http2: true })
      app.addHook('onRequest', (_request, reply, done) => {
        reply.raw.once('close', () => done())
        holding()
      })
      await app.register(aiGateway, { prefix: '/ai', gateway })
      await app.listen({ port: 0, host: '127.0.0.1' })
      opened.push(app)
      return (app.server.address() as AddressInfo).port
    },
    async 'koa on node:http2'(gateway, holding) {
      const app = new Koa()
      app.use(async (ctx, next) => {
        const left = once(ctx.res, 'close')
        holding()
        await left
        await next()
      })
      app.use(koaGateway(gateway, { prefix: '/ai' }))
      const server = createH2Server(app.callback())
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      opened.push({ close: () => new Promise((resolve) => server.close(resolve)) })
      return (server.address() as AddressInfo).port
    },
  }

  for (const [name, mount] of Object.entries(MOUNTS)) {
    it(`${name}: ends it as aborted, logged, without calling the provider`, async () => {
      let providerCalls = 0
      const provider = createHttpServer((_req, res) => {
        providerCalls++
        res.writeHead(500).end()
      })
      provider.listen(0, '127.0.0.1')
      await once(provider, 'listening')
      opened.push({ close: () => closeServer(provider) })
      const store = observedLogStore()
      const gateway = createGateway({
        providers: { openai: { apiKey: 'sk-test', baseURL: `${serverUrl(provider)}/v1` } },
        logs: { store },
      })
      opened.push(gateway)
      const ended = new Promise<RequestEndEvent>((resolve) => gateway.events.once('request:end', resolve))
      let held!: () => void
      const holding = new Promise<void>((resolve) => {
        held = resolve
      })
      const port = await mount(gateway, held)
      const session = connect(`http://127.0.0.1:${port}`)
      session.on('error', () => {})
      opened.push(session)
      const stream = session.request({
        ':method': 'POST',
        ':path': '/ai/openai/chat/completions',
        'content-type': 'application/json',
      })
      stream.on('error', () => {})
      stream.end(CHAT)
      await holding
      stream.close(constants.NGHTTP2_CANCEL)
      const end = await ended
      expect(end).toMatchObject({ status: 499, outcome: 'aborted' })
      await gateway.flushLogs()
      expect(await store.written(end.id)).toMatchObject({ statusCode: 499, outcome: 'aborted' })
      expect(providerCalls).toBe(0)
    })
  }
})

describe('fastify http2 (h2c): a client that resets its stream while the provider has not answered', () => {
  it('cancels the provider call and ends the request as aborted', async () => {
    // The provider never answers: only the client's leaving can end the call.
    const upstream = await startFaultServer(() => {})
    opened.push(upstream)
    const gateway = gatewayFor(upstream)
    const ended = new Promise<RequestEndEvent>((resolve) => gateway.events.once('request:end', resolve))
    const session = await fastifyH2(gateway)
    const stream = session.request({
      ':method': 'POST',
      ':path': '/ai/openai/chat/completions',
      'content-type': 'application/json',
    })
    stream.on('error', () => {})
    stream.end(CHAT)
    await upstream.request(0)
    stream.close(constants.NGHTTP2_CANCEL)
    await upstream.connectionClosed(0)
    expect(await ended).toMatchObject({ status: 499, outcome: 'aborted' })
  })
})

describe('http2 without TLS (h2c): WebSockets', () => {
  // h2c speaks nothing but HTTP/2, where a WebSocket's HTTP/1.1 upgrade never arrives.
  it('refuses to attach, saying why, rather than wait for upgrades that never come', async () => {
    const gateway = createGateway({ logs: false })
    opened.push(gateway)
    expect(() => attachWebSockets(createH2Server(), gateway)).toThrow(/without TLS \(h2c\)/)
    const app = Fastify({ http2: true })
    opened.push(app)
    await expect(app.register(aiGateway, { prefix: '/ai', gateway, websockets: true })).rejects.toThrow(
      /cannot serve WebSockets/,
    )
  })
})

describe('fastify http2 (h2c): an upload past the limit', () => {
  it('answers 413 at once, and the client that keeps sending gets its answer and its stream closed', async () => {
    const gateway = createGateway({
      providers: { openai: { apiKey: 'sk-test', baseURL: 'http://127.0.0.1:1/v1' } },
      logs: false,
      maxBodyBytes: 1024 * 1024,
    })
    opened.push(gateway)
    const session = await fastifyH2(gateway)
    const stream = session.request({
      ':method': 'POST',
      ':path': '/ai/openai/chat/completions',
      'content-type': 'application/json',
    })
    stream.on('error', () => {})
    let status: number | undefined
    let text = ''
    stream.setEncoding('utf8')
    stream.on('response', (headers) => {
      status = Number(headers[':status'])
    })
    stream.on('data', (chunk: string) => {
      text += chunk
    })
    const closed = once(stream, 'close')
    // Eight times the limit, more than the gateway reads and throws away: it stops the upload.
    const chunk = Buffer.alloc(64 * 1024, 'a')
    let sent = 0
    const pump = () => {
      while (sent < 8 * 1024 * 1024 && !stream.destroyed && status === undefined) {
        sent += chunk.length
        if (!stream.write(chunk)) return void stream.once('drain', pump)
      }
      stream.end()
    }
    pump()
    await closed
    expect(status).toBe(413)
    expect(JSON.parse(text)).toMatchObject({ internalCode: 2101 })
  })
})
