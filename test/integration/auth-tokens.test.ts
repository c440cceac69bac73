import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import express from 'express'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { aiGateway } from '../../adapters/express.js'
import {
  createGateway,
  type Gateway,
  type GatewayOptions,
  type GatewayRequest,
  type Principal,
  parseOptions,
  type Step,
} from '../../src/index.js'
import { closeServer, send, serverUrl } from '../helpers/http.js'

// Static gateway tokens (issue item 9): every token is a principal of its own for cache scope, limits and
// logs, so holders of two tokens never see each other's cached answers.

const PLAIN = 'plain-token-0123456789abcdef'
const CI = 'ci-token-fedcba9876543210'
const OTHER = 'other-token-00112233445566'
const PLAIN_ID = `token:${createHash('sha256').update(PLAIN).digest('hex').slice(0, 12)}`
const CHAT = '/ai/openai/chat/completions'

/** A raw upstream that answers every chat request and counts them. */
interface Upstream {
  url: string
  calls: { authorization: string | undefined; body: string }[]
  close(): Promise<void>
}

async function startUpstream(): Promise<Upstream> {
  const calls: Upstream['calls'] = []
  const server: Server = createServer(async (req: IncomingMessage, res) => {
    let body = ''
    for await (const chunk of req) body += chunk
    calls.push({ authorization: req.headers.authorization, body })
    const answer = JSON.stringify({
      id: `chatcmpl-${calls.length}`,
      object: 'chat.completion',
      created: 1,
      model: 'gpt-4o-mini',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: `answer ${calls.length}` },
          finish_reason: 'stop',
        },
      ],
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
    })
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) })
    res.end(answer)
  })
  server.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  return { url: serverUrl(server), calls, close: () => closeServer(server) }
}

function chat(text: string) {
  return { model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] }
}

function bearer(token: string) {
  return { 'cf-aig-authorization': `Bearer ${token}` }
}

let upstream: Upstream
const cleanups: (() => Promise<void>)[] = []

beforeAll(async () => {
  upstream = await startUpstream()
})
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
  await upstream.close()
})

function gatewayWith(options: GatewayOptions): Gateway {
  const gateway = createGateway({
    providers: { openai: { apiKey: 'sk-stored-provider-key', baseURL: `${upstream.url}/v1` } },
    ...options,
  })
  cleanups.push(() => gateway.close())
  return gateway
}

async function expressApp(gateway: Gateway): Promise<string> {
  const app = express()
  app.use('/ai', aiGateway(gateway))
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  cleanups.push(() => closeServer(server))
  return serverUrl(server)
}

async function principalLogged(gateway: Gateway, logId: string | undefined): Promise<string | null> {
  await gateway.flushLogs()
  const record = await gateway.logs!.get(logId!)
  expect(record, `log record ${logId}`).toBeDefined()
  return record!.principal
}

function handleRequest(token: string, body: object, signal = new AbortController().signal): GatewayRequest {
  return {
    method: 'POST',
    path: '/openai/chat/completions',
    search: '',
    headers: { 'content-type': 'application/json', ...bearer(token) },
    signal,
    body: JSON.stringify(body),
  }
}

/** A host step placed right after `identify`, recording the principal the rest of the pipeline sees. */
function principalSpy(seen: (Principal | undefined)[]): GatewayOptions['steps'] {
  const spy: Step = async (ctx, next) => {
    seen.push(ctx.state.principal)
    await next()
  }
  return (builtIn) => {
    const at = builtIn.findIndex((step) => step.name === 'identify')
    return [...builtIn.slice(0, at + 1), spy, ...builtIn.slice(at + 1)]
  }
}

