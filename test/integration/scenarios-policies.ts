import { expect, it } from 'vitest'
import { createMemoryLimitStore, type GatewayOptions, type PolicyErrorEvent } from '../../src/index.js'
import { send } from '../helpers/http.js'
import { chat, type World } from './scenarios.js'

const CHAT = '/ai/openai/chat/completions'
const COMPAT = '/ai/compat/chat/completions'
/** A minute before midnight UTC: a daily cap's period ends in 60 s. */
const CLOCK = Date.UTC(2026, 11, 3, 23, 59, 0)
const CAP = 0.0004

/** The host knows its callers: `x-user` and `x-plan` stand in for its own session. */
const identify: GatewayOptions['identify'] = (_host, request) => {
  const id = request.headers['x-user']
  return typeof id === 'string' ? { id, plan: String(request.headers['x-plan'] ?? 'free') } : undefined
}

const POLICIES = [
  {
    id: 'no-gpt-4o-for-interns',
    actor: '*',
    resource: 'openai/gpt-4o',
    condition: 'principal.plan == "intern"',
    action: { type: 'block' },
  },
  {
    id: 'daily-per-user',
    actor: '{principal.id}',
    resource: 'openai/*',
    action: { type: 'limit', amount: CAP, period: 'daily', technique: 'named-interval' },
  },
  // Buckets are (actor, resource): the exemption must name the capped bucket's resource to lift its cap.
  { id: 'vip-unlimited', actor: 'vip', resource: 'openai/*', action: { type: 'no-limit' } },
  { id: 'vip-anthropic', actor: 'vip', resource: 'anthropic', action: { type: 'no-limit' } },
] as const

