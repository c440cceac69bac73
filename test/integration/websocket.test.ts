import { createServer, type Server } from 'node:https'
import express from 'express'
import Fastify from 'fastify'
import Koa from 'koa'
import OpenAI from 'openai'
import { OpenAIRealtimeWS } from 'openai/realtime/ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { WebSocketServer } from 'ws'
import { attachWebSockets as attachExpress, aiGateway as expressGateway } from '../../adapters/express.js'
import { aiGateway as fastifyGateway } from '../../adapters/fastify.js'
import { attachWebSockets as attachKoa, aiGateway as koaGateway } from '../../adapters/koa.js'
import { createGateway, type Gateway, type LogRecord } from '../../src/index.js'
import { createMockProvider, type MockProvider } from '../../src/testing/index.js'
import { TLS_CERT, TLS_KEY } from '../fixtures/tls.js'
import { closed, connect, hostSockets, open, openaiStep } from './websocket-helpers.js'

const TOKEN = 'gw-token-websocket-0123456789'
const tls = { ca: TLS_CERT }

/** A host app over TLS with the gateway at `/ai`, its WebSockets wired, and a WebSocket server of its own at `/host-ws`. */
interface WsApp {
  /** `https://127.0.0.1:<port>` and `wss://127.0.0.1:<port>`. */
  url: string
  wsUrl: string
  close(): Promise<void>
}

type BuildWsApp = (gateway: Gateway) => Promise<WsApp>

function listening(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port))
  })
}

