import { createServer, request as rawRequest } from 'node:http'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import supertest from 'supertest'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createGateway, type Gateway, type GatewayOptions } from '../../src/index.js'
import { createMockProvider, type MockProvider } from '../../src/testing/index.js'
import { openaiChunk, SSE_HEADERS, startFaultServer } from '../helpers/fault-server.js'
import { type RunningApp, send } from '../helpers/http.js'
import { until } from '../helpers/until.js'
import { cacheScenarios } from './scenarios-cache.js'
import { credentialScenarios } from './scenarios-credentials.js'
import { dynamicRouteScenarios } from './scenarios-dynamic.js'
import {
  breakerScenarios,
  compatFallbackScenarios,
  failoverScenarios,
  keyPoolScenarios,
  resumeScenarios,
} from './scenarios-failover.js'
import { faultScenarios } from './scenarios-faults.js'
import { guardScenarios, guardStreamFaultScenarios } from './scenarios-guard.js'
import { hostScenarios } from './scenarios-host.js'
import { logScenarios } from './scenarios-logs.js'
import { policyScenarios } from './scenarios-policies.js'
import { routingScenarios } from './scenarios-routing.js'
import { sixteenFailures } from './scenarios-sixteen.js'
import { spendLimitScenarios } from './scenarios-spend.js'
import { timingScenarios } from './scenarios-timing.js'

/**
 * What the host puts in front of the gateway: its framework's body parser, or (`bodyReader`) a middleware
 * of its own that reads the request body and keeps it where the gateway cannot see it (a request logger).
 */
export interface HostSetup {
  bodyParser: boolean
  bodyReader?: boolean
}

/**
 * Builds the host app under test with the gateway mounted at `/ai`. Every app also answers, itself,
 * `GET /ai/` (the mount root, which the gateway does not serve) with `host:<path>`.
 */
export type BuildApp = (gateway: Gateway, host: HostSetup) => Promise<RunningApp>

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const CHAT = '/ai/openai/chat/completions'

export interface World {
  mock: MockProvider
  /** Starts the app with these gateway options; closed after the test. */
  start(options?: GatewayOptions, host?: HostSetup): Promise<string>
  /** The gateway of the app started last. */
  gateway: Gateway | undefined
}

function providers(mock: MockProvider): GatewayOptions['providers'] {
  return {
    openai: { apiKey: 'sk-stored', baseURL: `${mock.url}/v1` },
    anthropic: { apiKey: 'sk-ant-stored', baseURL: mock.url },
    'google-ai-studio': { apiKey: 'goog-stored', baseURL: mock.url },
    'azure-openai': {
      apiKey: 'az-stored',
      baseURL: `${mock.url}/{resource}/openai/deployments/{deployment}`,
    },
  }
}

export function chat(text: string, extra: Record<string, unknown> = {}) {
  return { model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }], ...extra }
}

/** Reads an SSE body until `count` events arrived, then stops reading (without closing). */
async function readEvents(body: AsyncIterable<Buffer>, count: number): Promise<string> {
  let text = ''
  for await (const chunk of body) {
    text += chunk.toString()
    if (text.split('\n\n').length - 1 >= count) return text
  }
  return text
}

