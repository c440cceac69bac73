import { EventEmitter } from 'eventemitter3'
import { describe, expect, it } from 'vitest'
import { parseRouteDefinition } from '../../src/dynamic/definition.js'
import { DynamicRoutes } from '../../src/dynamic/routes.js'
import type { PercentageElement, RouteElement } from '../../src/dynamic/types.js'
import { type Admitted, compileRoute, pickBranch, walkRoute } from '../../src/dynamic/walk.js'
import { GatewayError } from '../../src/errors.js'
import type { GatewayEmitter } from '../../src/events.js'
import { createMemoryLimitStore, createMemoryRouteStore } from '../../src/index.js'

const known = (id: string) => ['openai', 'anthropic'].includes(id)
const to = (elementId: string) => ({ elementId })
const model = (id: string, provider: string, name: string, outputs: Record<string, unknown> = {}) => ({
  id,
  type: 'model',
  properties: { provider, model: name },
  outputs,
})
const END = { id: 'end', type: 'end', outputs: {} }

/** A route whose start leads to `first`, with `elements` besides start and end. */
function route(first: string, ...elements: unknown[]) {
  return {
    name: 'r',
    elements: [{ id: 'start', type: 'start', outputs: { next: to(first) } }, ...elements, END],
  }
}

describe('parseRouteDefinition', () => {
  it('accepts the reference schema, with its aliases (rate_limit, window, conditions)', () => {
    const parsed = parseRouteDefinition(
      route(
        'rate',
        {
          id: 'rate',
          type: 'rate_limit',
          properties: { limitType: 'cost', limit: 5, window: 86400, key: 'metadata.user' },
          outputs: { success: to('cond'), fallback: to('cheap') },
        },
        {
          id: 'cond',
          type: 'conditional',
          properties: { conditions: { 'metadata.plan': { $eq: 'pro' } } },
          outputs: { true: to('split'), false: to('cheap') },
        },
        { id: 'split', type: 'percentage', outputs: { '10%': to('big'), else: to('cheap') } },
        model('big', 'openai', 'gpt-4o', { success: to('end'), fallback: to('cheap') }),
        model('cheap', 'anthropic', 'claude-haiku-4-5', { success: to('end') }),
      ),
      known,
    )
    const rate = parsed.elements.find((element) => element.id === 'rate')
    expect(rate).toMatchObject({
      type: 'rate',
      properties: { limitType: 'cost', limit: 5, interval: 86400, technique: 'sliding' },
    })
    expect(parsed.elements.find((element) => element.id === 'cond')).toMatchObject({
      properties: { condition: { 'metadata.plan': { $eq: 'pro' } } },
    })
  })

  it.each<[string, unknown, RegExp]>([
    ['not an object', 'route', /JSON object/],
    ['a bad name', { name: 'a b', elements: [] }, /'name'/],
    ['no elements', { name: 'r', elements: [] }, /non-empty/],
    ['no start', { name: 'r', elements: [END] }, /exactly one start element, found 0/],
    [
      'two starts',
      {
        name: 'r',
        elements: [
          { id: 's1', type: 'start', outputs: { next: to('end') } },
          { id: 's2', type: 'start', outputs: { next: to('end') } },
          END,
        ],
      },
      /found 2/,
    ],
    [
      'a dangling output',
      route('nowhere'),
      /element 'start': output 'next' leads to 'nowhere', which does not exist/,
    ],
    [
      'an unknown type',
      route('x', { id: 'x', type: 'teleport', outputs: {} }),
      /element 'x': 'type' must be one of/,
    ],
    [
      'a duplicate id',
      route('end', { id: 'end', type: 'end', outputs: {} }),
      /element 'end': another element has the same id/,
    ],
    [
      'an unknown output',
      route('m', model('m', 'openai', 'gpt-4o', { maybe: to('end') })),
      /element 'm': a model element has no output 'maybe'/,
    ],
    [
      'a missing required output',
      route('c', {
        id: 'c',
        type: 'conditional',
        properties: { condition: {} },
        outputs: { true: to('end') },
      }),
      /element 'c': output 'false' is required/,
    ],
    [
      'a cycle',
      route(
        'a',
        model('a', 'openai', 'x', { fallback: to('b') }),
        model('b', 'openai', 'y', { fallback: to('a') }),
      ),
      /the route loops: .*a → b → a/,
    ],
    [
      'percentages over 100',
      route('p', { id: 'p', type: 'percentage', outputs: { '60%': to('end'), '50%': to('end') } }),
      /element 'p': the branches add up to 110%, over 100%/,
    ],
    [
      'percentages under 100 without else',
      route('p', { id: 'p', type: 'percentage', outputs: { '60%': to('end') } }),
      /add an 'else'/,
    ],
    [
      'six branches',
      route('p', {
        id: 'p',
        type: 'percentage',
        outputs: Object.fromEntries([1, 2, 3, 4, 5, 6].map((n) => [`${n}%`, to('end')])),
      }),
      /at most 5 percentage branches/,
    ],
    [
      'an unknown provider',
      route('m', model('m', 'nowhere-ai', 'x')),
      /element 'm': 'provider' must be a configured provider, got "nowhere-ai"/,
    ],
    [
      'a condition that does not compile',
      route('c', {
        id: 'c',
        type: 'conditional',
        properties: { condition: { a: { $regex: 'x' } } },
        outputs: { true: to('end'), false: to('end') },
      }),
      /element 'c': .*\$regex/,
    ],
    [
      'a rate without a limit',
      route('r', {
        id: 'r',
        type: 'rate',
        properties: { limitType: 'count', interval: 60 },
        outputs: { success: to('end') },
      }),
      /element 'r': 'limit' must be a positive number/,
    ],
  ])('refuses %s, naming the element', (_name, definition, message) => {
    let thrown: unknown
    try {
      parseRouteDefinition(definition, known)
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(GatewayError)
    expect((thrown as GatewayError).code).toBe(2126)
    expect((thrown as GatewayError).message).toMatch(message)
  })
})

const admitAll = async (): Promise<Admitted> => ({ admitted: true })
const input = (metadata: Record<string, unknown> = {}) => ({
  metadata,
  body: {},
  headers: {},
  principal: undefined,
})

/** A seeded generator (mulberry32), so a draw count is reproducible. */
function seeded(seed: number): () => number {
  let state = seed
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('walkRoute', () => {
  const split = (properties?: Record<string, unknown>) =>
    compileRoute(
      parseRouteDefinition(
        route(
          'split',
          {
            id: 'split',
            type: 'percentage',
            ...(properties === undefined ? {} : { properties }),
            outputs: { '10%': to('a'), '30%': to('b'), else: to('c') },
          },
          model('a', 'openai', 'a'),
          model('b', 'openai', 'b'),
          model('c', 'openai', 'c'),
        ),
        known,
      ),
      1,
    )

  it('draws each branch of a split in its share: 10,000 seeded draws within 1.5 points of 10/30/60', async () => {
    const compiled = split()
    const random = seeded(42)
    const counts: Record<string, number> = { a: 0, b: 0, c: 0 }
    for (let i = 0; i < 10_000; i++) {
      const walk = await walkRoute(compiled, { input: input(), random, admit: admitAll })
      counts[walk.stops[0]!.element.id]!++
    }
    expect(Math.abs(counts.a! / 100 - 10)).toBeLessThan(1.5)
    expect(Math.abs(counts.b! / 100 - 30)).toBeLessThan(1.5)
    expect(Math.abs(counts.c! / 100 - 60)).toBeLessThan(1.5)
  })

  it('keeps a key on one branch on every walk, and spreads many keys by the shares', async () => {
    const compiled = split({ key: 'metadata.user' })
    const never = () => {
      throw new Error('a keyed split must not draw at random')
    }
    const counts: Record<string, number> = { a: 0, b: 0, c: 0 }
    for (let user = 0; user < 3000; user++) {
      const first = await walkRoute(compiled, {
        input: input({ user: `u${user}` }),
        random: never,
        admit: admitAll,
      })
      const again = await walkRoute(compiled, {
        input: input({ user: `u${user}` }),
        random: never,
        admit: admitAll,
      })
      expect(again.variants).toEqual(first.variants)
      counts[first.stops[0]!.element.id]!++
    }
    expect(Math.abs(counts.a! / 30 - 10)).toBeLessThan(3)
    expect(Math.abs(counts.c! / 30 - 60)).toBeLessThan(3)
  })

  it('lists every model on the fallback chain with the path walked to it', async () => {
    const compiled = compileRoute(
      parseRouteDefinition(
        route(
          'cond',
          {
            id: 'cond',
            type: 'conditional',
            properties: { condition: { 'metadata.plan': 'pro' } },
            outputs: { true: to('big'), false: to('cheap') },
          },
          model('big', 'openai', 'gpt-4o', { success: to('end'), fallback: to('cheap') }),
          model('cheap', 'anthropic', 'claude-haiku-4-5', { success: to('end') }),
        ),
        known,
      ),
      3,
    )
    const pro = await walkRoute(compiled, {
      input: input({ plan: 'pro' }),
      random: Math.random,
      admit: admitAll,
    })
    expect(pro.stops.map((stop) => [stop.element.id, stop.path.join('>')])).toEqual([
      ['big', 'start>cond>big'],
      ['cheap', 'start>cond>big>cheap'],
    ])
    const free = await walkRoute(compiled, {
      input: input({ plan: 'free' }),
      random: Math.random,
      admit: admitAll,
    })
    expect(free.stops.map((stop) => stop.element.id)).toEqual(['cheap'])
  })

  it('takes a rate element’s fallback over its limit, and ends in 429 (2041) without one', async () => {
    const rated = (outputs: Record<string, unknown>) =>
      compileRoute(
        parseRouteDefinition(
          route(
            'rate',
            { id: 'rate', type: 'rate', properties: { limitType: 'count', limit: 1, interval: 60 }, outputs },
            model('big', 'openai', 'gpt-4o'),
            model('cheap', 'anthropic', 'claude-haiku-4-5'),
          ),
          known,
        ),
        1,
      )
    const refuse = async (): Promise<Admitted> => ({ admitted: false, retryAfterMs: 12_345 })
    const over = await walkRoute(rated({ success: to('big'), fallback: to('cheap') }), {
      input: input(),
      random: Math.random,
      admit: refuse,
    })
    expect(over.stops.map((stop) => stop.element.id)).toEqual(['cheap'])
    const ended = walkRoute(rated({ success: to('big') }), {
      input: input(),
      random: Math.random,
      admit: refuse,
    })
    await expect(ended).rejects.toMatchObject({ code: 2041, status: 429, headers: { 'retry-after': '13' } })
  })

  it('pickBranch gives each draw the branch its share covers', () => {
    const element = {
      id: 'p',
      type: 'percentage',
      outputs: { '33.33%': to('a'), '66.67%': to('b') },
    } as PercentageElement & RouteElement
    expect([0, 0.3332, 0.3334, 0.9999].map((drawn) => pickBranch(element, drawn))).toEqual([
      '33.33%',
      '33.33%',
      '66.67%',
      '66.67%',
    ])
  })
})

describe('graphs and the paths requests take through them', () => {
  const cond = (id: string, condition: unknown, whenTrue: string, whenFalse: string) => ({
    id,
    type: 'conditional',
    properties: { condition },
    outputs: { true: to(whenTrue), false: to(whenFalse) },
  })
  const GRAPH = route(
    'tier',
    cond('tier', { 'metadata.plan': { $in: ['pro', 'team'] } }, 'long', 'cheap'),
    cond(
      'long',
      { $or: [{ 'body.max_tokens': { $gt: 4000 } }, { 'headers.x-long': 'yes' }] },
      'big',
      'split',
    ),
    {
      id: 'split',
      type: 'percentage',
      properties: { key: 'principal.id' },
      outputs: { '50%': to('a'), else: to('b') },
    },
    {
      id: 'rate',
      type: 'rate',
      properties: { limitType: 'count', limit: 1, interval: 60, key: 'principal.id' },
      outputs: { success: to('big2'), fallback: to('cheap') },
    },
    model('big', 'openai', 'gpt-4o', { success: to('end'), fallback: to('rate') }),
    model('big2', 'openai', 'gpt-4.1', { success: to('end'), fallback: to('cheap') }),
    model('a', 'openai', 'gpt-4o-mini', { success: to('end'), fallback: to('cheap') }),
    model('b', 'anthropic', 'claude-sonnet-4-5', { success: to('end') }),
    model('cheap', 'anthropic', 'claude-haiku-4-5', { success: to('end') }),
  )
  const compiled = compileRoute(parseRouteDefinition(GRAPH, known), 1)

  it.each<
    [
      string,
      {
        metadata?: Record<string, unknown>
        body?: unknown
        headers?: Record<string, string>
        principal?: Record<string, unknown>
        over?: boolean
      },
      string[],
    ]
  >([
    ['a free user goes to the cheap model', { metadata: { plan: 'free' } }, ['start>tier>cheap']],
    ['no plan at all is not pro', {}, ['start>tier>cheap']],
    [
      'a pro user asking for a long answer gets the big model, then the rate-limited second, then cheap',
      { metadata: { plan: 'pro' }, body: { max_tokens: 8000 } },
      ['start>tier>long>big', 'start>tier>long>big>rate>big2', 'start>tier>long>big>rate>big2>cheap'],
    ],
    [
      'a header can ask for long too',
      { metadata: { plan: 'team' }, headers: { 'x-long': 'yes' } },
      ['start>tier>long>big', 'start>tier>long>big>rate>big2', 'start>tier>long>big>rate>big2>cheap'],
    ],
    [
      'over the rate element, the big model falls back straight to cheap',
      { metadata: { plan: 'pro' }, body: { max_tokens: 8000 }, over: true },
      ['start>tier>long>big', 'start>tier>long>big>rate>cheap'],
    ],
  ])('%s', async (_name, request, expected) => {
    const walk = await walkRoute(compiled, {
      input: {
        metadata: request.metadata ?? {},
        body: request.body ?? {},
        headers: request.headers ?? {},
        principal: request.principal,
      },
      random: () => 0,
      admit: async () => (request.over ? { admitted: false, retryAfterMs: 1000 } : { admitted: true }),
    })
    expect(walk.stops.map((stop) => stop.path.join('>'))).toEqual(expected)
  })

  it('a pro user with a short answer is split by their id, and keeps their branch', async () => {
    const branches = new Set<string>()
    for (const id of ['ann', 'bob', 'cy', 'dee', 'eve', 'fay', 'gus', 'hal']) {
      const walk = (principal: Record<string, unknown>) =>
        walkRoute(compiled, {
          input: { metadata: { plan: 'pro' }, body: {}, headers: {}, principal },
          random: () => {
            throw new Error('a keyed split must not draw at random')
          },
          admit: admitAll,
        })
      const first = await walk({ id })
      expect((await walk({ id })).stops[0]?.path).toEqual(first.stops[0]?.path)
      branches.add(first.variants.split!)
    }
    expect(branches).toEqual(new Set(['50%', 'else']))
  })
})

describe('DynamicRoutes.live', () => {
  /** Routes on a memory store whose reads of deployed routes are counted by name; the clock never moves. */
  function counted() {
    const memory = createMemoryRouteStore()
    const reads = new Map<string, number>()
    const store = {
      ...memory,
      deployed(name: string) {
        reads.set(name, (reads.get(name) ?? 0) + 1)
        return memory.deployed(name)
      },
    }
    const routes = new DynamicRoutes(
      {
        store,
        limitStore: createMemoryLimitStore(),
        refreshMs: 60_000,
        storeTimeoutMs: 1000,
        definitions: [],
      },
      { knownProvider: known, now: () => 0, events: new EventEmitter() as unknown as GatewayEmitter },
    )
    return { routes, reads }
  }

  it('refuses a name no route can have without asking the store, and does not repeat it back', async () => {
    const { routes, reads } = counted()
    const name = `x${'y'.repeat(10_000)}`
    const refused = await routes.live(name).catch((error: unknown) => error)
    expect(refused).toBeInstanceOf(GatewayError)
    expect((refused as GatewayError).key).toBe('ROUTE_NOT_FOUND')
    expect((refused as GatewayError).message.length).toBeLessThan(200)
    expect(reads.size).toBe(0)
  })

  it('remembers a bounded number of missing routes: however many names callers try, the oldest are let go', async () => {
    const { routes, reads } = counted()
    const miss = (name: string) => routes.live(name).catch(() => undefined)
    await miss('first')
    await miss('first')
    // Remembered: one read within refreshMs.
    expect(reads.get('first')).toBe(1)
    for (let i = 0; i < 5000; i++) await miss(`other-${i}`)
    await miss('first')
    expect(reads.get('first')).toBe(2)
  })
})
