import { once } from 'node:events'
import { createServer, type Socket, connect as tcpConnect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { StoreErrorEvent } from '../../src/events.js'
import {
  createGateway,
  createMemoryLimitStore,
  type GatewayOptions,
  type GatewayRequest,
  type LimitDecision,
  type LimitStore,
} from '../../src/index.js'
import { createMockProvider, type MockProvider } from '../../src/testing/index.js'

let mock: MockProvider
beforeAll(async () => {
  mock = await createMockProvider()
})
afterAll(() => mock.close())

function gatewayFor(options: GatewayOptions = {}) {
  return createGateway({
    providers: { openai: { apiKey: 'sk-stored', baseURL: `${mock.url}/v1` } },
    ...options,
  })
}

function chat(
  text: string,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): GatewayRequest {
  return {
    method: 'POST',
    path: '/openai/chat/completions',
    search: '',
    headers: { 'content-type': 'application/json', ...headers },
    signal: new AbortController().signal,
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }], ...extra }),
  }
}

async function statusOf(gateway: ReturnType<typeof gatewayFor>, request: GatewayRequest): Promise<number> {
  const response = await gateway.handle(request)
  return response!.status
}

/** 12:mm on one day, in ms since the epoch. */
const at = (minutes: number, seconds = 0) => Date.UTC(2026, 0, 5, 12, minutes, seconds)