/** Identity policies in the pipeline: the reference's evaluation order, on the host's own principal. */
export function policyScenarios(world: World): void {
  const start = (extra: GatewayOptions = {}) =>
    world.start({ identify, now: () => CLOCK, policies: [...POLICIES], ...extra })
  const ask = (url: string, path: string, user: string | undefined, model: string, extra = {}) =>
    send(`${url}${path}`, {
      headers: user === undefined ? {} : { 'x-user': user, 'x-plan': user === 'ian' ? 'intern' : 'pro' },
      body: chat(`policy check for ${user}`, { model, ...extra }),
    })

  it('policies: a block answers 403 (2130) in the reference body, and a request no policy covers is refused too', async () => {
    world.mock.reset()
    const url = await start()
    const blocked = await ask(url, CHAT, 'ian', 'gpt-4o')
    expect(blocked.status).toBe(403)
    expect(blocked.json()).toEqual({
      success: false,
      error: { message: 'Access denied by policy', code: 2130 },
    })
    // The same intern may use the models the block does not name; anonymous callers resolve no actor.
    expect((await ask(url, CHAT, 'ian', 'gpt-4o-mini')).status).toBe(200)
    expect((await ask(url, CHAT, undefined, 'gpt-4o-mini')).status).toBe(403)
    // No policy names anthropic for anyone but the VIP.
    expect((await ask(url, COMPAT, 'carl', 'anthropic/claude-haiku-4-5')).status).toBe(403)
    expect((await ask(url, COMPAT, 'vip', 'anthropic/claude-haiku-4-5')).status).toBe(200)
    // Nothing refused reached the provider.
    expect(world.mock.calls).toHaveLength(2)
  })

  it.each([
    ['passthrough', CHAT, 'gpt-4o'],
    ['/compat', COMPAT, 'openai/gpt-4o'],
  ])(
    'policies (%s): a daily cap per user holds, answers 429 (2131) until midnight UTC, and leaves others alone',
    async (_surface, path, model) => {
      world.mock.reset()
      const url = await start()
      const costs: number[] = []
      let refused: Awaited<ReturnType<typeof ask>> | undefined
      for (let i = 0; i < 30 && refused === undefined; i++) {
        const res = await ask(url, path, 'carl', model, { stream: i % 2 === 1 })
        if (res.status === 429) refused = res
        else {
          expect(res.status).toBe(200)
          // A bucket is charged once the answer's usage was read, before its record is written.
          await world.gateway?.flushLogs()
          const record = await world.gateway?.logs?.get(res.headers['cf-aig-log-id'] as string)
          costs.push(record?.cost ?? Number.NaN)
        }
      }
      expect(refused?.headers['retry-after']).toBe('60')
      const body = refused?.json() as { error: Record<string, unknown> }
      expect(body).toMatchObject({
        success: false,
        error: {
          message: 'Spending limit exceeded',
          code: 2131,
          bucket: 'carl:openai/*',
          period: 'daily',
          limit: CAP,
        },
      })
      const spent = costs.reduce((sum, cost) => sum + cost, 0)
      // Refused at the first request after the cap was reached, and the 429 says what was spent.
      expect(spent).toBeGreaterThanOrEqual(CAP)
      expect(spent - costs.at(-1)!).toBeLessThan(CAP)
      expect(body.error.spent as number).toBeCloseTo(spent, 6)
      // Another user has a bucket of their own; the VIP's bucket is exempt.
      expect((await ask(url, path, 'dana', model)).status).toBe(200)
      for (let i = 0; i < costs.length + 2; i++) expect((await ask(url, path, 'vip', model)).status).toBe(200)
    },
  )

  it('policies: a fallback the caller may not use is taken off the list, so a failure cannot route around a block', async () => {
    world.mock.reset()
    const url = await start()
    world.mock.enqueue({ status: 503 })
    const res = await ask(url, COMPAT, 'ian', 'openai/gpt-4o-mini', { models: ['openai/gpt-4o'] })
    expect(res.status).toBe(503)
    const models = () => world.mock.calls.map((call) => (call.json as { model?: string } | undefined)?.model)
    expect(models()).toEqual(['gpt-4o-mini'])
    // The same request from a pro user falls back as asked.
    world.mock.reset()
    world.mock.enqueue({ status: 503 })
    const pro = await ask(url, COMPAT, 'carl', 'openai/gpt-4o-mini', { models: ['openai/gpt-4o'] })
    expect(pro.status).toBe(200)
    expect(models()).toEqual(['gpt-4o-mini', 'gpt-4o'])
  })

  it('policies: a blocked caller never reads a cached answer, and a cache hit is not charged', async () => {
    world.mock.reset()
    const url = await start({ cache: { ttl: 60 } })
    const first = await ask(url, CHAT, 'carl', 'gpt-4o')
    expect(first.headers['cf-aig-cache-status']).toBe('MISS')
    await world.gateway?.flushLogs()
    const hit = await ask(url, CHAT, 'carl', 'gpt-4o')
    expect(hit.headers['cf-aig-cache-status']).toBe('HIT')
    expect((await ask(url, CHAT, 'ian', 'gpt-4o')).status).toBe(403)
    expect(world.mock.calls).toHaveLength(1)
  })

  it('policies: a condition that cannot be evaluated lets the request through and is reported', async () => {
    world.mock.reset()
    const url = await start({
      policies: [
        {
          id: 'team-only',
          actor: '*',
          resource: '*',
          condition: 'metadata.team == "ml"',
          action: { type: 'no-limit' },
        },
      ],
    })
    const errors: PolicyErrorEvent[] = []
    world.gateway?.events.on('policy:error', (event) => errors.push(event))
    const res = await ask(url, CHAT, 'carl', 'gpt-4o-mini')
    expect(res.status).toBe(200)
    expect(errors).toMatchObject([{ policyId: 'team-only', id: res.headers['cf-aig-request-id'] }])
  })

  it('policies: a condition the caller makes fail (a metadata key left out) does not lift another policy’s cap', async () => {
    world.mock.reset()
    const testOnly = {
      id: 'no-test-traffic',
      actor: '*',
      resource: 'openai/*',
      condition: 'metadata.env == "test"',
      action: { type: 'block' },
    } as const
    const url = await start({ policies: [...POLICIES, testOnly] })
    const errors: PolicyErrorEvent[] = []
    world.gateway?.events.on('policy:error', (event) => errors.push(event))
    let status = 200
    for (let i = 0; i < 30 && status === 200; i++) {
      status = (await ask(url, CHAT, 'carl', 'gpt-4o')).status
      // A bucket is charged once the answer's usage was read, before its record is written.
      await world.gateway?.flushLogs()
    }
    expect(status).toBe(429)
    expect(errors[0]).toMatchObject({ policyId: 'no-test-traffic' })
  })

  it('policies: a caller pricing its requests at 0 with cf-aig-custom-cost is charged the model’s price', async () => {
    world.mock.reset()
    const url = await start()
    const headers = { 'x-user': 'carl', 'cf-aig-custom-cost': '{"per_token_in":0,"per_token_out":0}' }
    const body = chat('free?', { model: 'gpt-4o' })
    let status = 200
    for (let i = 0; i < 30 && status === 200; i++) {
      status = (await send(`${url}${CHAT}`, { headers, body })).status
      // A bucket is charged once the answer's usage was read, before its record is written.
      await world.gateway?.flushLogs()
    }
    expect(status).toBe(429)
  })

  it('policies: a flood of refused requests, each under a key of its own, does not start a used-up cap afresh', async () => {
    world.mock.reset()
    // One small store for the cap and the rate limits, as a host may share one.
    const store = createMemoryLimitStore({ maxKeys: 4 })
    const url = await start({
      policies: {
        store,
        rules: [
          {
            id: 'gpt-4o-daily',
            actor: '{principal.id}',
            resource: 'openai/gpt-4o',
            action: { type: 'limit', amount: 0.000001, period: 'daily', technique: 'named-interval' },
          },
          { id: 'mini-free', actor: '*', resource: 'openai/gpt-4o-mini', action: { type: 'no-limit' } },
        ],
      },
      rateLimit: [
        { name: 'team', key: 'metadata.team', limit: 1000, window: 60, store },
        { name: 'user', key: 'principal', limit: 1, window: 60, store, filter: { model: ['gpt-4o-mini'] } },
      ],
    })
    expect((await ask(url, CHAT, 'carl', 'gpt-4o')).status).toBe(200)
    await world.gateway?.flushLogs()
    expect((await ask(url, CHAT, 'carl', 'gpt-4o')).json()).toMatchObject({ error: { code: 2131 } })
    // Each new team is counted by its rule, then given back when the per-user rule refuses.
    for (let team = 0; team < 8; team++) {
      const res = await send(`${url}${CHAT}`, {
        headers: { 'x-user': 'carl', 'cf-aig-metadata': JSON.stringify({ team: `t${team}` }) },
        body: chat('flood', { model: 'gpt-4o-mini' }),
      })
      expect(res.status).toBe(team === 0 ? 200 : 429)
    }
    expect((await ask(url, CHAT, 'carl', 'gpt-4o')).json()).toMatchObject({ error: { code: 2131 } })
  })

  it('policies: a wrong policy stops the gateway from being made, naming the policy and field', async () => {
    await expect(
      world.start({
        policies: [{ id: 'typo', actor: '*', resource: '*', action: { type: 'limit', ammount: 1 } as never }],
      }),
    ).rejects.toThrow(/policy 'typo' \(#0\): action/)
    await expect(
      world.start({
        policies: [
          {
            id: 'slow',
            actor: '*',
            resource: '*',
            condition: 'metadata.x.matches("(a+)+$")',
            action: { type: 'block' },
          },
        ],
      }),
    ).rejects.toThrow(/matches\(\) is not available/)
  })
}
