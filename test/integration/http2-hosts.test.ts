/**
 * The gateway on hosts that speak HTTP/2 (Fastify's `http2: true`, Node's compatibility API), reached with
 * `node:http2` as the client, against raw upstreams.
 */
import { type ClientHttp2Session, connect, type IncomingHttpHeaders } from 'node:http2'
import Fastify from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { aiGateway, aiGatewayAdmin } from '../../adapters/fastify.js'
import { createGateway, createMemoryLogStore, type Gateway } from '../../src/index.js'
import { type FaultServer, openaiCompletion, startFaultServer } from '../helpers/fault-server.js'

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