describe('rate limits through the gateway', () => {
  for (const [technique, secondBatch] of [
    ['fixed', 200],
    ['sliding', 429],
  ] as const) {
    it(`the reference's example: 10 per 10 minutes, 10 requests at 12:09 and 10 at 12:11 (${technique})`, async () => {
      let now = at(9)
      const gateway = gatewayFor({ rateLimit: { limit: 10, window: 600, technique }, now: () => now })
      for (let i = 0; i < 10; i++) expect(await statusOf(gateway, chat(`a${i}`))).toBe(200)
      now = at(11)
      for (let i = 0; i < 10; i++) expect(await statusOf(gateway, chat(`b${i}`))).toBe(secondBatch)
      await gateway.close()
    })
  }

  it('a refusal by one rule gives back what the rules before it admitted', async () => {
    const store = createMemoryLimitStore()
    const gateway = gatewayFor({
      rateLimit: [
        { name: 'wide', limit: 3, window: 60, store },
        { name: 'narrow', limit: 1, window: 60, key: 'metadata.team', store },
      ],
    })
    const team = (name: string) => ({ 'cf-aig-metadata': JSON.stringify({ team: name }) })
    expect(await statusOf(gateway, chat('1', {}, team('red')))).toBe(200)
    expect(await statusOf(gateway, chat('2', {}, team('red')))).toBe(429)
    expect(await statusOf(gateway, chat('3', {}, team('red')))).toBe(429)
    // 'wide' counted only the one request that went through, so two more fit.
    expect(await statusOf(gateway, chat('4', {}, team('blue')))).toBe(200)
    expect(await statusOf(gateway, chat('5', {}))).toBe(200)
    expect(await statusOf(gateway, chat('6', {}))).toBe(429)
    await gateway.close()
  })

  it('token rules reserve an estimate and settle it with the usage the answer reports', async () => {
    const memory = createMemoryLimitStore()
    // The settlement goes to the store after the answer: the test waits for that call, not for time.
    let settled!: () => void
    const adjusted = new Promise<void>((resolve) => {
      settled = resolve
    })
    const store: LimitStore = {
      consume: (...args) => memory.consume(...args),
      adjust: (...args) => {
        memory.adjust(...args)
        settled()
      },
    }
    const window = { limit: 1000, windowMs: 60_000, technique: 'sliding' as const }
    let now = at(0)
    const gateway = gatewayFor({
      rateLimit: { name: 'tokens', limit: 1000, window: 60, unit: 'tokens', store },
      now: () => now,
    })
    const response = await gateway.handle(chat('count my tokens', { max_tokens: 500 }))
    expect(response?.status).toBe(200)
    const usage = (JSON.parse(String(response?.body)) as { usage: { total_tokens: number } }).usage
    await adjusted
    now += 1
    const probe = store.consume('probe', 1, window, now) as { remaining: number }
    expect(probe.remaining).toBe(999)
    const left = store.consume(`default:tokens:`, 1, window, now) as { remaining: number }
    expect(left.remaining).toBe(1000 - usage.total_tokens - 1)
    await gateway.close()
  })

  it('a token reservation larger than the limit is refused before the provider is called', async () => {
    mock.reset()
    const gateway = gatewayFor({ rateLimit: { limit: 100, window: 60, unit: 'tokens' } })
    const response = await gateway.handle(chat('too big', { max_tokens: 4096 }))
    expect(response?.status).toBe(429)
    expect(mock.calls).toHaveLength(0)
    await gateway.close()
  })

  it.each([
    ['tokens', '1e300'],
    ['tokens', '1e999'],
    ['tokens', '9007199254740993'],
    ['cost', '1e300'],
    ['cost', '1e999'],
  ] as const)(
    'a %s estimate past what stores count (max_tokens %s) is refused for its caller alone',
    async (unit, cap) => {
      const gateway = gatewayFor({
        rateLimit: { unit, limit: 1000, window: 60, key: 'principal', onStoreError: 'closed' },
        identify: (_host, request) => ({ id: String(request.headers['x-user']) }),
      })
      const errors: StoreErrorEvent[] = []
      gateway.events.on('store:error', (e) => errors.push(e))
      const request = chat('huge', {}, { 'x-user': 'mallory' })
      // Written by hand: JSON.stringify cannot write 1e999 (read back, it is Infinity).
      const huge = { ...request, body: String(request.body).replace(/}$/, `,"max_tokens":${cap}}`) }
      expect(await statusOf(gateway, huge)).toBe(429)
      // Had the store been taken for down, this rule (failing closed) would answer 503.
      expect(await statusOf(gateway, chat('fits', {}, { 'x-user': 'ann' }))).toBe(200)
      expect(errors).toEqual([])
      await gateway.close()
    },
  )

  it('a store refusing the amount it was given fails that request alone; the rule keeps its store', async () => {
    const memory = createMemoryLimitStore()
    const picky: LimitStore = {
      consume: (key, ...rest) => {
        if (key.endsWith(':mallory')) throw new RangeError('not an amount this store counts')
        return memory.consume(key, ...rest)
      },
      adjust: (...args) => memory.adjust(...args),
    }
    const gateway = gatewayFor({
      rateLimit: { limit: 5, window: 60, key: 'principal', store: picky, onStoreError: 'closed' },
      identify: (_host, request) => ({ id: String(request.headers['x-user']) }),
    })
    const errors: StoreErrorEvent[] = []
    gateway.events.on('store:error', (e) => errors.push(e))
    expect(await statusOf(gateway, chat('1', {}, { 'x-user': 'mallory' }))).toBe(500)
    expect(await statusOf(gateway, chat('2', {}, { 'x-user': 'ann' }))).toBe(200)
    expect(errors).toEqual([])
    await gateway.close()
  })

  it('fails open on a store that throws, by the in-process insurance limit, and reports it', async () => {
    const broken: LimitStore = {
      consume: () => Promise.reject(new Error('connection refused')),
      adjust: () => undefined,
    }
    const gateway = gatewayFor({ rateLimit: { limit: 5, window: 60, store: broken, insuranceLimit: 2 } })
    const errors: StoreErrorEvent[] = []
    gateway.events.on('store:error', (e) => errors.push(e))
    expect(await statusOf(gateway, chat('1'))).toBe(200)
    expect(await statusOf(gateway, chat('2'))).toBe(200)
    expect(await statusOf(gateway, chat('3'))).toBe(429)
    expect(errors[0]).toMatchObject({ store: 'limit', operation: 'consume' })
    await gateway.close()
  })

  it('fails closed with 503 and code 2116 on a store that never answers, without waiting past its timeout', async () => {
    const hanging: LimitStore = { consume: () => new Promise(() => {}), adjust: () => undefined }
    const gateway = gatewayFor({
      rateLimit: { limit: 5, window: 60, store: hanging, onStoreError: 'closed', storeTimeoutMs: 50 },
    })
    const response = await gateway.handle(chat('hello'))
    expect(response?.status).toBe(503)
    expect(JSON.parse(String(response?.body))).toMatchObject({ error: [{ code: 2116 }] })
    await gateway.close()
  })

  it('asks a store again after it failed, and uses it once it answers', async () => {
    let down = true
    const memory = createMemoryLimitStore()
    const flaky: LimitStore = {
      consume: (...args) => (down ? Promise.reject(new Error('down')) : memory.consume(...args)),
      adjust: (...args) => memory.adjust(...args),
    }
    let now = at(0)
    const gateway = gatewayFor({
      rateLimit: { limit: 1, window: 60, store: flaky, insuranceLimit: 100 },
      now: () => now,
    })
    expect(await statusOf(gateway, chat('1'))).toBe(200)
    expect(await statusOf(gateway, chat('2'))).toBe(200)
    down = false
    // Past the pause a rule keeps after its store failed.
    now += 1100
    expect(await statusOf(gateway, chat('3'))).toBe(200)
    expect(await statusOf(gateway, chat('4'))).toBe(429)
    await gateway.close()
  })

  it('without insuranceLimit, falls back to ceil(limit / 10) per window, not the whole limit', async () => {
    const broken: LimitStore = {
      consume: () => Promise.reject(new Error('connection refused')),
      adjust: () => undefined,
    }
    const gateway = gatewayFor({ rateLimit: { limit: 25, window: 60, store: broken } })
    const statuses = []
    for (let i = 0; i < 5; i++) statuses.push(await statusOf(gateway, chat(`${i}`)))
    expect(statuses).toEqual([200, 200, 200, 429, 429])
    await gateway.close()
  })

  it("passes the rule's storeTimeoutMs to the store with every consume and adjust", async () => {
    const memory = createMemoryLimitStore()
    const seen: unknown[] = []
    let gaveBack!: () => void
    const adjusted = new Promise<void>((resolve) => {
      gaveBack = resolve
    })
    const spy: LimitStore = {
      consume: (key, amount, window, now, call) => {
        seen.push(['consume', call])
        return Promise.resolve(memory.consume(key, amount, window, now))
      },
      adjust: (key, reservation, delta, window, now, call) => {
        seen.push(['adjust', call])
        gaveBack()
        return memory.adjust(key, reservation, delta, window, now)
      },
    }
    const gateway = gatewayFor({
      rateLimit: [
        { name: 'first', limit: 5, window: 60, store: spy, storeTimeoutMs: 750 },
        { name: 'second', limit: 0 + 1, window: 60, store: spy, storeTimeoutMs: 750 },
      ],
    })
    expect(await statusOf(gateway, chat('1'))).toBe(200)
    // Refused by 'second': what 'first' admitted is given back, through adjust.
    expect(await statusOf(gateway, chat('2'))).toBe(429)
    await adjusted
    expect(seen).toEqual([
      ['consume', { timeoutMs: 750 }],
      ['consume', { timeoutMs: 750 }],
      ['consume', { timeoutMs: 750 }],
      ['consume', { timeoutMs: 750 }],
      ['adjust', { timeoutMs: 750 }],
    ])
    await gateway.close()
  })

  it('gives back what a store admitted after its call had timed out and the fallback had decided', async () => {
    let answer!: (decision: LimitDecision) => void
    let adjust!: (args: unknown[]) => void
    const adjusted = new Promise<unknown[]>((resolve) => (adjust = resolve))
    const slow: LimitStore = {
      consume: () => new Promise<LimitDecision>((resolve) => (answer = resolve)),
      adjust: (...args) => adjust(args),
    }
    const gateway = gatewayFor({ rateLimit: { limit: 10, window: 60, store: slow, storeTimeoutMs: 20 } })
    // Decided by the insurance limit once the store's call timed out.
    expect(await statusOf(gateway, chat('1'))).toBe(200)
    answer({ allowed: true, remaining: 9, resetMs: 60_000, reservation: 'r1' })
    const [key, reservation, delta] = await adjusted
    expect([key, reservation, delta]).toEqual(['default:default:', 'r1', -1])
    await gateway.close()
  })

  it('uses an answer already waiting in a socket when the timeout fires late, after a long turn of the event loop', async () => {
    const server = createServer()
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const accepted = once(server, 'connection') as Promise<[Socket]>
    const client = tcpConnect((server.address() as { port: number }).port, '127.0.0.1')
    await once(client, 'connect')
    const [serverSide] = await accepted
    const memory = createMemoryLimitStore()
    // The answer is written to the socket at once; then this process is busy for longer than the timeout,
    // so the timer and the socket's data are both due when the event loop gets back to them.
    const busy: LimitStore = {
      consume: (key, amount, window, now) => {
        const decision = memory.consume(key, amount, window, now) as LimitDecision
        serverSide.write('x')
        queueMicrotask(() => {
          const until = performance.now() + 60
          while (performance.now() < until) {}
        })
        return new Promise((resolve) => client.once('data', () => resolve(decision)))
      },
      adjust: () => undefined,
    }
    const gateway = gatewayFor({
      rateLimit: { limit: 1, window: 60, store: busy, insuranceLimit: 100, storeTimeoutMs: 20 },
    })
    const errors: StoreErrorEvent[] = []
    gateway.events.on('store:error', (e) => errors.push(e))
    expect(await statusOf(gateway, chat('1'))).toBe(200)
    // Had the timeout won, the insurance limit (100) would admit this one too.
    expect(await statusOf(gateway, chat('2'))).toBe(429)
    expect(errors).toEqual([])
    client.destroy()
    server.close()
    await gateway.close()
  })

  it('while a store is down, one request at a time asks it again; the others keep to the fallback meanwhile', async () => {
    let calls = 0
    let state: 'down' | 'hanging' | 'up' = 'down'
    let release!: () => void
    const memory = createMemoryLimitStore()
    const flaky: LimitStore = {
      consume: (...args) => {
        calls++
        if (state === 'down') return Promise.reject(new Error('down'))
        if (state === 'up') return memory.consume(...args)
        return new Promise<void>((resolve) => (release = resolve)).then(() => memory.consume(...args))
      },
      adjust: (...args) => memory.adjust(...args),
    }
    let now = at(0)
    const gateway = gatewayFor({
      rateLimit: { limit: 2, window: 60, store: flaky, insuranceLimit: 100, storeTimeoutMs: 60_000 },
      now: () => now,
    })
    expect(await statusOf(gateway, chat('1'))).toBe(200)
    expect(calls).toBe(1)
    // A second later the store is asked again; this time it hangs until released.
    state = 'hanging'
    now += 1100
    const probe = statusOf(gateway, chat('probe'))
    // Answered by the fallback without waiting for the probe, and without asking the store.
    expect(await statusOf(gateway, chat('meanwhile'))).toBe(200)
    expect(calls).toBe(2)
    state = 'up'
    release()
    expect(await probe).toBe(200)
    // The store is back and decides every request again: the probe took 1 of its 2.
    expect(await statusOf(gateway, chat('3'))).toBe(200)
    expect(await statusOf(gateway, chat('4'))).toBe(429)
    expect(calls).toBe(4)
    await gateway.close()
  })

  it('rejects rule names given twice', () => {
    expect(() =>
      gatewayFor({
        rateLimit: [
          { name: 'a', limit: 1, window: 1 },
          { name: 'a', limit: 2, window: 1 },
        ],
      }),
    ).toThrow(/rateLimit.*'a'/)
  })
})