/** One table of scenarios, run against every framework so the adapters cannot drift apart. */
export function runScenarios(framework: string, build: BuildApp): void {
  describe(`${framework}: gateway scenarios`, () => {
    let mock: MockProvider
    const running: RunningApp[] = []
    const world: World = {
      get mock() {
        return mock
      },
      gateway: undefined,
      async start(options = {}, host: HostSetup = { bodyParser: false }) {
        const gateway = createGateway({ providers: providers(mock), ...options })
        world.gateway = gateway
        const app = await build(gateway, host)
        running.push({ url: app.url, close: () => app.close().then(() => gateway.close()) })
        return app.url
      },
    }

    beforeAll(async () => {
      mock = await createMockProvider()
    })
    afterAll(async () => {
      await Promise.all(running.map((app) => app.close()))
      await mock.close()
    })

    for (const bodyParser of [false, true]) {
      it(`forwards JSON byte for byte and returns the provider's answer (host body parser ${bodyParser ? 'present' : 'absent'})`, async () => {
        mock.reset()
        const url = await world.start({}, { bodyParser })
        const raw = '{ "model": "gpt-4o-mini",\n  "messages": [{"role": "user", "content": "héllo"}] }'
        const res = await send(`${url}${CHAT}`, { body: raw })
        expect(res.status).toBe(200)
        expect(res.json()).toMatchObject({
          object: 'chat.completion',
          choices: [{ message: { content: 'mock reply to: héllo' } }],
        })
        expect(res.headers['cf-aig-request-id']).toMatch(UUID_V7)
        expect(res.headers['cf-aig-log-id']).toBe(res.headers['cf-aig-request-id'])
        const [call] = mock.calls
        expect(call?.path).toBe('/v1/chat/completions')
        // Without a host parser the exact bytes arrive; with one, the same JSON (formatting may differ).
        if (bodyParser) expect(call?.json).toEqual(JSON.parse(raw))
        else expect(call?.body).toBe(raw)
      })
    }

    it('passes an SSE stream through byte for byte', async () => {
      mock.reset()
      const url = await world.start()
      const body = chat('stream please', { stream: true, stream_options: { include_usage: true } })
      const viaGateway = await send(`${url}${CHAT}`, { body })
      // The reference call goes to the mock directly, so it carries the key the gateway would have added.
      const direct = await send(`${mock.url}/v1/chat/completions`, {
        body,
        headers: { authorization: 'Bearer sk-stored' },
      })
      expect(viaGateway.status).toBe(200)
      expect(viaGateway.headers['content-type']).toBe('text/event-stream')
      expect(viaGateway.headers['cache-control']).toContain('no-transform')
      const normalize = (text: string) =>
        text.replaceAll(/chatcmpl-mock\d+/g, 'ID').replaceAll(/"created":\d+/g, '')
      expect(normalize(viaGateway.text)).toBe(normalize(direct.text))
      expect(viaGateway.text.endsWith('data: [DONE]\n\n')).toBe(true)
    })

    it('sends SSE events as they arrive, and a client that leaves cancels the upstream stream', async () => {
      mock.reset()
      mock.enqueue({ stallAfterEvents: 2 })
      const url = await world.start()
      const response = await request(`${url}${CHAT}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(chat('hi', { stream: true })),
      })
      // The provider is stalled after two events: they can only be here if nothing buffered them.
      const seen = await readEvents(response.body, 2)
      expect(seen.split('\n\n').length - 1).toBe(2)
      response.body.destroy()
      await expect(mock.calls[0]?.outcome).resolves.toBe('aborted')
    })

    it('holds the provider back while the client is not reading (backpressure), then delivers every byte', async () => {
      const total = 64 * 1024 * 1024
      const piece = Buffer.alloc(64 * 1024, 'x')
      let sent = 0
      const upstream = createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' })
        const pump = () => {
          while (sent < total) {
            sent += piece.length
            if (!res.write(piece)) return void res.once('drain', pump)
          }
          res.end()
        }
        pump()
      })
      await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
      try {
        const { port } = upstream.address() as { port: number }
        const url = await world.start({ customProviders: { bulk: { baseURL: `http://127.0.0.1:${port}` } } })
        const response = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
          rawRequest(`${url}/ai/custom-bulk/download`, resolve).on('error', reject).end()
        })
        response.pause()
        // Wait until the provider is stuck: its count stops moving over a pause while nobody reads. No
        // deadline but the test's: a pause that runs long only looks over a longer stretch, and a machine so
        // busy that the provider stood still for a whole pause ends the wait early, at a smaller count.
        for (let previous = -1; sent !== previous; ) {
          previous = sent
          await sleep(100)
        }
        expect(sent).toBeLessThan(total / 4)
        let received = 0
        response.on('data', (chunk: Buffer) => {
          received += chunk.length
        })
        response.resume()
        await new Promise((resolve) => response.once('end', resolve))
        expect(received).toBe(total)
      } finally {
        upstream.closeAllConnections()
        await new Promise((resolve) => upstream.close(resolve))
      }
    })

    it('ends a stream that stops before it finished with a terminal error event, and completes one that finished without its last event', async () => {
      const begun: Record<string, string> = {
        '/v1/chat/completions': 'data: {"choices":[{"delta":{"content":"a"}}]}\n\n',
        '/v1/messages':
          'event: message_start\ndata: {"type":"message_start"}\n\n' +
          'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"type":"text_delta","text":"a"}}\n\n',
      }
      const finished: Record<string, string> = {
        '/v1/chat/completions': 'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\n',
        '/v1/messages':
          'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":1}}\n\n',
      }
      const terminators: Record<string, string> = {
        '/v1/chat/completions': 'data: [DONE]\n\n',
        '/v1/messages': 'event: message_stop\ndata: {"type":"message_stop"}\n\n',
      }
      // ?cut: the answer began, then the body ended; ?finished: it finished, without its last event;
      // ?complete: all of it; ?preamble: only message_start, before any answer.
      const upstream = createServer((req, res) => {
        const [path = '', query] = (req.url ?? '').split('?')
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        if (query === 'preamble') {
          res.end('event: message_start\ndata: {"type":"message_start"}\n\n')
          return
        }
        res.write(begun[path] ?? '')
        if (query !== 'cut') res.write(finished[path] ?? '')
        res.end(query === 'complete' ? terminators[path] : undefined)
      })
      await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
      try {
        const { port } = upstream.address() as { port: number }
        const base = `http://127.0.0.1:${port}`
        const url = await world.start({
          providers: { openai: { baseURL: `${base}/v1` }, anthropic: { baseURL: base } },
        })
        const body = { model: 'm', stream: true, messages: [] }
        const chatPath = '/v1/chat/completions'
        const messagesPath = '/v1/messages'
        const openai = (query: string) => send(`${url}/ai/openai/chat/completions?${query}`, { body })
        const anthropic = (query: string) => send(`${url}/ai/anthropic/v1/messages?${query}`, { body })
        const openaiCut = await openai('cut')
        const anthropicCut = await anthropic('cut')
        expect(openaiCut.text).toBe(
          `${begun[chatPath]}data: {"error":{"message":"Provider response was interrupted: the stream ended before its last event","type":"gateway_error","param":null,"code":2108}}\n\n`,
        )
        expect(anthropicCut.text.startsWith(begun[messagesPath] ?? '')).toBe(true)
        expect(anthropicCut.text).toMatch(/event: error\ndata: \{"type":"error","error":\{"type":"api_error"/)
        // Finished, then ended cleanly: the client gets the last event it was owed.
        const openaiFinished = await openai('finished')
        const anthropicFinished = await anthropic('finished')
        expect(openaiFinished.text).toBe(`${begun[chatPath]}${finished[chatPath]}${terminators[chatPath]}`)
        expect(anthropicFinished.text).toBe(
          `${begun[messagesPath]}${finished[messagesPath]}${terminators[messagesPath]}`,
        )
        const openaiWhole = await openai('complete')
        const anthropicWhole = await anthropic('complete')
        expect(openaiWhole.text).toBe(`${begun[chatPath]}${finished[chatPath]}${terminators[chatPath]}`)
        expect(anthropicWhole.text).toBe(
          `${begun[messagesPath]}${finished[messagesPath]}${terminators[messagesPath]}`,
        )
        // Ended before the answer began: nothing was sent, so it is a clean error a retry could save.
        const preamble = await anthropic('preamble')
        expect(preamble.status).toBe(502)
        expect(JSON.parse(preamble.text)).toMatchObject({ internalCode: 2108 })
      } finally {
        upstream.closeAllConnections()
        await new Promise((resolve) => upstream.close(resolve))
      }
    })

    it('forwards the query string as it came', async () => {
      mock.reset()
      const url = await world.start()
      const res = await send(`${url}/ai/openai/models?limit=2&after=a%2Fb`)
      expect(res.status).toBe(200)
      expect(mock.calls[0]?.path).toBe('/v1/models')
      expect(mock.calls[0]?.query).toBe('?limit=2&after=a%2Fb')
    })

    it("strips cf-aig-*, hop-by-hop, cookies and unknown headers upstream, and hop-by-hop headers and the provider's date coming back", async () => {
      mock.reset()
      mock.enqueue({
        headers: {
          'x-request-id': 'up-1',
          'set-cookie': 'session=1',
          'proxy-authenticate': 'Basic',
          'keep-alive': 'timeout=99',
          date: 'Thu, 01 Jan 1970 00:00:00 GMT',
        },
      })
      const url = await world.start()
      const res = await new Promise<{ status: number; headers: Record<string, unknown> }>(
        (resolve, reject) => {
          const req = rawRequest(`${url}${CHAT}`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'cf-aig-metadata': '{"user":"u1"}',
              'cf-aig-authorization': 'Bearer gateway-token',
              cookie: 'host-session=secret',
              'x-forwarded-for': '203.0.113.9',
              'x-custom': 'nope',
              te: 'trailers',
              'proxy-authorization': 'Basic Zm9vOmJhcg==',
              'openai-organization': 'org-1',
            },
          })
          req.on('response', (response) => {
            response.resume()
            response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers }))
          })
          req.on('error', reject)
          req.end(JSON.stringify(chat('hi')))
        },
      )
      expect(res.status).toBe(200)
      const sent = mock.calls[0]?.headers ?? {}
      for (const name of Object.keys(sent)) expect(name.startsWith('cf-aig-')).toBe(false)
      for (const name of ['cookie', 'x-forwarded-for', 'x-custom', 'te', 'proxy-authorization']) {
        expect(sent[name]).toBeUndefined()
      }
      expect(sent.host).toBe(new URL(mock.url).host)
      expect(sent['openai-organization']).toBe('org-1')
      expect(res.headers['x-request-id']).toBe('up-1')
      expect(res.headers['set-cookie']).toBeUndefined()
      expect(res.headers['proxy-authenticate']).toBeUndefined()
      expect(res.headers['keep-alive']).not.toBe('timeout=99')
      // The server's own Date, not the provider's.
      expect(Date.parse(String(res.headers.date))).toBeGreaterThan(Date.parse('2000-01-01'))
    })

    it("injects a stored key in the provider's own scheme when the client sent none", async () => {
      mock.reset()
      const url = await world.start()
      await send(`${url}${CHAT}`, { body: chat('hi') })
      await send(`${url}/ai/anthropic/v1/messages`, {
        body: { model: 'claude', max_tokens: 5, messages: [] },
      })
      await send(`${url}/ai/google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent`, {
        body: { contents: [{ parts: [{ text: 'hi' }] }] },
      })
      expect(mock.calls.map((call) => call.path)).toEqual([
        '/v1/chat/completions',
        '/v1/messages',
        '/v1beta/models/gemini-2.5-flash:generateContent',
      ])
      expect(mock.calls[0]?.headers.authorization).toBe('Bearer sk-stored')
      expect(mock.calls[1]?.headers['x-api-key']).toBe('sk-ant-stored')
      expect(mock.calls[1]?.headers['anthropic-version']).toBe('2023-06-01')
      expect(mock.calls[2]?.headers['x-goog-api-key']).toBe('goog-stored')
    })

    it("lets the client's own provider key win over the stored one", async () => {
      mock.reset()
      const url = await world.start()
      await send(`${url}${CHAT}`, { body: chat('hi'), headers: { authorization: 'Bearer sk-client' } })
      await send(`${url}/ai/google-ai-studio/v1beta/models/g:generateContent?key=goog-client`, {
        body: { contents: [] },
      })
      expect(mock.calls[0]?.headers.authorization).toBe('Bearer sk-client')
      expect(mock.calls[1]?.headers['x-goog-api-key']).toBeUndefined()
      expect(mock.calls[1]?.query).toBe('?key=goog-client')
    })

    it('reaches Azure OpenAI through its resource/deployment path form, and custom providers', async () => {
      mock.reset()
      const url = await world.start({
        customProviders: { mylab: { baseURL: `${mock.url}/lab/v1`, apiKey: 'lab-key' } },
      })
      const azure = await send(
        `${url}/ai/azure-openai/my-res/gpt4o/chat/completions?api-version=2024-10-21`,
        {
          body: chat('hi'),
        },
      )
      const custom = await send(`${url}/ai/custom-mylab/chat/completions`, { body: chat('hi') })
      expect([azure.status, custom.status]).toEqual([200, 200])
      expect(mock.calls[0]?.path).toBe('/my-res/openai/deployments/gpt4o/chat/completions')
      expect(mock.calls[0]?.query).toBe('?api-version=2024-10-21')
      expect(mock.calls[0]?.headers['api-key']).toBe('az-stored')
      expect(mock.calls[1]?.path).toBe('/lab/v1/chat/completions')
      expect(mock.calls[1]?.headers.authorization).toBe('Bearer lab-key')
    })

    it("never sends a path that leaves the provider's base: a '..' ended by '#' is refused with 2102", async () => {
      const upstream = await startFaultServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end('{}')
      })
      try {
        const url = await world.start({
          providers: { openai: { apiKey: 'sk-stored', baseURL: `${upstream.url}/v1` } },
        })
        // A raw request target: an HTTP client would resolve the dot segment and drop the fragment itself.
        const passthrough = await new Promise<{ status: number; text: string }>((resolve, reject) => {
          const { hostname, port } = new URL(url)
          const req = rawRequest({ hostname, port, path: '/ai/openai/..#/admin', method: 'GET' })
          req.on('response', (response) => {
            let text = ''
            response.setEncoding('utf8')
            response.on('data', (chunk: string) => {
              text += chunk
            })
            response.on('end', () => resolve({ status: response.statusCode ?? 0, text }))
          })
          req.on('error', reject)
          req.end()
        })
        const universal = await send(`${url}/ai`, {
          body: [{ provider: 'openai', endpoint: 'chat/..#', headers: {}, query: chat('hi') }],
        })
        // A server that reads its request target as a URL takes `/v1/..#/admin` for `/`.
        expect([passthrough.status, JSON.parse(passthrough.text)]).toMatchObject([
          400,
          { error: [{ code: 2102 }] },
        ])
        expect([universal.status, universal.json()]).toMatchObject([400, { error: [{ code: 2102 }] }])
        expect(upstream.requests.map((sent) => sent.url)).toEqual([])
      } finally {
        await upstream.close()
      }
    })

    it("never sends a '..' between encoded slashes, which a server that decodes its path resolves", async () => {
      const upstream = await startFaultServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end('{}')
      })
      try {
        const url = await world.start({
          providers: { openai: { apiKey: 'sk-stored', baseURL: `${upstream.url}/v1` } },
        })
        // A server that decodes `%2e%2e` before resolving dot segments (Python's http.server, nginx) decodes
        // `%2f` and `%5c` with it: each of these is `/admin` there, outside `/v1`.
        for (const path of [
          '/ai/openai/..%2fadmin',
          '/ai/openai/x/%2E%2E%2F..%2Fadmin',
          '/ai/openai/..%5cadmin',
        ]) {
          // URL parsing leaves these as they are: none has a dot segment until it is decoded.
          const res = await send(`${url}${path}`)
          expect([res.status, res.json()], path).toMatchObject([400, { error: [{ code: 2102 }] }])
        }
        const universal = await send(`${url}/ai`, {
          body: [{ provider: 'openai', endpoint: 'x%2f..%2f..%2fadmin', headers: {}, query: chat('hi') }],
        })
        expect([universal.status, universal.json()]).toMatchObject([400, { error: [{ code: 2102 }] }])
        expect(upstream.requests.map((sent) => sent.url)).toEqual([])
      } finally {
        await upstream.close()
      }
    })

    it("serves Cloudflare's long URL form and refuses an unknown gateway name with 2001", async () => {
      mock.reset()
      const url = await world.start()
      const ok = await send(`${url}/ai/v1/acct-1/default/openai/chat/completions`, { body: chat('hi') })
      const unknown = await send(`${url}/ai/v1/acct-1/other/openai/chat/completions`, { body: chat('hi') })
      expect(ok.status).toBe(200)
      expect(unknown.status).toBe(400)
      expect(unknown.json()).toMatchObject({
        success: false,
        error: [{ code: 2001 }],
        name: 'AiGatewayError',
      })
      expect(mock.calls).toHaveLength(1)
    })

    it('answers an unknown provider with 400 and code 2008 in the reference body', async () => {
      const url = await world.start()
      const res = await supertest(url)
        .post('/ai/not-a-provider/chat/completions')
        .send(chat('hi'))
        .expect(400)
        .expect('content-type', 'application/json')
        .expect('cf-aig-request-id', UUID_V7)
      expect(res.body).toEqual({
        success: false,
        result: [],
        messages: [],
        error: [{ code: 2008, message: "Invalid provider: 'not-a-provider' is not a known provider" }],
        name: 'AiGatewayError',
        httpCode: 400,
        internalCode: 2008,
        message: "Invalid provider: 'not-a-provider' is not a known provider",
      })
    })

    it('lets a path that is not the gateway’s fall through to the host', async () => {
      const url = await world.start()
      const res = await supertest(url).get('/ai/').expect(200)
      expect(res.text).toMatch(/^host:/)
      expect(res.headers['cf-aig-request-id']).toBeUndefined()
    })

    for (const declared of [true, false]) {
      it(`refuses a body over the cap with 413 and code 2101 (${declared ? 'declared length' : 'chunked'})`, async () => {
        mock.reset()
        const url = await world.start({ maxBodyBytes: 1024 })
        const big = JSON.stringify(chat('x'.repeat(4096)))
        const response = await request(`${url}${CHAT}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: declared
            ? big
            : Readable.from([Buffer.from(big.slice(0, 2000)), Buffer.from(big.slice(2000))]),
        })
        const json = (await response.body.json()) as { error: { code: number }[] }
        expect(response.statusCode).toBe(413)
        expect(json.error[0]?.code).toBe(2101)
        expect(mock.calls).toHaveLength(0)
      })
    }

    it('cancels the upstream call when the client leaves before the answer', async () => {
      mock.reset()
      mock.enqueue({ stallBeforeHeaders: true })
      const url = await world.start()
      const controller = new AbortController()
      const pending = request(`${url}${CHAT}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(chat('hi')),
        signal: controller.signal,
      })
      pending.catch(() => {})
      await until(() => mock.calls.length === 1)
      controller.abort()
      await expect(mock.calls[0]?.outcome).resolves.toBe('aborted')
    })

    it('answers 504 with code 2105 when the first byte does not come within cf-aig-request-timeout', async () => {
      mock.reset()
      mock.enqueue({ stallBeforeHeaders: true })
      const url = await world.start()
      const res = await send(`${url}${CHAT}`, {
        body: chat('hi'),
        headers: { 'cf-aig-request-timeout': '150' },
      })
      expect(res.status).toBe(504)
      expect(res.json()).toMatchObject({ error: [{ code: 2105 }], name: 'AiGatewayError' })
      await expect(mock.calls[0]?.outcome).resolves.toBe('aborted')
    })

    it('rejects a malformed cf-aig-request-timeout with 400 and code 2100', async () => {
      mock.reset()
      const url = await world.start()
      const res = await send(`${url}${CHAT}`, {
        body: chat('hi'),
        headers: { 'cf-aig-request-timeout': 'soon' },
      })
      expect(res.status).toBe(400)
      expect(res.json()).toMatchObject({ error: [{ code: 2100 }] })
      expect(res.text).toContain('cf-aig-request-timeout')
      expect(mock.calls).toHaveLength(0)
    })

    it('answers 504 with code 2106 when a stream stalls before its first event', async () => {
      mock.reset()
      mock.enqueue({ stallAfterEvents: 0 })
      const url = await world.start({ timeouts: { idleMs: 200 } })
      const res = await send(`${url}${CHAT}`, { body: chat('hi', { stream: true }) })
      expect(res.status).toBe(504)
      expect(res.json()).toMatchObject({ error: [{ code: 2106 }] })
    })

    it('ends a stream that stalls mid-way with a terminal error event, never with [DONE]', async () => {
      // The head and three events in one write, then nothing: the gateway has them all at once, so its
      // idle clock alone decides when the stream is given up (events sent one by one could arrive late).
      const upstream = await startFaultServer((_req, res) => {
        res.writeHead(200, SSE_HEADERS)
        res.write(['one', ' two', ' three'].map((part) => openaiChunk(part)).join(''))
      })
      try {
        const url = await world.start({
          providers: { openai: { apiKey: 'sk-stored', baseURL: `${upstream.url}/v1` } },
          timeouts: { idleMs: 200 },
        })
        const res = await send(`${url}${CHAT}`, { body: chat('one two three', { stream: true }) })
        expect(res.status).toBe(200)
        const events = res.text.split('\n\n').filter(Boolean)
        expect(events).toHaveLength(4)
        expect(JSON.parse(events[3]!.slice('data: '.length))).toMatchObject({ error: { code: 2106 } })
        expect(res.text).not.toContain('[DONE]')
        await upstream.connectionClosed(0)
      } finally {
        await upstream.close()
      }
    })

    it('answers 504 with code 2107 when the total deadline passes', async () => {
      mock.reset()
      mock.enqueue({ stallBeforeHeaders: true })
      const url = await world.start({ timeouts: { totalMs: 200 } })
      const res = await send(`${url}${CHAT}`, { body: chat('hi') })
      expect(res.status).toBe(504)
      expect(res.json()).toMatchObject({ error: [{ code: 2107 }] })
    })

    it('answers 502 with code 2005 when the provider refuses the connection', async () => {
      const url = await world.start({ providers: { openai: { baseURL: 'http://127.0.0.1:1/v1' } } })
      const res = await send(`${url}${CHAT}`, { body: chat('hi') })
      expect(res.status).toBe(502)
      expect(res.json()).toMatchObject({ error: [{ code: 2005 }], name: 'AiGatewayError' })
      expect(res.text).not.toContain('127.0.0.1')
    })

    it('returns a redirect as the provider sent it, never following it', async () => {
      mock.reset()
      mock.enqueue({ status: 307, headers: { location: `${mock.url}/v1/models` }, body: '' })
      const url = await world.start()
      const res = await send(`${url}${CHAT}`, { body: chat('hi') })
      expect(res.status).toBe(307)
      expect(res.headers.location).toBe(`${mock.url}/v1/models`)
      expect(mock.calls).toHaveLength(1)
    })

    it('ends a stream the provider cuts with a terminal error event in its dialect', async () => {
      mock.reset()
      // Anthropic's first three events are its preamble (message_start, content_block_start, ping).
      mock.enqueue({ cutAfterEvents: 3 }, { cutAfterEvents: 5 })
      const url = await world.start()
      const openai = await send(`${url}${CHAT}`, { body: chat('one two three four five', { stream: true }) })
      const anthropic = await send(`${url}/ai/anthropic/v1/messages`, {
        body: {
          model: 'claude',
          max_tokens: 50,
          stream: true,
          messages: [{ role: 'user', content: 'one two three' }],
        },
      })
      const openaiEvents = openai.text.split('\n\n').filter(Boolean)
      expect(openaiEvents).toHaveLength(4)
      expect(openaiEvents[3]).toMatch(/^data: \{"error":\{.*"code":2108/)
      expect(openai.text).not.toContain('[DONE]')
      const anthropicEvents = anthropic.text.split('\n\n').filter(Boolean)
      expect(anthropicEvents.at(-1)).toMatch(
        /^event: error\ndata: \{"type":"error","error":\{"type":"api_error"/,
      )
      expect(anthropic.text).not.toContain('message_stop')
    })

    it("passes a provider's error through unchanged", async () => {
      mock.reset()
      mock.enqueue({ status: 429, retryAfter: 7 }, { status: 429, retryAfter: 7 })
      const url = await world.start()
      const viaGateway = await send(`${url}${CHAT}`, { body: chat('hi') })
      const direct = await send(`${mock.url}/v1/chat/completions`, {
        body: chat('hi'),
        headers: { authorization: 'Bearer sk-stored' },
      })
      expect(viaGateway.status).toBe(429)
      expect(viaGateway.headers['retry-after']).toBe('7')
      expect(viaGateway.text).toBe(direct.text)
      expect(viaGateway.text).not.toContain('AiGatewayError')
    })

    routingScenarios(world)
    failoverScenarios(world)
    resumeScenarios(world)
    compatFallbackScenarios(world)
    breakerScenarios(world)
    keyPoolScenarios(world)
    sixteenFailures(world, framework)
    dynamicRouteScenarios(world)
    spendLimitScenarios(world)
    policyScenarios(world)
    guardScenarios(world)
    guardStreamFaultScenarios(world)
    cacheScenarios(world)
    logScenarios(world)
    faultScenarios(world)
    hostScenarios(world)
    credentialScenarios(world)
    timingScenarios(world)
  })
}
