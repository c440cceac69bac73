import { createServer, type IncomingMessage, type Server } from 'node:http'
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { WebSocket, WebSocketServer } from 'ws'
import {
  attachWebSockets,
  CLOSE_CODES,
  createGateway,
  type Gateway,
  type GatewayOptions,
  type LogRecord,
  type RequestEndEvent,
  type Step,
  type WebSocketBackpressureEvent,
  type WebSocketCloseEvent,
} from '../../src/index.js'
import { createMockProvider, type MockProvider } from '../../src/testing/index.js'
import { startFaultServer, startRawServer } from '../helpers/fault-server.js'
import { collectGarbage } from '../helpers/gc.js'
import { closed, connect, open, openaiStep } from './websocket-helpers.js'

const LIVE_PATH = '/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent'

/** A plain Node server whose only handler is the gateway's WebSockets, at `/ai`. */
interface Running {
  gateway: Gateway
  url: string
  close(): Promise<void>
}

describe('WebSocket sessions: metering, limits and what a socket may hold', () => {
  let mock: MockProvider
  const running: Running[] = []

  async function start(options: GatewayOptions = {}): Promise<Running> {
    const gateway = createGateway({
      providers: {
        openai: { apiKey: 'sk-stored', baseURL: `${mock.url}/v1` },
        'google-ai-studio': { apiKey: 'goog-stored', baseURL: mock.url },
      },
      ...options,
    })
    const server: Server = createServer((_req, res) => res.writeHead(404).end())
    attachWebSockets(server, gateway, { prefix: '/ai' })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    const app: Running = {
      gateway,
      url: `ws://127.0.0.1:${port}/ai`,
      async close() {
        await gateway.close()
        server.closeAllConnections()
        await new Promise((resolve) => server.close(resolve))
      },
    }
    running.push(app)
    return app
  }

  function nextClose(gateway: Gateway): Promise<WebSocketCloseEvent> {
    return new Promise((resolve) => gateway.events.once('websocket:close', resolve))
  }

  async function record(gateway: Gateway, id: string): Promise<LogRecord> {
    await gateway.flushLogs()
    const found = await gateway.logs!.get(id)
    if (found === undefined) throw new Error(`no log record ${id}`)
    return found
  }

  beforeAll(async () => {
    mock = await createMockProvider()
  })
  afterEach(async () => {
    await Promise.all(running.splice(0).map((app) => app.close()))
    mock.reset()
  })
  afterAll(() => mock.close())

  it('closes a session that runs past its budget with 4429, and logs what it spent', async () => {
    const { gateway, url } = await start({
      prices: { openai: { 'gpt-realtime': { input: 4, output: 16 } } },
      // One cent a minute; each answer below costs $0.0048 (200 × $4 + 250 × $16 per million).
      rateLimit: { name: 'cents', unit: 'cost', limit: 0.01, window: 60, technique: 'fixed' },
    })
    mock.realtime.enqueue({ usage: { input_tokens: 200, output_tokens: 250 } })
    const { socket, messages } = await connect(`${url}/openai?model=gpt-realtime`)
    await messages.type('session.created')
    const ended = nextClose(gateway)
    for (let turn = 1; turn <= 3; turn++) {
      socket.send(JSON.stringify({ type: 'response.create' }))
      await messages.next(
        (m) => m.type === 'response.done' && messages.ofType('response.done').length >= turn,
      )
    }
    const { code, reason } = await closed(socket)
    expect(code).toBe(CLOSE_CODES.LIMITED)
    expect(reason).toBe(
      "Spend limit exceeded: rule 'cents' (cost limit 0.01 per 60s, fixed) for openai gpt-realtime",
    )
    const { id } = await ended
    const logged = await record(gateway, id)
    expect(logged).toMatchObject({
      outcome: 'gateway_error',
      errorCode: 2041,
      success: false,
      tokensIn: 600,
      tokensOut: 750,
      cost: 0.0144,
      websocket: { closeCode: 4429, closedBy: 'gateway' },
    })
    // The provider's side was closed too, and the next session is refused at the door.
    expect((await mock.realtime.sessions[0]!.closed).code).toBe(1000)
    const refused = await open(`${url}/openai?model=gpt-realtime`)
    expect(refused.open ? 0 : refused.status).toBe(429)
  })

  it('logs a session whose provider reported more tokens than any answer has with no usage, and charges none', async () => {
    const { gateway, url } = await start({
      prices: { openai: { 'gpt-realtime': { input: 4, output: 16 } } },
      rateLimit: { name: 'tokens', unit: 'tokens', limit: 100_000, window: 60 },
    })
    mock.realtime.enqueue({ usage: { input_tokens: 1e19, output_tokens: 250 } })
    const { socket, messages } = await connect(`${url}/openai?model=gpt-realtime`)
    await messages.type('session.created')
    socket.send(JSON.stringify({ type: 'response.create' }))
    await messages.type('response.done')
    const ended = nextClose(gateway)
    socket.close()
    // Closed by its client: the limit was charged nothing, where 1e19 tokens would have ended it with 4429.
    expect(await ended).toMatchObject({ closedBy: 'client', code: 1005 })
    const logged = await record(gateway, (await ended).id)
    expect(logged).toMatchObject({ tokensIn: null, tokensOut: null, cost: null })
  })

  it('runs a session with DLP on: the guard, which cannot read frames, is left out of its steps', async () => {
    const { gateway, url } = await start({
      dlp: { policies: [{ id: 'mask-pii', profiles: ['pii'], action: 'redact' }] },
    })
    const { socket, messages } = await connect(`${url}/openai?model=gpt-realtime`)
    await messages.type('session.created')
    socket.send(JSON.stringify({ type: 'response.create' }))
    await messages.type('response.done')
    const ended = nextClose(gateway)
    socket.close()
    expect(await record(gateway, (await ended).id)).toMatchObject({ outcome: 'success', statusCode: 101 })
  })

  it('charges a Gemini Live session from its first usage report, its model named in its setup', async () => {
    const { gateway, url } = await start({
      prices: { 'google-ai-studio': { 'gemini-live-mock': { input: 100, output: 100 } } },
      rateLimit: { name: 'live', unit: 'cost', limit: 0.001, window: 60 },
    })
    mock.realtime.enqueue({ usage: { input_tokens: 4, output_tokens: 4 } })
    const { socket, messages } = await connect(`${url}/google`)
    socket.send(JSON.stringify({ setup: { model: 'models/gemini-live-mock' } }))
    await messages.next((m) => 'setupComplete' in m)
    const ended = nextClose(gateway)
    // $0.0008 a turn against $0.001: the second turn passes the budget.
    const turn = JSON.stringify({ clientContent: { turns: [{ role: 'user', parts: [{ text: 'go' }] }] } })
    socket.send(turn)
    await messages.next((m) => 'usageMetadata' in m)
    socket.send(turn)
    const { code, reason } = await closed(socket)
    expect([code, reason]).toEqual([
      4429,
      "Spend limit exceeded: rule 'live' (cost limit 0.001 per 60s, sliding) for google-ai-studio gemini-live-mock",
    ])
    const logged = await record(gateway, (await ended).id)
    expect(logged).toMatchObject({ model: 'gemini-live-mock', cost: 0.0016, errorCode: 2041 })
  })

  it('counts a session against a request limit when it opens', async () => {
    const { url } = await start({ rateLimit: { name: 'one', limit: 1, window: 60 } })
    const first = await connect(`${url}/openai?model=gpt-realtime`)
    const second = await open(`${url}/openai?model=gpt-realtime`)
    expect(second.open).toBe(false)
    if (!second.open) {
      expect(second.status).toBe(429)
      expect(JSON.parse(second.body)).toMatchObject({ error: [{ code: 2003 }] })
    }
    first.socket.close()
    await closed(first.socket)
  })

  it('relays Gemini Live, with the stored key in ?key=, the model from its setup, and its usage', async () => {
    const { gateway, url } = await start({
      prices: { 'google-ai-studio': { 'gemini-live-mock': { input: 1, output: 2 } } },
    })
    const { socket, messages } = await connect(`${url}/google`)
    const upstream = await mock.realtime.session(0)
    expect(upstream.path).toBe(LIVE_PATH)
    expect(upstream.query).toBe('?key=goog-stored')
    socket.send(JSON.stringify({ setup: { model: 'models/gemini-live-mock' } }))
    await messages.next((m) => 'setupComplete' in m)
    socket.send(
      JSON.stringify({
        clientContent: { turns: [{ role: 'user', parts: [{ text: 'hi gemini' }] }], turnComplete: true },
      }),
    )
    const usage = await messages.next<{ usageMetadata: Record<string, number> }>((m) => 'usageMetadata' in m)
    expect(usage.usageMetadata).toMatchObject({ promptTokenCount: 3, responseTokenCount: 5 })
    const ended = nextClose(gateway)
    socket.close()
    const logged = await record(gateway, (await ended).id)
    expect(logged).toMatchObject({
      provider: 'google-ai-studio',
      model: 'gemini-live-mock',
      path: `/google-ai-studio${LIVE_PATH}`,
      tokensIn: 3,
      tokensOut: 5,
      cost: 0.000013,
      websocket: { framesIn: 2, closeCode: 1005, closedBy: 'client' },
    })
  })

  it('reaches any provider whose base URL the host sets, with the key where its options put it', async () => {
    const { url } = await start({
      customProviders: { lab: { baseURL: `${mock.url}/v1`, apiKey: 'sk-lab' } },
      websockets: {
        providers: { 'custom-lab': { path: '/realtime', key: { protocol: 'openai-insecure-api-key.' } } },
      },
    })
    const { socket, messages } = await connect(`${url}/custom-lab?model=lab-model`, ['realtime'])
    await messages.type('session.created')
    const upstream = mock.realtime.sessions[0]!
    expect(upstream.protocols).toEqual(['realtime', 'openai-insecure-api-key.sk-lab'])
    expect(upstream.headers.authorization).toBeUndefined()
    expect(socket.protocol).toBe('realtime')
    socket.close()
    await closed(socket)
  })

  it('passes a provider’s refusal of the handshake on to the client, as it answered it', async () => {
    const { gateway, url } = await start()
    mock.realtime.enqueue({ status: 429 })
    const ended = new Promise<{ id: string; status: number }>((resolve) =>
      gateway.events.once('request:end', resolve),
    )
    const refused = await open(`${url}/openai?model=gpt-realtime`)
    expect(refused.open).toBe(false)
    if (refused.open) return
    expect(refused.status).toBe(429)
    expect(JSON.parse(refused.body)).toMatchObject({
      error: { type: 'requests', message: 'mock error (HTTP 429)' },
    })
    const { id, status } = await ended
    expect(status).toBe(429)
    expect(await record(gateway, id)).toMatchObject({ statusCode: 429, outcome: 'upstream_error' })
  })

  it('tells the client 1014 when the provider’s connection drops, and logs the session as failed', async () => {
    const { gateway, url } = await start()
    const { socket, messages } = await connect(`${url}/openai?model=gpt-realtime`)
    await messages.type('session.created')
    const ended = nextClose(gateway)
    mock.realtime.sessions[0]!.socket.terminate()
    expect(await closed(socket)).toEqual({ code: 1014, reason: 'provider connection lost' })
    const logged = await record(gateway, (await ended).id)
    expect(logged).toMatchObject({
      success: false,
      outcome: 'upstream_error',
      websocket: { closeCode: 1014, closedBy: 'provider' },
    })
  })

  it('gives up the provider’s handshake as soon as the client leaves, and logs the session as aborted', async () => {
    const provider = await startRawServer(() => {}) // takes the handshake and never answers it
    onTestFinished(() => provider.close())
    const { gateway, url } = await start({
      customProviders: { lab: { baseURL: provider.url, apiKey: 'sk-lab' } },
      timeouts: { connectMs: 60_000 },
    })
    const ended = new Promise<RequestEndEvent>((resolve) => gateway.events.once('request:end', resolve))
    const client = new WebSocket(`${url}/custom-lab/realtime`)
    client.on('error', () => {})
    await (await provider.connection(0)).request
    client.terminate()
    await provider.connectionClosed(0)
    const { id, status, outcome } = await ended
    expect({ status, outcome }).toEqual({ status: 499, outcome: 'aborted' })
    expect(await record(gateway, id)).toMatchObject({ statusCode: 499, outcome: 'aborted' })
  })

  it('ends the provider’s connection of a session abandoned before its client’s side opened', async () => {
    let upstreamOpened!: () => void
    const opened = new Promise<void>((resolve) => {
      upstreamOpened = resolve
    })
    // Holds the session's answer, its provider's side open, until the session is abandoned.
    const holdAnswer: Step = async (ctx, next) => {
      await next()
      upstreamOpened()
      await new Promise<void>((resolve) => ctx.request.onClientClose?.(resolve))
    }
    const app = await start({ steps: [holdAnswer] })
    running.splice(running.indexOf(app), 1)
    const client = new WebSocket(`${app.url}/openai?model=gpt-realtime`)
    client.on('error', () => {})
    await opened
    const provider = await mock.realtime.session(0)
    await app.close()
    expect(await provider.closed).toEqual({ code: 1001, reason: 'client went away' })
  })

  it('destroys upgrades off the mount when it is the server’s only upgrade listener, as Node would', async () => {
    const { url } = await start()
    await expect(open(url.replace('/ai', '/elsewhere'))).rejects.toThrow(/socket hang up|ECONNRESET/)
  })

  it('destroys upgrades no gateway takes when two attached gateways are the server’s only upgrade listeners', async () => {
    const first = await start()
    const second = createGateway({ providers: { openai: { apiKey: 'sk-other', baseURL: `${mock.url}/v1` } } })
    const server: Server = createServer((_req, res) => res.writeHead(404).end())
    attachWebSockets(server, first.gateway, { prefix: '/first' })
    attachWebSockets(server, second, { prefix: '/second' })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    onTestFinished(async () => {
      await second.close()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    })
    const base = `ws://127.0.0.1:${(server.address() as { port: number }).port}`
    await expect(open(`${base}/elsewhere`)).rejects.toThrow(/socket hang up|ECONNRESET/)
    // Each still takes its own, and the other leaves it be.
    for (const prefix of ['/first', '/second']) {
      const { socket } = await connect(`${base}${prefix}/openai?model=gpt-realtime`)
      socket.close()
      await closed(socket)
    }
    expect(mock.realtime.sessions.map((session) => session.headers.authorization)).toEqual([
      'Bearer sk-stored',
      'Bearer sk-other',
    ])
  })

  it('closes a session idle for idleTimeoutMs with 4408, both sides', async () => {
    const { url } = await start({ websockets: { idleTimeoutMs: 50 } })
    const { socket } = await connect(`${url}/openai?model=gpt-realtime`)
    expect(await closed(socket)).toEqual({ code: 4408, reason: 'idle for 50 ms' })
    expect((await mock.realtime.sessions[0]!.closed).code).toBe(1000)
  })

  it('closes a socket that sends a message over maxPayload with 1009, and the provider’s side with it', async () => {
    const { url } = await start({ websockets: { maxPayload: 1024 } })
    const { socket, messages } = await connect(`${url}/openai?model=gpt-realtime`)
    await messages.type('session.created')
    socket.send('x'.repeat(2048))
    expect((await closed(socket)).code).toBe(1009)
    expect((await mock.realtime.sessions[0]!.closed).code).toBe(1000)
    expect(mock.realtime.sessions[0]!.received).toEqual([])
  })

  it('reports a universal socket closed for a message over maxPayload as the gateway’s 1009', async () => {
    const { gateway, url } = await start({ websockets: { maxPayload: 1024 } })
    const ended = nextClose(gateway)
    const { socket } = await connect(url)
    socket.send('x'.repeat(2048))
    expect((await closed(socket)).code).toBe(1009)
    expect(await ended).toMatchObject({
      kind: 'universal',
      code: 1009,
      reason: 'a message was over 1024 bytes',
      closedBy: 'gateway',
    })
  })

  it('refuses universal requests past maxInFlight with 2135, and malformed messages with 2136', async () => {
    const { gateway, url } = await start({ websockets: { maxInFlight: 1 } })
    const { socket, messages } = await connect(url)
    mock.enqueue({ stallBeforeHeaders: true })
    const sent = new Promise((resolve) => gateway.events.once('upstream:request', resolve))
    socket.send(
      JSON.stringify({ type: 'universal.create', request: { eventId: 'slow', ...openaiStep('slow') } }),
    )
    await sent
    socket.send(
      JSON.stringify({ type: 'universal.create', request: { eventId: 'second', ...openaiStep('second') } }),
    )
    const refused = await messages.type<{ metadata: Record<string, unknown>; response: unknown }>(
      'universal.error',
    )
    expect(refused.metadata).toEqual({ eventId: 'second', status: 429 })
    expect(refused.response).toMatchObject({ error: [{ code: 2135 }], name: 'AiGatewayError' })
    socket.send('not json')
    const malformed = await messages.next(
      (m) => m.type === 'universal.error' && (m.response as { internalCode: number }).internalCode === 2136,
    )
    expect(malformed).toMatchObject({ metadata: { eventId: '', status: 400 } })
    // The stalled request is cancelled with the socket, upstream too.
    socket.close()
    await closed(socket)
    expect(await mock.calls[0]!.outcome).toBe('aborted')
  })

  it('stops reading a universal socket whose client sends without reading its answers, and answers every message once it reads', async () => {
    const highWaterMark = 16 * 1024
    const { gateway, url } = await start({ websockets: { highWaterMark } })
    const flow: WebSocketBackpressureEvent[] = []
    const paused = new Promise<WebSocketBackpressureEvent>((resolve) =>
      gateway.events.on('websocket:backpressure', (event) => {
        flow.push(event)
        if (event.state === 'paused') resolve(event)
      }),
    )
    const { socket, messages } = await connect(url)
    messages.forget()
    // Each one-byte message is refused with an answer some 300 times its size: some 15 MB in all, more than
    // the kernel's socket buffers hold, so the rest would queue in the gateway.
    socket.pause()
    const sent = 50_000
    for (let i = 0; i < sent; i++) socket.send('x')
    const pausedAt = await paused
    expect(pausedAt.source).toBe('client')
    expect(pausedAt.bufferedAmount).toBeLessThanOrEqual(highWaterMark + 1024)
    let answered = 0
    const allAnswered = new Promise<void>((resolve) =>
      socket.on('message', (data) => {
        expect(JSON.parse(String(data))).toMatchObject({
          type: 'universal.error',
          response: { internalCode: 2136 },
        })
        if (++answered === sent) resolve()
      }),
    )
    socket.resume()
    await allAnswered
    // While it was paused, nothing more was queued: every pause was at the mark.
    for (const event of flow.filter((e) => e.state === 'paused')) {
      expect(event.bufferedAmount).toBeLessThanOrEqual(highWaterMark + 1024)
    }
    expect(flow.at(-1)).toMatchObject({ source: 'client', state: 'resumed' })
    socket.close()
    await closed(socket)
    // Some 15 MB through two sockets: given room on a loaded machine, where it has taken over 15 s.
  }, 60_000)

  it('refuses a universal.create nested too deeply to forward with universal.error 2114, not a bug', async () => {
    const { gateway, url } = await start()
    const bugs: unknown[] = []
    gateway.events.on('error', (error) => bugs.push(error))
    const { socket, messages } = await connect(url)
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`
    socket.send(
      `{"type":"universal.create","request":{"eventId":"deep","provider":"openai","endpoint":"chat/completions","headers":{},"query":${deep}}}`,
    )
    const refused = await messages.type('universal.error')
    expect(refused).toMatchObject({
      metadata: { eventId: 'deep', status: 400 },
      response: { internalCode: 2114 },
    })
    expect(bugs).toEqual([])
    socket.close()
    await closed(socket)
  })

  it('answers a gateway error over the socket as universal.error, mirroring the HTTP body', async () => {
    const { url } = await start()
    const { socket, messages } = await connect(url)
    socket.send(
      JSON.stringify({
        type: 'universal.create',
        request: { eventId: 'typo', ...openaiStep('x'), provider: 'opneai' },
      }),
    )
    const error = await messages.type('universal.error')
    expect(error).toMatchObject({
      metadata: { eventId: 'typo', status: 400, contentType: 'application/json' },
      response: {
        success: false,
        error: [{ code: 2008, message: "Invalid provider: step 0: 'opneai' is not a known provider" }],
        name: 'AiGatewayError',
        httpCode: 400,
      },
    })
    socket.close()
    await closed(socket)
  })

  it('answers a whole answer the provider cut off with universal.error 2108, never its first part as the answer', async () => {
    // Past 1 MiB (or chunked, and not JSON) a whole answer is passed on as it comes rather than read first.
    const provider = await startFaultServer((request, res, socket) => {
      if (request.text.includes('"json"')) {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(4 * 1024 * 1024) })
        res.write(`{"choices":[{"message":{"content":"${'a'.repeat(2 * 1024 * 1024)}`, () => socket.destroy())
      } else {
        res.writeHead(200, { 'content-type': 'audio/mpeg' })
        res.write(Buffer.alloc(64 * 1024, 1), () => socket.destroy())
      }
    })
    onTestFinished(() => provider.close())
    const { url } = await start({
      providers: { openai: { apiKey: 'sk-stored', baseURL: `${provider.url}/v1` } },
      retries: { maxAttempts: 1 },
    })
    const { socket, messages } = await connect(url)
    for (const eventId of ['json', 'audio']) {
      socket.send(JSON.stringify({ type: 'universal.create', request: { eventId, ...openaiStep(eventId) } }))
    }
    const answers = await Promise.all(
      ['json', 'audio'].map((eventId) =>
        messages.next((m) => (m.metadata as { eventId?: string } | undefined)?.eventId === eventId),
      ),
    )
    const outlines = answers.map(({ type, metadata, response }) => ({
      type,
      status: (metadata as { status?: number }).status,
      code: (response as { internalCode?: number }).internalCode,
    }))
    expect(outlines).toEqual([
      { type: 'universal.error', status: 502, code: 2108 },
      { type: 'universal.error', status: 502, code: 2108 },
    ])
    socket.close()
    await closed(socket)
  })

  it('ends a stream that failed with universal.error, never universal.done, and lets the others on the socket finish', async () => {
    const chunk = (text: string) =>
      `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: text } }] })}\n\n`
    const provider = await startFaultServer((request, res, socket) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      if (request.text.includes('"cut"')) res.write(chunk('Hel'), () => socket.destroy())
      else if (request.text.includes('"stall"')) res.write(chunk('Hel'))
      else if (request.text.includes('"in-band"')) {
        res.end(`${chunk('Hel')}data: {"error":{"message":"overloaded","type":"server_error"}}\n\n`)
      } else {
        res.end(
          `${chunk('Hello')}data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\ndata: [DONE]\n\n`,
        )
      }
    })
    onTestFinished(() => provider.close())
    const { url } = await start({
      providers: { openai: { apiKey: 'sk-stored', baseURL: `${provider.url}/v1` } },
      retries: { maxAttempts: 1 },
      timeouts: { idleMs: 200 },
    })
    const { socket, messages } = await connect(url)
    const ids = ['cut', 'stall', 'in-band', 'whole']
    for (const eventId of ids) {
      socket.send(
        JSON.stringify({
          type: 'universal.create',
          request: { eventId, ...openaiStep(eventId, { stream: true }) },
        }),
      )
    }
    const ends = await Promise.all(
      ids.map((eventId) =>
        messages.next(
          (m) =>
            (m.type === 'universal.done' || m.type === 'universal.error') &&
            (m.metadata as { eventId?: string }).eventId === eventId,
        ),
      ),
    )
    const outlines = ends.map(({ type, metadata, response }) => ({
      type,
      status: (metadata as { status?: number }).status,
      contentType: (metadata as { contentType?: string }).contentType,
      code: (response as { internalCode?: number } | undefined)?.internalCode,
    }))
    expect(outlines).toEqual([
      { type: 'universal.error', status: 502, contentType: 'application/json', code: 2108 },
      { type: 'universal.error', status: 504, contentType: 'application/json', code: 2106 },
      { type: 'universal.error', status: 502, contentType: 'application/json', code: 2124 },
      { type: 'universal.done', status: undefined, contentType: 'text/event-stream', code: undefined },
    ])
    // Each failed stream still carried what came before it failed, and its terminal event.
    const streamed = messages.ofType('universal.stream')
    const of = (eventId: string) =>
      streamed.filter((m) => (m.metadata as { eventId: string }).eventId === eventId).length
    expect(ids.map(of)).toEqual([2, 2, 2, 3])
    expect(messages.ofType('universal.done')).toHaveLength(1)
    socket.close()
    await closed(socket)
  })

  it('closes every session with 1001 on gateway.close(), each one logged', async () => {
    const app = await start()
    running.splice(running.indexOf(app), 1)
    const sockets = await Promise.all([1, 2, 3].map(() => connect(`${app.url}/openai?model=gpt-realtime`)))
    const ends: WebSocketCloseEvent[] = []
    app.gateway.events.on('websocket:close', (event) => ends.push(event))
    const codes = sockets.map(({ socket }) => closed(socket))
    await app.close()
    expect((await Promise.all(codes)).map((c) => c.code)).toEqual([1001, 1001, 1001])
    expect(ends.map((end) => end.closedBy)).toEqual(['gateway', 'gateway', 'gateway'])
    const logged = await Promise.all(ends.map((end) => app.gateway.logs!.get(end.id)))
    expect(logged.map((r) => r?.websocket?.closeCode)).toEqual([1001, 1001, 1001])
  })

  it('sends a stream answered from the cache as the provider’s: universal.created, universal.stream per event, universal.done', async () => {
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
      `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`
    const provider = await startFaultServer((_request, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.end(`${chunk({ content: 'Hel' })}${chunk({ content: 'lo' })}${chunk({}, 'stop')}data: [DONE]\n\n`)
    })
    onTestFinished(() => provider.close())
    const { url } = await start({
      providers: { openai: { apiKey: 'sk-stored', baseURL: `${provider.url}/v1` } },
      cache: { ttl: 60 },
    })
    const { socket, messages } = await connect(url)
    const frames = async (eventId: string) => {
      socket.send(
        JSON.stringify({
          type: 'universal.create',
          request: { eventId, ...openaiStep('hello', { stream: true }) },
        }),
      )
      const of = (m: Record<string, unknown>) => (m.metadata as { eventId?: string }).eventId === eventId
      // The last frame of an answer, whatever its shape.
      const end = await messages.next(
        (m) =>
          of(m) &&
          (m.type === 'universal.done' ||
            m.type === 'universal.error' ||
            (m.type === 'universal.created' && 'response' in m)),
      )
      const all = messages.all.filter((m) => of(m as Record<string, unknown>)) as Record<string, unknown>[]
      return {
        cacheStatus: (end.metadata as { cacheStatus?: string }).cacheStatus,
        frames: all.map(({ type, response }) => ({ type, response })),
      }
    }
    const miss = await frames('miss')
    const hit = await frames('hit')
    expect(miss.cacheStatus).toBe('MISS')
    expect(hit.cacheStatus).toBe('HIT')
    expect(hit.frames).toEqual(miss.frames)
    expect(miss.frames.map((frame) => frame.type)).toEqual([
      'universal.created',
      'universal.stream',
      'universal.stream',
      'universal.stream',
      'universal.stream',
      'universal.done',
    ])
    expect(provider.requests).toHaveLength(1)
    socket.close()
    await closed(socket)
  })

  it('runs no universal request a client sends after the gateway closed its socket', async () => {
    const provider = await startFaultServer((_request, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{"ok":true}')
    })
    onTestFinished(() => provider.close())
    const { gateway, url } = await start({
      providers: { openai: { apiKey: 'sk-stored', baseURL: `${provider.url}/v1` } },
    })
    let started = 0
    gateway.events.on('request:start', () => started++)
    const { socket } = await connect(url)
    // Not reading, the client has not seen the gateway's close frame when it sends: its messages reach the
    // gateway after the close, and before the client's own close frame.
    socket.pause()
    const closing = gateway.closeWebSockets()
    for (const eventId of ['late-1', 'late-2', 'late-3']) {
      socket.send(JSON.stringify({ type: 'universal.create', request: { eventId, ...openaiStep(eventId) } }))
    }
    socket.resume()
    expect((await closed(socket)).code).toBe(1001)
    // Resolves once the socket ended and every request it carried had ended.
    await closing
    expect({ started, reached: provider.requests.length }).toEqual({ started: 0, reached: 0 })
  })

  it('cancels the universal requests in flight when the gateway closes the socket, without waiting for the client’s close', async () => {
    const provider = await startFaultServer((_request, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      const chunk = `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: 'x' } }] })}\n\n`
      const tick = setInterval(() => res.write(chunk), 20)
      res.once('close', () => clearInterval(tick))
    })
    onTestFinished(() => provider.close())
    const { gateway, url } = await start({
      providers: { openai: { apiKey: 'sk-stored', baseURL: `${provider.url}/v1` } },
    })
    const { socket, messages } = await connect(url)
    socket.send(
      JSON.stringify({
        type: 'universal.create',
        request: { eventId: 'endless', ...openaiStep('endless', { stream: true }) },
      }),
    )
    await messages.type('universal.stream')
    // A client that does not read has not answered the gateway's close: ws would wait 30 s for it.
    socket.pause()
    const closing = gateway.closeWebSockets()
    await provider.connectionClosed(0)
    socket.resume()
    expect((await closed(socket)).code).toBe(1001)
    await closing
  })

  it('holds a slow reader’s frames to about highWaterMark, pausing the provider’s side while it would send more', async () => {
    const highWaterMark = 256 * 1024
    const { gateway, url } = await start({ websockets: { highWaterMark, maxPayload: 1024 * 1024 } })
    const events: WebSocketBackpressureEvent[] = []
    gateway.events.on('websocket:backpressure', (event) => events.push(event))
    const paused = new Promise<void>((resolve) =>
      gateway.events.on('websocket:backpressure', (event) => {
        if (event.source === 'provider' && event.state === 'paused') resolve()
      }),
    )
    const { socket, messages } = await connect(`${url}/openai?model=gpt-realtime`)
    await messages.type('session.created')
    // The flood is counted here, not kept: 64 MiB of frames.
    messages.forget()
    let received = 0
    let inOrder = true
    socket.on('message', (data: Buffer) => {
      const index = Number(/"index":(\d+)/.exec(data.subarray(0, 80).toString())?.[1])
      inOrder &&= index === received
      received++
    })
    const upstream = mock.realtime.sessions[0]!
    // The client stops reading; the provider floods 64 MiB in 64 KiB frames.
    socket.pause()
    const frames = 1024
    const frameBytes = 64 * 1024
    socket.send(JSON.stringify({ type: 'mock.flood', frames, bytes: frameBytes }))
    await paused
    // Once the gateway no longer reads it, the provider's own queue fills and it waits to send more.
    if (!upstream.flood.waiting) await new Promise((resolve) => upstream.once('flood:waiting', resolve))
    expect(upstream.flood.sent).toBeLessThan(frames)
    const pausedAt = events.filter((event) => event.source === 'provider' && event.state === 'paused')
    const frameSize =
      JSON.stringify({ type: 'response.output_audio.delta', index: 1000, delta: '' }).length + frameBytes
    for (const event of pausedAt) expect(event.bufferedAmount).toBeLessThanOrEqual(highWaterMark + frameSize)
    console.info(
      `slow reader: gateway queue at pause ≤ ${Math.max(...pausedAt.map((e) => e.bufferedAmount))} bytes; provider sent ${upstream.flood.sent}/${frames} frames and waits`,
    )
    // The client reads again: everything arrives, in order.
    const allIn = new Promise((resolve) => upstream.once('flood:done', resolve))
    socket.resume()
    await allIn
    if (received < frames) {
      await new Promise<void>((resolve) => {
        socket.on('message', () => {
          if (received === frames) resolve()
        })
      })
    }
    expect(received).toBe(frames)
    expect(inOrder).toBe(true)
    expect(events.some((event) => event.source === 'provider' && event.state === 'resumed')).toBe(true)
    socket.close()
    await closed(socket)
  })

  it('holds a fast sender back while the provider reads slowly, the other way round', async () => {
    const highWaterMark = 256 * 1024
    const { gateway, url } = await start({ websockets: { highWaterMark } })
    const paused = new Promise<WebSocketBackpressureEvent>((resolve) =>
      gateway.events.on('websocket:backpressure', (event) => {
        if (event.source === 'client' && event.state === 'paused') resolve(event)
      }),
    )
    const { socket, messages } = await connect(`${url}/openai?model=gpt-realtime`)
    await messages.type('session.created')
    const upstream = mock.realtime.sessions[0]!
    // The provider stops reading; the client sends 64 MiB of audio in 64 KiB frames.
    upstream.socket.pause()
    const frames = 1024
    const audio = 'A'.repeat(64 * 1024)
    for (let index = 0; index < frames; index++) {
      socket.send(JSON.stringify({ type: 'input_audio_buffer.append', audio }))
    }
    const event = await paused
    expect(event.bufferedAmount).toBeLessThanOrEqual(highWaterMark + audio.length + 64)
    // What the gateway does not read waits in the client's own queue.
    expect(socket.bufferedAmount).toBeGreaterThan(0)
    upstream.socket.resume()
    await upstream.receivedAtLeast(frames)
    expect(
      upstream.received.filter((e) => (e as { audioBytes?: number }).audioBytes === audio.length),
    ).toHaveLength(frames)
    socket.close()
    await closed(socket)
  })

  it('leaves every upgrade to the host with websockets: false', async () => {
    const gateway = createGateway({ websockets: false })
    const server = createServer()
    let host = 0
    server.on('upgrade', (req, socket, head) => {
      if (gateway.upgrade(req, socket, head, { prefix: '/ai' })) return
      host++
      socket.destroy()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    await expect(open(`ws://127.0.0.1:${port}/ai/openai?model=x`)).rejects.toThrow()
    expect(host).toBe(1)
    await gateway.close()
    await new Promise((resolve) => server.close(resolve))
  })

  /** A gateway whose OpenAI and Gemini Live keys go to a provider that quotes them back as `echo` says. */
  async function startEchoing(echo: KeyEcho): Promise<Running> {
    const provider = await keyEchoingProvider(echo)
    return start({
      providers: {
        openai: { apiKey: OPENAI_KEY, baseURL: `${provider.url}/v1` },
        'google-ai-studio': { apiKey: GOOGLE_KEY, baseURL: provider.url },
      },
    })
  }

  it('scrubs the stored key from a provider’s refusal of the handshake, body and headers', async () => {
    const { url } = await startEchoing('refusal')
    const refused = await open(`${url}/openai?model=gpt-realtime`)
    if (refused.open) throw new Error('the provider refuses every handshake')
    expect(refused.status).toBe(401)
    expect(JSON.parse(refused.body)).toEqual({ error: { message: 'Incorrect API key provided: [REDACTED]' } })
    expect(refused.headers['www-authenticate']).toBe('Bearer error="invalid_token", key="[REDACTED]"')
  })

  it('scrubs the stored key from the headers of a provider’s 101', async () => {
    const { url } = await startEchoing('headers')
    const socket = new WebSocket(`${url}/google`)
    const response = await new Promise<IncomingMessage>((resolve) => socket.once('upgrade', resolve))
    expect(response.headers['x-request-note']).toBe('sent [REDACTED]')
    socket.close()
    await closed(socket)
  })

  it('scrubs the stored key from a provider’s text frames, counting the bytes the client got', async () => {
    const { gateway, url } = await startEchoing('text frame')
    const { socket, messages } = await connect(`${url}/openai?model=gpt-realtime`)
    const error = await messages.type<{ error: { message: string } }>('error')
    expect(error.error.message).toBe('Incorrect API key provided: [REDACTED]')
    const ended = nextClose(gateway)
    socket.close()
    expect((await ended).bytesOut).toBe(Buffer.byteLength(JSON.stringify(error)))
  })

  it('scrubs the stored key from a provider’s binary frames, which carry Gemini Live’s JSON', async () => {
    const { url } = await startEchoing('binary frame')
    const { socket, messages } = await connect(`${url}/google`)
    const error = await messages.type<{ error: { message: string } }>('error')
    expect(error.error.message).toBe('Incorrect API key provided: [REDACTED]')
    socket.close()
    await closed(socket)
  })

  it('scrubs the stored key from a provider’s close reason: client, log record and events', async () => {
    const { gateway, url } = await startEchoing('close reason')
    const requestEnd = new Promise<RequestEndEvent>((resolve) => gateway.events.once('request:end', resolve))
    const ended = nextClose(gateway)
    const { socket } = await connect(`${url}/openai?model=gpt-realtime`)
    expect(await closed(socket)).toEqual({ code: 4001, reason: 'invalid key [REDACTED]' })
    const { id, reason } = await ended
    expect(reason).toBe('invalid key [REDACTED]')
    expect((await requestEnd).error?.message).toMatch(/\(invalid key \[REDACTED\]\)$/)
    expect((await record(gateway, id)).websocket).toMatchObject({ closeReason: 'invalid key [REDACTED]' })
  })

  it('holds 200 concurrent sessions in bounded memory', async () => {
    const { url } = await start({ logs: { payloads: false } })
    const gc = collectGarbage()
    gc()
    const before = process.memoryUsage().heapUsed
    const sessions = await Promise.all(
      Array.from({ length: 200 }, () => connect(`${url}/openai?model=gpt-realtime`)),
    )
    await Promise.all(sessions.map(({ messages }) => messages.type('session.created')))
    for (const { socket } of sessions) socket.send(JSON.stringify({ type: 'response.create' }))
    await Promise.all(sessions.map(({ messages }) => messages.type('response.done')))
    gc()
    const during = process.memoryUsage().heapUsed - before
    console.info(
      `200 concurrent sessions: heapUsed +${(during / 1024 / 1024).toFixed(1)} MiB (${Math.round(during / 200 / 1024)} KiB per session, both ends and the mock included)`,
    )
    // Client, gateway (both sides) and mock sockets of 200 sessions, all in this process: a generous bound.
    expect(during).toBeLessThan(64 * 1024 * 1024)
    await Promise.all(
      sessions.map(({ socket }) => {
        socket.close()
        return closed(socket)
      }),
    )
  })
})

const OPENAI_KEY = 'sk-stored-0123456789abcdef'
const GOOGLE_KEY = 'AIza-stored-0123456789abcdef'

/** Where a key-echoing provider quotes the key it was sent. */
type KeyEcho = 'refusal' | 'headers' | 'text frame' | 'binary frame' | 'close reason'

/**
 * A realtime provider that quotes back the key it was sent (OpenAI's `authorization`, Gemini Live's
 * `?key=`), as providers quote keys they refuse; closed when the test finishes.
 */
async function keyEchoingProvider(echo: KeyEcho): Promise<{ url: string }> {
  const server = createServer((_req, res) => res.writeHead(404).end())
  const sockets = new WebSocketServer({ noServer: true })
  server.on('upgrade', (req, socket, head) => {
    const key =
      req.headers.authorization?.replace('Bearer ', '') ??
      new URL(req.url ?? '/', 'http://provider').searchParams.get('key')
    if (echo === 'refusal') {
      const body = JSON.stringify({ error: { message: `Incorrect API key provided: ${key}` } })
      socket.end(
        `HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n` +
          `www-authenticate: Bearer error="invalid_token", key="${key}"\r\n` +
          `content-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
      )
      return
    }
    if (echo === 'headers') sockets.once('headers', (headers) => headers.push(`x-request-note: sent ${key}`))
    sockets.handleUpgrade(req, socket, head, (ws) => {
      const error = { type: 'error', error: { message: `Incorrect API key provided: ${key}` } }
      if (echo === 'text frame' || echo === 'binary frame') {
        ws.send(JSON.stringify(error), { binary: echo === 'binary frame' })
      }
      if (echo === 'close reason') ws.close(4001, `invalid key ${key}`)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(async () => {
    for (const client of sockets.clients) client.terminate()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}` }
}
