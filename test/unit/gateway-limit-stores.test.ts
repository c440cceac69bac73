import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { createGateway, type GatewayRequest } from '../../src/index.js'
import { createMockProvider, type MockProvider } from '../../src/testing/index.js'

// The gateway's own limit stores, small enough for a test to fill (100 000 keys by default).
vi.mock('../../src/stores/memory-limits.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/stores/memory-limits.js')>()
  return {
    ...original,
    createMemoryLimitStore: (options = {}) => original.createMemoryLimitStore({ ...options, maxKeys: 3 }),
  }
})

let mock: MockProvider
beforeAll(async () => {
  mock = await createMockProvider()
})
afterAll(() => mock.close())

function chat(model: string, metadata?: Record<string, string>): GatewayRequest {
  return {
    method: 'POST',
    path: '/openai/chat/completions',
    search: '',
    headers: {
      'content-type': 'application/json',
      'x-user': 'carl',
      ...(metadata && { 'cf-aig-metadata': JSON.stringify(metadata) }),
    },
    signal: new AbortController().signal,
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hello' }] }),
  }
}

it("keeps policies' caps apart from rate limits: keys a caller mints for a rule cannot push a cap out", async () => {
  const gateway = createGateway({
    providers: { openai: { apiKey: 'sk-stored', baseURL: `${mock.url}/v1` } },
    identify: (_host, request) => ({ id: String(request.headers['x-user']) }),
    policies: [
      {
        id: 'gpt-4o-daily',
        actor: '{principal.id}',
        resource: 'openai/gpt-4o',
        action: { type: 'limit', amount: 0.000001, period: 'daily', technique: 'named-interval' },
      },
      { id: 'mini-free', actor: '*', resource: 'openai/gpt-4o-mini', action: { type: 'no-limit' } },
    ],
    rateLimit: { name: 'team', key: 'metadata.team', limit: 1000, window: 60 },
    now: () => Date.UTC(2026, 11, 7, 10, 0, 0),
  })
  const status = async (request: GatewayRequest) => (await gateway.handle(request))!.status
  expect(await status(chat('gpt-4o'))).toBe(200)
  await gateway.flushLogs()
  expect(await status(chat('gpt-4o'))).toBe(429)
  // Admitted, so each team's counter is live: the rate limits' store is full of them.
  for (let team = 0; team < 5; team++)
    expect(await status(chat('gpt-4o-mini', { team: `t${team}` }))).toBe(200)
  expect(await status(chat('gpt-4o'))).toBe(429)
  await gateway.close()
})