describe('static gateway tokens are principals (Express, real HTTP)', () => {
  it('two tokens asking the same prompt are two upstream calls; one token twice is one; logs name each', async () => {
    const gateway = gatewayWith({
      authentication: { tokens: [PLAIN, { name: 'ci', token: CI }] },
      cache: { ttl: 60 },
    })
    const url = await expressApp(gateway)
    const before = upstream.calls.length
    const prompt = chat('the same prompt for everyone')

    const first = await send(`${url}${CHAT}`, { body: prompt, headers: bearer(PLAIN) })
    const second = await send(`${url}${CHAT}`, { body: prompt, headers: bearer(CI) })
    const again = await send(`${url}${CHAT}`, { body: prompt, headers: bearer(PLAIN) })

    expect([first.status, second.status, again.status]).toEqual([200, 200, 200])
    expect(first.headers['cf-aig-cache-status']).toBe('MISS')
    expect(second.headers['cf-aig-cache-status']).toBe('MISS')
    expect(again.headers['cf-aig-cache-status']).toBe('HIT')
    expect(upstream.calls.length - before).toBe(2)
    // Both used the stored provider key: without a principal per token they would have shared one entry.
    for (const call of upstream.calls.slice(before))
      expect(call.authorization).toBe('Bearer sk-stored-provider-key')
    expect(second.json()).not.toEqual(first.json())
    expect(again.json()).toEqual(first.json())

    expect(await principalLogged(gateway, first.headers['cf-aig-log-id'])).toBe(PLAIN_ID)
    expect(await principalLogged(gateway, second.headers['cf-aig-log-id'])).toBe('ci')
    expect(await principalLogged(gateway, again.headers['cf-aig-log-id'])).toBe(PLAIN_ID)
  })

  it('a limit keyed on principal counts each token separately', async () => {
    const gateway = gatewayWith({
      authentication: { tokens: [PLAIN, { name: 'ci', token: CI }, OTHER] },
      rateLimit: { name: 'per-caller', limit: 1, window: 60, key: 'principal' },
    })
    const url = await expressApp(gateway)
    const plain = await send(`${url}${CHAT}`, { body: chat('limit 1'), headers: bearer(PLAIN) })
    const ci = await send(`${url}${CHAT}`, { body: chat('limit 2'), headers: bearer(CI) })
    const other = await send(`${url}${CHAT}`, { body: chat('limit 3'), headers: bearer(OTHER) })
    const plainAgain = await send(`${url}${CHAT}`, { body: chat('limit 4'), headers: bearer(PLAIN) })
    const ciAgain = await send(`${url}${CHAT}`, { body: chat('limit 5'), headers: bearer(CI) })
    expect([plain.status, ci.status, other.status]).toEqual([200, 200, 200])
    expect([plainAgain.status, ciAgain.status]).toEqual([429, 429])
    expect(plainAgain.json()).toMatchObject({ error: [{ code: 2003 }] })
  })

  it('a wrong token is still a bare 401, and the token never shows in a principal id', async () => {
    const gateway = gatewayWith({ authentication: { tokens: [PLAIN, { name: 'ci', token: CI }] } })
    const url = await expressApp(gateway)
    const denied = await send(`${url}${CHAT}`, { body: chat('x'), headers: bearer(`${CI}x`) })
    expect(denied.status).toBe(401)
    expect(denied.json()).toMatchObject({ error: [{ code: 2009, message: 'Unauthorized' }] })
    expect(PLAIN_ID).toMatch(/^token:[0-9a-f]{12}$/)
    expect(PLAIN_ID).not.toContain(PLAIN.slice(0, 8))
  })

  it('masks a named token in logged bodies like a plain one', async () => {
    const gateway = gatewayWith({ authentication: { tokens: [{ name: 'ci', token: CI }] } })
    const url = await expressApp(gateway)
    const res = await send(`${url}${CHAT}`, { body: chat(`my token is ${CI}`), headers: bearer(CI) })
    expect(res.status).toBe(200)
    await gateway.flushLogs()
    const record = await gateway.logs!.get(res.headers['cf-aig-log-id']!)
    expect(JSON.stringify(record?.requestBody)).toContain('my token is')
    expect(JSON.stringify(record)).not.toContain(CI)
  })
})

