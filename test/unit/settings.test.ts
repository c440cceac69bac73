import { describe, expect, expectTypeOf, it } from 'vitest'
import { GatewayOptionsError } from '../../src/errors.js'
import type {
  AuthenticationOptions,
  CacheOptions,
  ForwardOptions,
  LimitOptions,
  RecordOptions,
  Step,
} from '../../src/index.js'
import { readRequestSettings } from '../../src/settings.js'
import { authenticate, cache, forward, limit, parse, record, route } from '../../src/steps/index.js'
import { createTestContext } from '../../src/testing/index.js'

const noop = async () => {}
const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }

async function routed(options: Parameters<typeof createTestContext>[0]) {
  const ctx = createTestContext(options)
  await parse()(ctx, () => route()(ctx, noop))
  return ctx
}

describe('request settings and target policy', () => {
  it('reads each cf-aig header into the request, its caching or its target policy', () => {
    const settings = readRequestSettings({
      'cf-aig-event-id': 'evt-1',
      'cf-aig-collect-log': 'false',
      'cf-aig-cache-ttl': '120',
      'cf-skip-cache': 'true',
      'cf-aig-cache-key': 'k1',
      'cf-aig-request-timeout': '5000',
      'cf-aig-max-attempts': '3',
      'cf-aig-byok-alias': 'team-a',
    })
    expect(settings).toEqual({
      eventId: 'evt-1',
      collectLog: false,
      cache: { ttl: 120, skip: true, key: 'k1' },
      target: { requestTimeoutMs: 5000, maxAttempts: 3, keyAlias: 'team-a' },
    })
  })

  it('gives a passthrough target the request policy and what its body asks for', async () => {
    const ctx = await routed({
      request: {
        path: '/openai/v1/chat/completions',
        headers: { 'cf-aig-max-attempts': '2' },
        body: { ...chat, stream: true },
      },
    })
    const target = ctx.state.targets?.[0]
    expect(target).toMatchObject({ model: 'gpt-4o-mini', stream: true, policy: { maxAttempts: 2 } })
    // The gateway asked for usage on the client's behalf, and says so to the stream that hides it again.
    expect(target?.streamUsage).toBe('hidden')
    // Appended to the client's bytes as they came, before their closing brace.
    const sent = JSON.stringify({ ...chat, stream: true })
    expect(target!.body!.toString()).toBe(`${sent.slice(0, -1)},"stream_options":{"include_usage":true}}`)
  })

  it('reads a Gemini model and stream from the path', async () => {
    const ctx = await routed({
      request: {
        path: '/google-ai-studio/v1beta/models/gemini-2.5-flash:streamGenerateContent',
        search: '?alt=sse',
        body: { contents: [{ parts: [{ text: 'hi' }] }] },
      },
    })
    expect(ctx.state.targets?.[0]).toMatchObject({ model: 'gemini-2.5-flash', stream: true })
  })

  it('lets a universal step override the policy of its own target only, and its config override both', async () => {
    const step = (headers: Record<string, string>, config?: object) => ({
      provider: 'openai',
      endpoint: 'chat/completions',
      headers,
      query: chat,
      ...(config === undefined ? {} : { config }),
    })
    const ctx = await routed({
      request: {
        path: '/',
        headers: { 'cf-aig-request-timeout': '1000', 'cf-aig-cache-ttl': '600' },
        body: [
          step({ 'CF-AIG-Max-Attempts': '4', 'cf-aig-cache-ttl': '0' }),
          step({ 'cf-aig-request-timeout': '2000' }, { requestTimeout: 3000 }),
          step({}),
        ],
      },
    })
    expect(ctx.state.targets?.map((target) => target.policy)).toEqual([
      { requestTimeoutMs: 1000, maxAttempts: 4 },
      { requestTimeoutMs: 3000 },
      { requestTimeoutMs: 1000 },
    ])
    // Caching is decided once for the chain: the first step's header beats the request's.
    expect(ctx.state.settings?.cache).toEqual({ ttl: 0 })
  })

  it('keeps the request caching when the first universal step has none', async () => {
    const ctx = await routed({
      request: {
        path: '/',
        headers: { 'cf-aig-cache-ttl': '600' },
        body: [
          { provider: 'openai', endpoint: 'chat/completions', headers: { 'x-other': '1' }, query: chat },
        ],
      },
    })
    expect(ctx.state.settings?.cache).toEqual({ ttl: 600 })
  })

  it('forward() validates its own caps and clocks', () => {
    expect(() => forward({ maxEventBytes: 0 })).toThrow(GatewayOptionsError)
    expect(() => forward({ timeouts: { writeStallMs: -1 } })).toThrow(/writeStallMs/)
    expect(forward({ maxStreamBytes: 1024, timeouts: { writeStallMs: 50 } })).toBeTypeOf('function')
  })
})

describe('step factory signatures', () => {
  it('are functions of their own options returning a step', () => {
    expectTypeOf(authenticate).parameter(0).toEqualTypeOf<AuthenticationOptions | undefined>()
    expectTypeOf(cache).parameter(0).toEqualTypeOf<CacheOptions | undefined>()
    expectTypeOf(limit).parameter(0).toEqualTypeOf<LimitOptions | undefined>()
    expectTypeOf(forward).parameter(0).toEqualTypeOf<ForwardOptions | undefined>()
    expectTypeOf(record).parameter(0).toEqualTypeOf<RecordOptions | undefined>()
    for (const factory of [authenticate, cache, forward, record, parse, route]) {
      expectTypeOf(factory).returns.toEqualTypeOf<Step>()
      expect(factory()).toBeTypeOf('function')
    }
    expectTypeOf(limit).returns.toEqualTypeOf<Step>()
  })
})
