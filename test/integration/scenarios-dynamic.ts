import { expect, it } from 'vitest'
import { createMemoryLimitStore, createMemoryRouteStore, type LimitStore } from '../../src/index.js'
import { send } from '../helpers/http.js'
import { chat, type World } from './scenarios.js'

const COMPAT = '/ai/compat/chat/completions'
const to = (elementId: string) => ({ elementId })
const START = (first: string) => ({ id: 'start', type: 'start', outputs: { next: to(first) } })
const END = { id: 'end', type: 'end', outputs: {} }
const model = (id: string, provider: string, name: string, outputs: Record<string, unknown> = {}) => ({
  id,
  type: 'model',
  properties: { provider, model: name },
  outputs: { success: to('end'), ...outputs },
})

/** Pro users on OpenAI, falling back to Anthropic; everyone else on Anthropic. */
const TIERED = {
  name: 'tiered',
  elements: [
    START('plan'),
    {
      id: 'plan',
      type: 'conditional',
      properties: { condition: { 'metadata.plan': { $eq: 'pro' } } },
      outputs: { true: to('big'), false: to('cheap') },
    },
    model('big', 'openai', 'gpt-4o', { fallback: to('cheap') }),
    model('cheap', 'anthropic', 'claude-haiku-4-5'),
    END,
  ],
}

/** Half the users on OpenAI, half on Anthropic, each user always in the same half. */
const AB = {
  name: 'ab',
  elements: [
    START('split'),
    {
      id: 'split',
      type: 'percentage',
      properties: { key: 'metadata.user' },
      outputs: { '50%': to('a'), else: to('b') },
    },
    model('a', 'openai', 'gpt-4o'),
    model('b', 'anthropic', 'claude-haiku-4-5'),
    END,
  ],
}

/** gpt-4o until a user's answers cost over a ten-thousandth of a dollar a day: one answer of the mock does. */
const BUDGET = {
  name: 'budget',
  elements: [
    START('budget'),
    {
      id: 'budget',
      type: 'rate',
      properties: { limitType: 'cost', limit: 0.0001, interval: 86_400, key: 'metadata.user' },
      outputs: { success: to('big'), fallback: to('cheap') },
    },
    model('big', 'openai', 'gpt-4o'),
    model('cheap', 'anthropic', 'claude-haiku-4-5'),
    END,
  ],
}

/** An in-memory limit store, and a promise of the next charge it settles (an `adjust` that adds). */
function chargedStore(): { store: LimitStore; charged: () => Promise<void> } {
  const memory = createMemoryLimitStore()
  let settle: () => void = () => {}
  const store: LimitStore = {
    consume: (...args) => memory.consume(...args),
    adjust: (...args) => {
      const done = memory.adjust(...args)
      if (args[2] > 0) settle()
      return done
    },
  }
  return { store, charged: () => new Promise((resolve) => (settle = resolve)) }
}

function ask(url: string, text: string, metadata?: Record<string, unknown>, model = 'dynamic/tiered') {
  const headers: Record<string, string> =
    metadata === undefined ? {} : { 'cf-aig-metadata': JSON.stringify(metadata) }
  return send(`${url}${COMPAT}`, { headers, body: chat(text, { model }) })
}

/**
 * Dynamic routes (`dynamic/{name}` on /compat and in universal steps): the path a request takes through a
 * route's graph, with its fallbacks, splits and limits, the same in every framework.
 */