describe('static gateway tokens through gateway.handle', () => {
  it('scopes the cache per token and logs the principal', async () => {
    const gateway = gatewayWith({
      authentication: { tokens: [PLAIN, { name: 'ci', token: CI }] },
      cache: { ttl: 60 },
    })
    const before = upstream.calls.length
    const prompt = chat('handle: same prompt')
    const a = await gateway.handle(handleRequest(PLAIN, prompt))
    const b = await gateway.handle(handleRequest(CI, prompt))
    const c = await gateway.handle(handleRequest(CI, prompt))
    expect([a?.status, b?.status, c?.status]).toEqual([200, 200, 200])
    expect([a, b, c].map((r) => r?.headers['cf-aig-cache-status'])).toEqual(['MISS', 'MISS', 'HIT'])
    expect(upstream.calls.length - before).toBe(2)
    expect(await principalLogged(gateway, a?.headers['cf-aig-log-id'])).toBe(PLAIN_ID)
    expect(await principalLogged(gateway, c?.headers['cf-aig-log-id'])).toBe('ci')
  })

  it('gives a plain token the same id in every gateway instance (a shared store keeps working)', async () => {
    const seen: (Principal | undefined)[] = []
    for (const _instance of [1, 2]) {
      const gateway = gatewayWith({ authentication: { tokens: [PLAIN] }, steps: principalSpy(seen) })
      expect((await gateway.handle(handleRequest(PLAIN, chat('instances'))))?.status).toBe(200)
    }
    expect(seen).toEqual([{ id: PLAIN_ID }, { id: PLAIN_ID }])
  })

  it("identify's answer wins when it names someone; otherwise the token's principal stays", async () => {
    const seen: (Principal | undefined)[] = []
    const answers: (Principal | undefined)[] = [
      { id: 'user-7', tenant: 'acme' },
      undefined,
      { plan: 'pro' },
      { id: undefined, tenant: undefined },
      { tenant: 'globex' },
    ]
    let turn = 0
    const gateway = gatewayWith({
      authentication: { tokens: [{ name: 'ci', token: CI }] },
      identify: () => answers[turn++],
      steps: principalSpy(seen),
    })
    for (const _answer of answers) {
      expect((await gateway.handle(handleRequest(CI, chat(`identify ${turn}`))))?.status).toBe(200)
    }
    expect(seen).toEqual([
      { id: 'user-7', tenant: 'acme' },
      { id: 'ci' },
      { id: 'ci', plan: 'pro' },
      { id: 'ci' },
      { tenant: 'globex' },
    ])
  })

  it('a verifyToken principal still applies to tokens the list does not hold', async () => {
    const seen: (Principal | undefined)[] = []
    const gateway = gatewayWith({
      authentication: {
        tokens: [{ name: 'ci', token: CI }],
        verifyToken: (token) => (token === OTHER ? { id: 'ann' } : token === PLAIN),
      },
      steps: principalSpy(seen),
    })
    for (const token of [CI, OTHER, PLAIN]) {
      expect((await gateway.handle(handleRequest(token, chat(token))))?.status).toBe(200)
    }
    expect(seen).toEqual([{ id: 'ci' }, { id: 'ann' }, undefined])
  })
})

describe('authentication.tokens validation', () => {
  function failure(tokens: unknown): string {
    try {
      parseOptions({ authentication: { tokens } })
    } catch (error) {
      return (error as Error).message
    }
    throw new Error('expected the options to be refused')
  }

  it('accepts plain and named tokens together', () => {
    const resolved = parseOptions({ authentication: { tokens: [PLAIN, { name: 'ci-bot-2', token: CI }] } })
    expect(resolved.authentication?.tokens).toEqual([PLAIN, { name: 'ci-bot-2', token: CI }])
  })

  it('refuses a token listed twice, naming the entries and never the token', () => {
    const message = failure([PLAIN, { name: 'ci', token: CI }, { name: 'again', token: PLAIN }])
    expect(message).toContain('authentication.tokens.2: the same token as tokens.0')
    expect(message).not.toContain(PLAIN)
  })

  it('refuses a name used twice', () => {
    const message = failure([
      { name: 'ci', token: CI },
      { name: 'ci', token: OTHER },
    ])
    expect(message).toContain("authentication.tokens.1.name: name 'ci' is used by tokens.0 too")
    expect(message).not.toContain(OTHER)
  })

  it('refuses names that are not slugs, short tokens and tokens with spaces', () => {
    expect(failure([{ name: 'CI Bot', token: CI }])).toContain(
      'authentication.tokens.0.name: expected a slug (a-z, 0-9, -)',
    )
    expect(failure([{ name: 'token:abc', token: CI }])).toContain('authentication.tokens.0.name')
    expect(failure([{ name: 'ci', token: 'short' }])).toContain(
      'authentication.tokens.0.token: expected a token of at least 16 characters',
    )
    expect(failure(['with a space in it 0123456789'])).toContain('expected a token without spaces')
    expect(failure([{ name: 'ci', token: CI, extra: true }])).toContain('authentication.tokens.0')
  })
})