function closeAll(server: Server, host: WebSocketServer, gateway: Gateway): Promise<void> {
  return gateway.closeWebSockets().then(async () => {
    for (const client of host.clients) client.terminate()
    await new Promise((resolve) => host.close(resolve))
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
}

const buildExpress: BuildWsApp = async (gateway) => {
  const app = express()
  const ai = expressGateway(gateway)
  app.use('/ai', ai)
  const server = createServer({ key: TLS_KEY, cert: TLS_CERT }, app)
  attachExpress(server, ai, { prefix: '/ai' })
  const host = hostSockets(server, '/host-ws')
  const port = await listening(server)
  return {
    url: `https://127.0.0.1:${port}`,
    wsUrl: `wss://127.0.0.1:${port}`,
    close: () => closeAll(server, host, gateway),
  }
}

const buildKoa: BuildWsApp = async (gateway) => {
  const app = new Koa()
  const ai = koaGateway(gateway, { prefix: '/ai' })
  app.use(ai)
  const server = createServer({ key: TLS_KEY, cert: TLS_CERT }, app.callback())
  // The prefix comes from the middleware.
  attachKoa(server, ai)
  const host = hostSockets(server, '/host-ws')
  const port = await listening(server)
  return {
    url: `https://127.0.0.1:${port}`,
    wsUrl: `wss://127.0.0.1:${port}`,
    close: () => closeAll(server, host, gateway),
  }
}

const buildFastify: BuildWsApp = async (gateway) => {
  const app = Fastify({ https: { key: TLS_KEY, cert: TLS_CERT } })
  await app.register(fastifyGateway, { prefix: '/ai', gateway, websockets: true })
  const host = hostSockets(app.server as unknown as Server, '/host-ws')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return {
    url: `https://127.0.0.1:${port}`,
    wsUrl: `wss://127.0.0.1:${port}`,
    async close() {
      for (const client of host.clients) client.terminate()
      await new Promise((resolve) => host.close(resolve))
      // The plugin closes the gateway's sockets in preClose.
      await app.close()
    },
  }
}

/** The record the gateway logged for `id`, once its queue was written. */
async function record(gateway: Gateway, id: string): Promise<LogRecord> {
  await gateway.flushLogs()
  const found = await gateway.logs!.get(id)
  if (found === undefined) throw new Error(`no log record ${id}`)
  return found
}

/** One table of WebSocket scenarios, run against every framework so the adapters cannot drift apart. */
function runWebSocketScenarios(framework: string, build: BuildWsApp): void {
  describe(`${framework}: WebSockets`, () => {
    let mock: MockProvider
    let gateway: Gateway
    let app: WsApp

    beforeAll(async () => {
      mock = await createMockProvider({ keys: ['sk-stored', 'sk-ant-stored'] })
      gateway = createGateway({
        authentication: { tokens: [TOKEN] },
        providers: {
          openai: { apiKey: 'sk-stored', baseURL: `${mock.url}/v1` },
          anthropic: { apiKey: 'sk-ant-stored', baseURL: mock.url },
        },
        prices: { openai: { 'gpt-realtime': { input: 4, output: 16 } } },
        retries: { maxAttempts: 1 },
      })
      app = await build(gateway)
    })
    afterAll(async () => {
      await app.close()
      await gateway.close()
      await mock.close()
    })

    it("relays the OpenAI SDK's realtime client to the provider, with the stored key, and logs the session", async () => {
      const client = new OpenAI({ apiKey: TOKEN, baseURL: `${app.url}/ai/openai` })
      const rt = new OpenAIRealtimeWS({ model: 'gpt-realtime', options: tls }, client)
      const errors: unknown[] = []
      rt.on('error', (error) => errors.push(error))
      const opened = new Promise((resolve) => rt.socket.once('open', resolve))
      const created = new Promise<{ session: { model?: string } }>((resolve) =>
        rt.on('session.created', (event) => resolve(event as never)),
      )
      await opened
      expect((await created).session.model).toBe('gpt-realtime')
      const deltas: string[] = []
      rt.on('response.output_text.delta', (event) => deltas.push(event.delta))
      const done = new Promise<{ response: { usage?: { input_tokens?: number; output_tokens?: number } } }>(
        (resolve) => rt.on('response.done', (event) => resolve(event as never)),
      )
      rt.send({
        type: 'conversation.item.create',
        item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'hello there' }] },
      })
      rt.send({ type: 'response.create' })
      const answer = await done
      expect(deltas.join('')).toBe('mock reply to: hello there')
      expect(answer.response.usage).toMatchObject({ input_tokens: 3, output_tokens: 5 })
      const upstream = mock.realtime.sessions.at(-1)!
      // The gateway token never reaches the provider: the stored key goes in its place.
      expect(upstream.headers.authorization).toBe('Bearer sk-stored')
      expect(upstream.path).toBe('/v1/realtime')
      expect(upstream.query).toBe('?model=gpt-realtime')
      const ended = new Promise<{ id: string }>((resolve) => gateway.events.once('websocket:close', resolve))
      rt.close()
      const { id } = await ended
      const logged = await record(gateway, id)
      expect(logged).toMatchObject({
        provider: 'openai',
        model: 'gpt-realtime',
        path: '/openai/realtime',
        statusCode: 101,
        success: true,
        outcome: 'success',
        tokensIn: 3,
        tokensOut: 5,
        // 3 × $4 / 1M + 5 × $16 / 1M
        cost: 0.000092,
        requestBody: null,
        responseBody: null,
        websocket: { framesIn: 2, closeCode: 1000, closeReason: 'OK', closedBy: 'client' },
      })
      // session.created, conversation.item.created, response.created, 5 deltas, text done, response.done.
      expect(logged.websocket?.framesOut).toBe(10)
      expect(logged.requestSize).toBeGreaterThan(0)
      expect(logged.responseSize).toBeGreaterThan(logged.requestSize)
      expect(errors).toEqual([])
    })

    it('takes the gateway token as a subprotocol, answers with the provider’s subprotocol, and keeps the beta protocol', async () => {
      const { socket, messages } = await connect(
        `${app.wsUrl}/ai/openai?model=gpt-realtime`,
        ['realtime', `cf-aig-authorization.${TOKEN}`],
        { ...tls, headers: { 'openai-beta': 'realtime=v1' } },
      )
      expect(socket.protocol).toBe('realtime')
      await messages.type('session.created')
      socket.send(JSON.stringify({ type: 'response.create' }))
      await messages.type('response.done')
      expect(messages.ofType('response.text.delta').map((event) => event.delta)).toEqual(['mock ', 'reply'])
      const upstream = mock.realtime.sessions.at(-1)!
      // The token's subprotocol is the gateway's: never offered on.
      expect(upstream.protocols).toEqual(['realtime'])
      expect(upstream.headers['openai-beta']).toBe('realtime=v1')
      socket.close(4001, 'done here')
      expect(await upstream.closed).toEqual({ code: 4001, reason: 'done here' })
    })

    it('passes a close from the provider on to the client, code and reason', async () => {
      const { socket, messages } = await connect(`${app.wsUrl}/ai/openai?model=gpt-realtime`, [], {
        ...tls,
        headers: { 'cf-aig-authorization': `Bearer ${TOKEN}` },
      })
      await messages.type('session.created')
      mock.realtime.sessions.at(-1)!.close(4000, 'provider says bye')
      expect(await closed(socket)).toEqual({ code: 4000, reason: 'provider says bye' })
    })

    it('refuses an upgrade without a gateway token with 401 and code 2009, before reaching the provider', async () => {
      const sessions = mock.realtime.sessions.length
      const refused = await open(`${app.wsUrl}/ai/openai?model=gpt-realtime`, [], tls)
      expect(refused.open).toBe(false)
      if (refused.open) return
      expect(refused.status).toBe(401)
      expect(JSON.parse(refused.body)).toMatchObject({ error: [{ code: 2009, message: 'Unauthorized' }] })
      const universal = await open(`${app.wsUrl}/ai`, ['cf-aig-authorization.not-the-token-0000000'], tls)
      expect(universal.open ? 0 : universal.status).toBe(401)
      expect(mock.realtime.sessions).toHaveLength(sessions)
    })

    it('serves the universal endpoint over a socket: a whole answer and a stream in flight together', async () => {
      const { socket, messages } = await connect(`${app.wsUrl}/ai`, [], {
        ...tls,
        headers: { 'cf-aig-authorization': `Bearer ${TOKEN}` },
      })
      socket.send(
        JSON.stringify({
          type: 'universal.create',
          request: { eventId: 'streamed', ...openaiStep('stream it', { stream: true }) },
        }),
      )
      socket.send(
        JSON.stringify({ type: 'universal.create', request: { eventId: 'whole', ...openaiStep('whole') } }),
      )
      const whole = await messages.next(
        (m) => m.type === 'universal.created' && (m.metadata as { eventId: string }).eventId === 'whole',
      )
      expect(whole).toMatchObject({
        metadata: { cacheStatus: 'MISS', eventId: 'whole', step: '0', contentType: 'application/json' },
        response: { object: 'chat.completion', choices: [{ message: { content: 'mock reply to: whole' } }] },
      })
      const done = await messages.next(
        (m) => m.type === 'universal.done' && (m.metadata as { eventId: string }).eventId === 'streamed',
      )
      const started = messages.all.find(
        (m) =>
          (m as { type?: string; metadata?: { eventId?: string } }).type === 'universal.created' &&
          (m as { metadata: { eventId: string } }).metadata.eventId === 'streamed',
      ) as { metadata: Record<string, string>; response?: unknown }
      expect(started.metadata.contentType).toBe('text/event-stream')
      expect(started.response).toBeUndefined()
      const chunks = messages
        .ofType('universal.stream')
        .filter((m) => (m.metadata as { eventId: string }).eventId === 'streamed')
        .map((m) => m.response)
      expect(chunks.at(-1)).toBe('[DONE]')
      const text = chunks
        .slice(0, -1)
        .map(
          (chunk) =>
            (chunk as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '',
        )
        .join('')
      expect(text).toBe('mock reply to: stream it')
      const metadata = (done as { metadata: Record<string, string> }).metadata
      expect(metadata).toMatchObject({ eventId: 'streamed', step: '0', contentType: 'text/event-stream' })
      // Each request is logged by the pipeline, as over HTTP, with the client's event id.
      const logged = await record(gateway, metadata.logId!)
      expect(logged).toMatchObject({ eventId: 'streamed', provider: 'openai', outcome: 'success' })
      socket.close()
      await closed(socket)
    })

    it('falls back over a socket as over HTTP: a failing first step, the second answers', async () => {
      const { socket, messages } = await connect(`${app.wsUrl}/ai`, [`cf-aig-authorization.${TOKEN}`], tls)
      mock.enqueue({ status: 500 })
      socket.send(
        JSON.stringify({
          type: 'universal.create',
          request: [
            { eventId: 'fallback', ...openaiStep('first') },
            {
              provider: 'anthropic',
              endpoint: 'v1/messages',
              headers: {},
              query: {
                model: 'claude-sonnet-4-5',
                max_tokens: 64,
                messages: [{ role: 'user', content: 'second' }],
              },
            },
          ],
        }),
      )
      const created = await messages.type<{ metadata: Record<string, string>; response: unknown }>(
        'universal.created',
      )
      expect(created.metadata).toMatchObject({ eventId: 'fallback', step: '1' })
      expect(created.response).toMatchObject({
        type: 'message',
        content: [{ text: 'mock reply to: second' }],
      })
      const logged = await record(gateway, created.metadata.logId!)
      expect(logged.attemptLog?.map((attempt) => [attempt.provider, attempt.action])).toEqual([
        ['openai', 'fallback'],
        ['anthropic', 'answered'],
      ])
      socket.close()
      await closed(socket)
    })

    it('leaves upgrades off the mount to the host’s own WebSocket server', async () => {
      const { socket, messages } = await connect(`${app.wsUrl}/host-ws`, [], tls)
      expect(await messages.first()).toBe('host:hello')
      socket.close()
      await closed(socket)
    })

    it('refuses a universal socket on the long form naming another gateway with 400 and code 2001', async () => {
      const auth = { ...tls, headers: { 'cf-aig-authorization': `Bearer ${TOKEN}` } }
      const refused = await open(`${app.wsUrl}/ai/v1/acct/another-gateway`, [], auth)
      expect(refused.open ? 0 : refused.status).toBe(400)
      if (!refused.open) expect(JSON.parse(refused.body)).toMatchObject({ error: [{ code: 2001 }] })
      const { socket } = await connect(`${app.wsUrl}/ai/v1/acct/default`, [], auth)
      socket.close()
      await closed(socket)
    })

    it('refuses an upgrade to /compat with 400 and code 2134', async () => {
      const refused = await open(`${app.wsUrl}/ai/compat/chat/completions`, [], tls)
      expect(refused.open ? 0 : refused.status).toBe(400)
      if (!refused.open) expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 2134 } })
    })
  })
}

runWebSocketScenarios('express', buildExpress)
runWebSocketScenarios('koa', buildKoa)
runWebSocketScenarios('fastify', buildFastify)