export function dynamicRouteScenarios(world: World): void {
  it('dynamic routes: a conditional sends each request down its branch; the answer names its model and the record its path', async () => {
    world.mock.reset()
    const url = await world.start({ routes: { definitions: [TIERED] } })
    const pro = await ask(url, 'pro', { plan: 'pro' })
    expect(pro.status).toBe(200)
    expect(pro.headers).toMatchObject({ 'cf-aig-provider': 'openai', 'cf-aig-model': 'gpt-4o' })
    const free = await ask(url, 'free', { plan: 'free' })
    expect(free.headers).toMatchObject({ 'cf-aig-provider': 'anthropic', 'cf-aig-model': 'claude-haiku-4-5' })
    expect(free.json()).toMatchObject({ choices: [{ message: { content: 'mock reply to: free' } }] })
    await world.gateway?.flushLogs()
    const record = await world.gateway?.logs?.get(pro.headers['cf-aig-log-id'] as string)
    expect(record).toMatchObject({
      provider: 'openai',
      model: 'gpt-4o',
      route: { name: 'tiered', version: 1, path: ['start', 'plan', 'big'], variants: {} },
    })
  })

  it('dynamic routes: a model that fails takes its fallback output', async () => {
    world.mock.reset()
    world.mock.enqueue({ status: 503 })
    const url = await world.start({ routes: { definitions: [TIERED] } })
    const res = await ask(url, 'fall', { plan: 'pro' })
    expect(res.status).toBe(200)
    expect(res.headers['cf-aig-provider']).toBe('anthropic')
    await world.gateway?.flushLogs()
    const record = await world.gateway?.logs?.get(res.headers['cf-aig-log-id'] as string)
    expect(record?.route?.path).toEqual(['start', 'plan', 'big', 'cheap'])
    expect(record?.attemptLog?.map((attempt) => [attempt.model, attempt.action])).toEqual([
      ['gpt-4o', 'fallback'],
      ['claude-haiku-4-5', 'answered'],
    ])
  })

  it('dynamic routes: a split keyed by a user sends that user to the same variant every time', async () => {
    world.mock.reset()
    const url = await world.start({ routes: { definitions: [AB] } })
    const providers = new Map<string, Set<string>>()
    for (let round = 0; round < 3; round++) {
      for (let user = 0; user < 12; user++) {
        const res = await ask(url, `round ${round}`, { user: `user-${user}` }, 'dynamic/ab')
        expect(res.status).toBe(200)
        const seen = providers.get(`user-${user}`) ?? new Set()
        seen.add(res.headers['cf-aig-provider'] as string)
        providers.set(`user-${user}`, seen)
      }
    }
    for (const seen of providers.values()) expect(seen.size).toBe(1)
    // Twelve users over a 50/50 split: both variants have some (all on one side: 1 in 2048).
    const variants = new Set([...providers.values()].map((seen) => [...seen][0]))
    expect(variants).toEqual(new Set(['openai', 'anthropic']))
  })

  it("dynamic routes: a caller's own key goes to no model of a route on two providers, whichever the split draws", async () => {
    world.mock.reset()
    const url = await world.start({ routes: { definitions: [AB] } })
    const res = await send(`${url}${COMPAT}`, {
      headers: { authorization: 'Bearer sk-caller-openai', 'cf-aig-metadata': '{"user":"ann"}' },
      body: chat('mine', { model: 'dynamic/ab' }),
    })
    expect(res.status).toBe(200)
    const [call] = world.mock.calls
    const stored = call?.path === '/v1/messages' ? 'sk-ant-stored' : 'Bearer sk-stored'
    expect(call?.headers['x-api-key'] ?? call?.headers.authorization).toBe(stored)
  })

  it("dynamic routes: a caller's own key goes to a route whose models are all on its provider", async () => {
    world.mock.reset()
    const route = {
      name: 'minis',
      elements: [
        START('a'),
        model('a', 'openai', 'gpt-4o-mini', { fallback: to('b') }),
        model('b', 'openai', 'gpt-4.1-mini'),
        END,
      ],
    }
    world.mock.enqueue({ status: 503 })
    const url = await world.start({ routes: { definitions: [route] } })
    const res = await send(`${url}${COMPAT}`, {
      headers: { authorization: 'Bearer sk-caller-openai' },
      body: chat('mine', { model: 'dynamic/minis' }),
    })
    expect(res.status).toBe(200)
    expect(world.mock.calls.map((call) => call.headers.authorization)).toEqual([
      'Bearer sk-caller-openai',
      'Bearer sk-caller-openai',
    ])
  })

  it('dynamic routes: a rate element sends a user over its limit to its fallback, or ends in 429 (2041) without one', async () => {
    world.mock.reset()
    const limited = (name: string, outputs: Record<string, unknown>) => ({
      name,
      elements: [
        START('rate'),
        {
          id: 'rate',
          type: 'rate',
          properties: { limitType: 'count', limit: 2, interval: 3600, key: 'metadata.user' },
          outputs,
        },
        model('big', 'openai', 'gpt-4o'),
        model('cheap', 'anthropic', 'claude-haiku-4-5'),
        END,
      ],
    })
    const url = await world.start({
      routes: {
        definitions: [
          limited('with-fallback', { success: to('big'), fallback: to('cheap') }),
          limited('hard', { success: to('big') }),
        ],
      },
    })
    const providers: string[] = []
    for (let i = 0; i < 3; i++) {
      const res = await ask(url, `ask ${i}`, { user: 'ann' }, 'dynamic/with-fallback')
      providers.push(res.headers['cf-aig-provider'] as string)
    }
    expect(providers).toEqual(['openai', 'openai', 'anthropic'])
    // Another user has a counter of their own.
    expect((await ask(url, 'bob', { user: 'bob' }, 'dynamic/with-fallback')).headers['cf-aig-provider']).toBe(
      'openai',
    )
    for (let i = 0; i < 2; i++)
      expect((await ask(url, `hard ${i}`, { user: 'ann' }, 'dynamic/hard')).status).toBe(200)
    const refused = await ask(url, 'hard over', { user: 'ann' }, 'dynamic/hard')
    expect(refused.status).toBe(429)
    expect(refused.json()).toMatchObject({ internalCode: 2041 })
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0)
  })

  it('dynamic routes: a budget element switches to the cheaper model once the spend passes its limit', async () => {
    world.mock.reset()
    const url = await world.start({ routes: { definitions: [BUDGET] } })
    const long = 'word '.repeat(60)
    const first = await ask(url, long, { user: 'ann' }, 'dynamic/budget')
    expect(first.headers['cf-aig-provider']).toBe('openai')
    // The first answer's cost is charged once its usage is read, before its record is written.
    await world.gateway?.flushLogs()
    const record = await world.gateway?.logs?.get(first.headers['cf-aig-log-id'] as string)
    expect(record?.cost).toBeGreaterThan(0.0001)
    const second = await ask(url, 'again', { user: 'ann' }, 'dynamic/budget')
    expect(second.headers['cf-aig-provider']).toBe('anthropic')
    expect((await ask(url, 'other', { user: 'bob' }, 'dynamic/budget')).headers['cf-aig-provider']).toBe(
      'openai',
    )
  })

  it('dynamic routes: a budget element is charged with logs, metrics and telemetry off too', async () => {
    world.mock.reset()
    const { store, charged } = chargedStore()
    const url = await world.start({ logs: false, routes: { limitStore: store, definitions: [BUDGET] } })
    const settled = charged()
    const first = await ask(url, 'word '.repeat(60), { user: 'ann' }, 'dynamic/budget')
    expect(first.headers['cf-aig-provider']).toBe('openai')
    await settled
    const second = await ask(url, 'again', { user: 'ann' }, 'dynamic/budget')
    expect(second.headers['cf-aig-provider']).toBe('anthropic')
  })

  it('dynamic routes: a model on a provider this instance lacks is passed over, as on an instance sharing the store that has it', async () => {
    world.mock.reset()
    // Saved by an instance configured with custom-lab: this one was not.
    const store = createMemoryRouteStore()
    const elsewhere = (name: string, ...models: unknown[]) => ({
      name,
      elements: [START('lab'), model('lab', 'custom-lab', 'lab-1', { fallback: to('big') }), ...models, END],
    })
    for (const saved of [elsewhere('lab-first', model('big', 'openai', 'gpt-4o')), elsewhere('lab-only')]) {
      const { version } = await store.save(saved as never, 0)
      await store.deploy(saved.name, version, 0)
    }
    const url = await world.start({ routes: { store } })
    const res = await ask(url, 'x', undefined, 'dynamic/lab-first')
    expect(res.status).toBe(200)
    expect(res.headers).toMatchObject({ 'cf-aig-provider': 'openai', 'cf-aig-model': 'gpt-4o' })
    await world.gateway?.flushLogs()
    const record = await world.gateway?.logs?.get(res.headers['cf-aig-log-id'] as string)
    expect(record?.route?.path).toEqual(['start', 'lab', 'big'])
    // With no model left, the refusal is the answer, as before.
    const none = await ask(url, 'x', undefined, 'dynamic/lab-only')
    expect(none.status).toBe(400)
    expect(none.json()).toMatchObject({ internalCode: 2008 })
    expect(world.mock.calls).toHaveLength(1)
  })

  it('dynamic routes: a universal step may name a route', async () => {
    world.mock.reset()
    const url = await world.start({ routes: { definitions: [TIERED] } })
    const res = await send(`${url}/ai`, {
      headers: { 'cf-aig-metadata': JSON.stringify({ plan: 'pro' }) },
      body: [
        {
          provider: 'compat',
          endpoint: 'chat/completions',
          headers: {},
          query: chat('u', { model: 'dynamic/tiered' }),
        },
      ],
    })
    expect(res.status).toBe(200)
    expect(res.headers['cf-aig-model']).toBe('gpt-4o')
  })

  it('dynamic routes: a universal step whose route is over its limit falls back to the next step; with none, 429 (2041)', async () => {
    world.mock.reset()
    const once = {
      name: 'once',
      elements: [
        START('rate'),
        {
          id: 'rate',
          type: 'rate',
          properties: { limitType: 'count', limit: 1, interval: 3600 },
          outputs: { success: to('big') },
        },
        model('big', 'openai', 'gpt-4o'),
        END,
      ],
    }
    const url = await world.start({ routes: { definitions: [once] } })
    const routeStep = {
      provider: 'compat',
      endpoint: 'chat/completions',
      query: chat('r', { model: 'dynamic/once' }),
    }
    const nextStep = {
      provider: 'compat',
      endpoint: 'chat/completions',
      query: chat('n', { model: 'anthropic/claude-haiku-4-5' }),
    }
    const first = await send(`${url}/ai`, { body: [routeStep, nextStep] })
    expect([first.status, first.headers['cf-aig-step'], first.headers['cf-aig-model']]).toEqual([
      200,
      '0',
      'gpt-4o',
    ])
    const second = await send(`${url}/ai`, { body: [routeStep, nextStep] })
    expect([second.status, second.headers['cf-aig-step']]).toEqual([200, '1'])
    expect(world.mock.calls.map((call) => call.path)).toEqual(['/v1/chat/completions', '/v1/messages'])
    const alone = await send(`${url}/ai`, { body: [routeStep] })
    expect(alone.status).toBe(429)
    expect(alone.json()).toMatchObject({ internalCode: 2041 })
  })

  it('dynamic routes: universal steps naming the same route count a request once, at the step that answered', async () => {
    world.mock.reset()
    const twice = {
      name: 'twice',
      elements: [
        START('rate'),
        {
          id: 'rate',
          type: 'rate',
          properties: { limitType: 'count', limit: 2, interval: 3600 },
          outputs: { success: to('big'), fallback: to('cheap') },
        },
        model('big', 'openai', 'gpt-4o'),
        model('cheap', 'anthropic', 'claude-haiku-4-5'),
        END,
      ],
    }
    const url = await world.start({ routes: { definitions: [twice] } })
    const step = {
      provider: 'compat',
      endpoint: 'chat/completions',
      query: chat('t', { model: 'dynamic/twice' }),
    }
    const models: unknown[] = []
    for (let i = 0; i < 3; i++) {
      const res = await send(`${url}/ai`, { body: [step, step] })
      models.push([res.status, res.headers['cf-aig-step'], res.headers['cf-aig-model']])
    }
    // Two requests within the limit of two; the second step's count is given back, as it was not taken.
    expect(models).toEqual([
      [200, '0', 'gpt-4o'],
      [200, '0', 'gpt-4o'],
      [200, '0', 'claude-haiku-4-5'],
    ])
  })

  it('dynamic routes: an unknown route is a 400 (2127); a route in code that is wrong fails at createGateway', async () => {
    world.mock.reset()
    const url = await world.start({ routes: { definitions: [TIERED] } })
    const res = await ask(url, 'x', undefined, 'dynamic/nowhere')
    expect(res.status).toBe(400)
    expect(res.json()).toMatchObject({ internalCode: 2127 })
    expect(world.mock.calls).toHaveLength(0)
    await expect(
      world.start({ routes: { definitions: [{ name: 'broken', elements: [END] }] } }),
    ).rejects.toThrow(/exactly one start element/)
  })
}
