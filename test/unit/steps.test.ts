import { describe, expect, it } from 'vitest'
import { GatewayOptionsError } from '../../src/errors.js'
import { authenticate, cache, forward, identify, limit, parse, record, route } from '../../src/steps/index.js'
import { createTestContext } from '../../src/testing/index.js'

const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }
const noop = async () => {}

describe('built-in steps on createTestContext()', () => {
  it('authenticate() refuses a wrong token and admits a known one', async () => {
    const step = authenticate({ tokens: [{ name: 'ci', token: 'ci-token-0123456789abcdef' }] })
    await expect(step(createTestContext(), noop)).rejects.toMatchObject({ key: 'UNAUTHORIZED' })
    const ctx = createTestContext({
      request: { headers: { 'cf-aig-authorization': 'Bearer ci-token-0123456789abcdef' } },
    })
    await step(ctx, noop)
    expect(ctx.state.principal).toEqual({ id: 'ci' })
    expect(() => authenticate({ tokens: ['short'] })).toThrow(GatewayOptionsError)
  })

  it('identify() asks its own function', async () => {
    const ctx = createTestContext({ request: { host: { user: 'ada' } } })
    await identify((host) => ({ id: (host as { user: string }).user }))(ctx, noop)
    expect(ctx.state.principal).toEqual({ id: 'ada' })
  })

  it('parse() then route() resolve the target of a compat request', async () => {
    const ctx = createTestContext({ request: { body: { ...chat, model: 'openai/gpt-4o-mini' } } })
    await parse()(ctx, () => route()(ctx, noop))
    expect(ctx.state.targets?.[0]?.provider.spec.id).toBe('openai')
  })

  it('limit() compiles its rules once and refuses past the limit', async () => {
    expect(() => limit({ rules: [{ limit: 0, window: 60 }] })).toThrow(/rules\.0\.limit/)
    const step = limit({ rules: { name: 'one', limit: 1, window: 60 } })
    const answer = async (ctx: ReturnType<typeof createTestContext>) => {
      await step(ctx, async () => {
        ctx.response = { status: 200, headers: {}, body: 'ok' }
      })
    }
    await answer(createTestContext())
    await expect(answer(createTestContext())).rejects.toMatchObject({ key: 'RATE_LIMITED' })
    expect(step.watchesUsage).toBeUndefined()
    expect(limit({ rules: { limit: 100, window: 60, unit: 'tokens' } }).watchesUsage).toBe(true)
  })

  it('cache() serves a repeat from its own store', async () => {
    const step = cache({ ttl: 60 })
    let calls = 0
    const run = async () => {
      const ctx = createTestContext({ request: { body: { ...chat, model: 'openai/gpt-4o-mini' } } })
      await route()(ctx, () =>
        step(ctx, async () => {
          calls++
          ctx.response = { status: 200, headers: { 'content-type': 'application/json' }, body: '{}' }
        }),
      )
      return ctx
    }
    // No pause between them: until its entry is in the store, the first call stays listed as in flight and
    // the second is served from it, so the second is a hit whenever it comes.
    expect((await run()).state.cacheStatus).toBe('MISS')
    expect((await run()).state.cacheStatus).toBe('HIT')
    expect(calls).toBe(1)
    expect(() => cache({ ttl: 1 })).toThrow(GatewayOptionsError)
  })

  it('forward() refuses a request no step routed', async () => {
    await expect(forward()(createTestContext(), noop)).rejects.toMatchObject({ key: 'INTERNAL' })
  })

  it('record() renders what the steps after it threw, with the cf-aig headers, and emits request:end', async () => {
    const ctx = createTestContext()
    const ended = new Promise((resolve) => ctx.gateway.events.once('request:end', resolve))
    await record()(ctx, async () => {
      throw new GatewayOptionsError('boom')
    })
    expect(ctx.response?.status).toBe(500)
    expect(ctx.response?.headers['cf-aig-request-id']).toBe(ctx.id)
    // No log store was given: no log id that would lead nowhere.
    expect(ctx.response?.headers['cf-aig-log-id']).toBeUndefined()
    await expect(ended).resolves.toMatchObject({ id: ctx.id, status: 500 })
    expect(record().watchesUsage).toBeUndefined()
  })
})
