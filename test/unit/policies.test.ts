import { describe, expect, it } from 'vitest'
import { GatewayOptionsError } from '../../src/errors.js'
import {
  compilePolicies,
  evaluatePolicies,
  type PolicyDecision,
  type PolicyFailure,
  type PolicyRequest,
  periodWindow,
  settlePolicies,
} from '../../src/policies/index.js'
import { matchResource, parseActor, parseResource, resolveActor, wildcard } from '../../src/policies/match.js'
import { costMicros } from '../../src/policies/micros.js'
import { createMemoryLimitStore } from '../../src/stores/memory-limits.js'
import type { LimitStore } from '../../src/stores/types.js'

/** A Wednesday, noon UTC. */
const NOW = Date.parse('2026-06-10T12:00:00.000Z')
const ALICE = { id: 'alice', email: 'alice@example.com', tenant: 'acme', plan: 'pro' }
const BOB = { id: 'bob', email: 'bob@example.com', tenant: 'acme' }

function request(overrides: Partial<PolicyRequest> = {}): PolicyRequest {
  return {
    principal: ALICE,
    metadata: {},
    provider: 'openai',
    model: 'gpt-4o',
    path: '/openai/chat/completions',
    method: 'POST',
    now: NOW,
    ...overrides,
  }
}

const cap = (amount: number, period = 'daily') => ({
  type: 'limit',
  amount,
  period,
  technique: 'named-interval',
})
const everyone = { id: 'everyone', actor: '*', resource: '*', action: { type: 'no-limit' } }

async function decide(
  policies: unknown[],
  overrides: Partial<PolicyRequest> = {},
  store = createMemoryLimitStore(),
) {
  return evaluatePolicies(compilePolicies(policies), request(overrides), store)
}

function outcome(decision: PolicyDecision): string {
  if (decision.allowed) return 'allow'
  return decision.status === 403 ? `403 ${decision.reason}` : '429'
}

describe('periodWindow: UTC calendar periods', () => {
  const iso = (ms: number) => new Date(ms).toISOString()
  const window = (period: Parameters<typeof periodWindow>[0], at: string) => {
    const { start, end } = periodWindow(period, Date.parse(at))
    return [iso(start), iso(end)]
  }

  it.each([
    ['hourly', '2026-12-31T23:59:59.999Z', '2026-12-31T23:00:00.000Z', '2027-01-01T00:00:00.000Z'],
    ['hourly', '2027-01-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z', '2027-01-01T01:00:00.000Z'],
    ['daily', '2026-12-31T23:59:00.000Z', '2026-12-31T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
    ['daily', '2027-01-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z', '2027-01-02T00:00:00.000Z'],
    // 2026-12-31 is a Thursday and 2027-01-01 a Friday: both in the ISO week starting Monday 28 December.
    ['weekly', '2026-12-31T23:59:00.000Z', '2026-12-28T00:00:00.000Z', '2027-01-04T00:00:00.000Z'],
    ['weekly', '2027-01-01T00:00:00.000Z', '2026-12-28T00:00:00.000Z', '2027-01-04T00:00:00.000Z'],
    ['weekly', '2027-01-03T23:59:59.999Z', '2026-12-28T00:00:00.000Z', '2027-01-04T00:00:00.000Z'],
    ['weekly', '2027-01-04T00:00:00.000Z', '2027-01-04T00:00:00.000Z', '2027-01-11T00:00:00.000Z'],
    ['weekly', '2026-06-14T12:00:00.000Z', '2026-06-08T00:00:00.000Z', '2026-06-15T00:00:00.000Z'],
    ['monthly', '2026-12-31T23:59:00.000Z', '2026-12-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
    ['monthly', '2027-01-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z', '2027-02-01T00:00:00.000Z'],
    ['monthly', '2028-02-29T12:00:00.000Z', '2028-02-01T00:00:00.000Z', '2028-03-01T00:00:00.000Z'],
  ] as const)('%s at %s is [%s, %s)', (period, at, start, end) => {
    expect(window(period, at)).toEqual([start, end])
  })

  it('crossing 2026-12-31T23:59 → 2027-01-01T00:00 starts a new hour, day and month, but not a new ISO week', () => {
    const before = Date.parse('2026-12-31T23:59:00.000Z')
    const after = Date.parse('2027-01-01T00:00:00.000Z')
    for (const period of ['hourly', 'daily', 'monthly'] as const) {
      expect(periodWindow(period, before).end).toBe(periodWindow(period, after).start)
    }
    expect(periodWindow('weekly', before)).toEqual(periodWindow('weekly', after))
  })
})

describe('resources: wildcards within a segment', () => {
  it.each([
    ['*', 'openai', 'gpt-4o', true],
    ['*', 'openai', undefined, true],
    ['openai', 'openai', 'gpt-4o', true],
    ['openai', 'openai', undefined, true],
    ['openai', 'anthropic', 'claude-3', false],
    ['open*', 'openai', 'gpt-4o', true],
    ['openai/gpt-4o', 'openai', 'gpt-4o', true],
    ['openai/gpt-4o', 'openai', 'gpt-4o-mini', false],
    ['openai/gpt-4o', 'azure-openai', 'gpt-4o', false],
    ['openai/gpt-4*', 'openai', 'gpt-4o', true],
    ['openai/gpt-4*', 'openai', 'gpt-4', true],
    ['openai/gpt-4*', 'openai', 'gpt-3.5-turbo', false],
    ['openai/*', 'openai', 'gpt-4o', true],
    ['openai/*', 'openai', 'ft/gpt-4o/custom', true],
    ['openai/*', 'openai', undefined, false],
    ['openai/*', 'anthropic', 'claude-3', false],
    ['*/gpt-4o', 'openai', 'gpt-4o', true],
    ['*/gpt-4o', 'azure-openai', 'gpt-4o', true],
    ['*/gpt-4o', 'openai', 'gpt-4o-mini', false],
    ['*/*', 'groq', 'llama', true],
    // A `*` does not cross `/`: the model `meta/llama-3` has two segments.
    ['workers-ai/@cf/meta/*', 'workers-ai', '@cf/meta/llama-3', true],
    ['workers-ai/@cf/*', 'workers-ai', '@cf/meta/llama-3', false],
    ['workers-ai/@cf/*/llama-3', 'workers-ai', '@cf/meta/llama-3', true],
    ['openrouter/anthropic/*', 'openrouter', 'anthropic/claude-3', true],
    ['openrouter/*-3', 'openrouter', 'anthropic/claude-3', false],
    ['*a*b*', 'xaxxbx', undefined, true],
    ['a*b', 'ab', undefined, true],
    ['a*b', 'abc', undefined, false],
  ] as const)('%s against %s / %s: %s', (resource, provider, model, expected) => {
    expect(matchResource(parseResource(resource), provider, model)).toBe(expected)
  })

  it('wildcard never matches across a slash', () => {
    expect(wildcard('*', 'a/b')).toBe(false)
    expect(wildcard('a**', 'abc')).toBe(true)
    expect(wildcard('', '')).toBe(true)
  })

  it.each(['openai/', '/gpt-4o', 'openai//gpt', 'open ai'])('refuses %j', (resource) => {
    expect(() => parseResource(resource)).toThrow()
  })
})

describe('actors', () => {
  const input = (principal: Record<string, unknown> | undefined, metadata: Record<string, unknown> = {}) => ({
    principal,
    metadata,
  })

  it.each([
    ['*', input(undefined), '*'],
    ['{principal.id}', input(ALICE), 'alice'],
    ['{principal.id}', input(undefined), undefined],
    ['{principal.email}', input({ id: 'x' }), undefined],
    ['{principal.tenant}', input(ALICE), 'acme'],
    ['{principal.seats}', input({ seats: 3 }), '3'],
    ['{principal.id}', input({ id: '' }), undefined],
    ['{principal.id}', input({ id: { nested: true } }), undefined],
    ['{cf.user.email}', input(ALICE), 'alice@example.com'],
    ['{metadata.team}', input(ALICE, { team: 'search' }), 'search'],
    ['{metadata.team}', input(ALICE), undefined],
    ['team-{principal.tenant}/{metadata.team}', input(ALICE, { team: 'ml' }), 'team-acme/ml'],
    ['team-{principal.tenant}/{metadata.team}', input(ALICE), undefined],
    ['{principal.toString}', input({}), undefined],
    ['alice@example.com', input(ALICE), 'alice@example.com'],
    ['alice', input(ALICE), 'alice'],
    ['alice@example.com', input(BOB), undefined],
    ['alice@example.com', input(undefined), undefined],
  ] as const)('%s resolves to %j', (actor, given, expected) => {
    expect(resolveActor(parseActor(actor), given)).toBe(expected)
  })

  it.each(['{user.id}', '{principal.}', '{principal.id', 'x}', '{{principal.id}}', '{}'])(
    'refuses %j',
    (actor) => {
      expect(() => parseActor(actor)).toThrow()
    },
  )
})

describe('compilePolicies', () => {
  const messageOf = (raw: unknown, options?: Parameters<typeof compilePolicies>[1]) => {
    try {
      compilePolicies(raw, options)
    } catch (error) {
      expect(error).toBeInstanceOf(GatewayOptionsError)
      expect(error).toBeInstanceOf(TypeError)
      return (error as Error).message
    }
    throw new Error('compiled')
  }

  it('accepts an empty list and defaults the technique', () => {
    expect(compilePolicies([]).policies).toEqual([])
    const compiled = compilePolicies([
      { id: 'a', actor: '*', resource: '*', action: { type: 'limit', amount: 1, period: 'daily' } },
    ])
    expect(compiled.policies[0]!.policy.action).toEqual(cap(1))
    expect(compiled.policies[0]!.limitMicros).toBe(1_000_000)
  })

  it('names the policy and the field of every problem', () => {
    const message = messageOf([
      { id: 'bad-amount', actor: '*', resource: '*', action: cap(0) },
      { id: 'bad-period', actor: '*', resource: '*', action: cap(1, 'yearly') },
      { id: 'bad-actor', actor: '{user.id}', resource: '*', action: { type: 'no-limit' } },
      { id: 'bad-resource', actor: '*', resource: 'openai/', action: { type: 'no-limit' } },
      {
        id: 'bad-condition',
        actor: '*',
        resource: '*',
        condition: 'principal.plan ==',
        action: { type: 'no-limit' },
      },
      { id: 'typo', actor: '*', resource: '*', action: { type: 'block', expect: true } },
      { actor: '*', resource: '*', action: { type: 'no-limit' } },
      { id: 'bad-amount', actor: '*', resource: '*', action: { type: 'no-limit' } },
    ])
    expect(message).toMatch(/^Invalid policies:/)
    expect(message).toContain("policy 'bad-amount' (#0): action.amount")
    expect(message).toContain("policy 'bad-period' (#1): action.period")
    expect(message).toContain("policy 'bad-actor' (#2): actor: '{user.id}'")
    expect(message).toContain("policy 'bad-resource' (#3): resource:")
    expect(message).toContain("policy 'bad-condition' (#4): condition:")
    expect(message).toContain("policy 'typo' (#5): action")
    expect(message).toContain('policy #6: id')
    expect(message).toContain("policy 'bad-amount' (#7): id: another policy has the same id")
  })

  it('refuses what is not a list', () => {
    expect(messageOf({ id: 'a' })).toContain('expected a list')
  })

  it('refuses a condition over the length limit at compile time', () => {
    const long = `${'true && '.repeat(600)}true`
    expect(Buffer.byteLength(long)).toBeGreaterThan(4096)
    expect(
      messageOf([{ id: 'long', actor: '*', resource: '*', condition: long, action: { type: 'no-limit' } }]),
    ).toMatch(/policy 'long' \(#0\): condition: \d+ bytes, more than the 4096 allowed/)
    const short = {
      id: 's',
      actor: '*',
      resource: '*',
      condition: 'true || true',
      action: { type: 'no-limit' },
    }
    expect(messageOf([short], { maxConditionBytes: 8 })).toContain('more than the 8 allowed')
  })

  it.each([
    ['metadata.user.matches("^(a+)+$")', 'matches() is not available'],
    ['matches(metadata.user, "a")', 'matches() is not available'],
    ['cel.bind(x, "ab", x + x) == ""', 'cel.bind() is not available'],
    ['[1, 2].all(x, [3].exists(y, x < y))', 'inside another comprehension'],
    ['[1, 2].map(x, [3].map(y, y)).size() > 0', 'inside another comprehension'],
    ['user.id == "a"', 'Unknown variable'],
    ['1 + 2', 'must be a boolean expression'],
    ['1 + "a" == 3', ''],
    [' ', 'empty expression'],
    [`[${Array.from({ length: 101 }, (_, i) => i).join(', ')}].size() > 0`, 'maxListElements'],
  ])('refuses the condition %j', (condition, expected) => {
    const message = messageOf([
      { id: 'c', actor: '*', resource: '*', condition, action: { type: 'no-limit' } },
    ])
    expect(message).toContain("policy 'c' (#0): condition:")
    expect(message).toContain(expected)
  })

  it('accepts a single comprehension over the caller’s data', () => {
    const condition = 'principal.groups.exists(g, g == "admin") && [1, 2].all(x, x > 0)'
    expect(() =>
      compilePolicies([{ id: 'c', actor: '*', resource: '*', condition, action: { type: 'no-limit' } }]),
    ).not.toThrow()
  })
})

describe('evaluatePolicies: the reference’s order', () => {
  const perUserDaily = { id: 'per-user', actor: '{principal.id}', resource: '*', action: cap(5) }

  it.each<[string, unknown[], Partial<PolicyRequest>, string, string[]?]>([
    ['no policies allow everything', [], { principal: undefined }, 'allow', []],
    ['a matching no-limit allows', [everyone], {}, 'allow', ['everyone']],
    [
      'no policy matching is 403',
      [{ id: 'claude', actor: '*', resource: 'anthropic', action: { type: 'no-limit' } }],
      {},
      '403 unmatched',
    ],
    [
      'a matching block is 403 whatever else matches',
      [
        everyone,
        { id: 'no-4o', actor: '{principal.id}', resource: 'openai/gpt-4o', action: { type: 'block' } },
      ],
      {},
      '403 blocked',
    ],
    [
      'a block on another model does not apply',
      [everyone, { id: 'no-4o', actor: '*', resource: 'openai/gpt-4o', action: { type: 'block' } }],
      { model: 'gpt-4o-mini' },
      'allow',
      ['everyone'],
    ],
    [
      'a block for another caller does not apply',
      [everyone, { id: 'no-bob', actor: 'bob@example.com', resource: '*', action: { type: 'block' } }],
      {},
      'allow',
      ['everyone'],
    ],
    [
      'a block whose template is missing does not apply',
      [everyone, { id: 'team-block', actor: '{metadata.team}', resource: '*', action: { type: 'block' } }],
      {},
      'allow',
      ['everyone'],
    ],
    [
      'except: the actor itself passes and is matched',
      [
        {
          id: 'only-alice',
          actor: 'alice@example.com',
          resource: 'openai/gpt-4o',
          action: { type: 'block', except: true },
        },
      ],
      {},
      'allow',
      ['only-alice'],
    ],
    [
      'except: another caller of the resource is blocked',
      [
        everyone,
        {
          id: 'only-alice',
          actor: 'alice@example.com',
          resource: 'openai/gpt-4o',
          action: { type: 'block', except: true },
        },
      ],
      { principal: BOB },
      '403 blocked',
    ],
    [
      'except: an anonymous caller of the resource is blocked',
      [
        everyone,
        {
          id: 'only-alice',
          actor: 'alice@example.com',
          resource: 'openai/gpt-4o',
          action: { type: 'block', except: true },
        },
      ],
      { principal: undefined },
      '403 blocked',
    ],
    [
      'except: another resource is not its business',
      [
        everyone,
        {
          id: 'only-alice',
          actor: 'alice@example.com',
          resource: 'openai/gpt-4o',
          action: { type: 'block', except: true },
        },
      ],
      { principal: BOB, model: 'gpt-4o-mini' },
      'allow',
      ['everyone'],
    ],
    [
      'except with a template blocks callers without the value',
      [
        everyone,
        { id: 'named-only', actor: '{principal.id}', resource: '*', action: { type: 'block', except: true } },
      ],
      { principal: { tenant: 'acme' } },
      '403 blocked',
    ],
    [
      'except whose condition is false does not apply',
      [
        everyone,
        {
          id: 'only-alice-at-night',
          actor: 'alice@example.com',
          resource: '*',
          condition: 'time.hour < 6',
          action: { type: 'block', except: true },
        },
      ],
      { principal: BOB },
      'allow',
      ['everyone'],
    ],
    ['a per-user cap under its limit allows', [perUserDaily], {}, 'allow', ['per-user']],
    [
      'a per-user cap does not cover an anonymous caller',
      [perUserDaily],
      { principal: undefined },
      '403 unmatched',
    ],
  ])('%s', async (_name, policies, overrides, expected, matched) => {
    const decision = await decide(policies, overrides)
    expect(outcome(decision)).toBe(expected)
    if (matched !== undefined && decision.allowed) expect(decision.matched).toEqual(matched)
    if (!decision.allowed && decision.status === 403) {
      expect(decision.body).toEqual({ success: false, error: { message: 'Access denied by policy' } })
    }
  })

  it('names the block that refused', async () => {
    const decision = await decide([
      everyone,
      { id: 'no-4o', actor: '*', resource: '*/gpt-4o', action: { type: 'block' } },
    ])
    expect(decision).toMatchObject({ allowed: false, status: 403, reason: 'blocked', policyId: 'no-4o' })
  })

  it('groups by resolved actor and resource, with the highest cap per period', async () => {
    const decision = await decide([
      { id: 'user-low', actor: '{principal.id}', resource: '*', action: cap(1) },
      { id: 'user-high', actor: '{principal.id}', resource: '*', action: cap(5) },
      { id: 'user-month', actor: '{principal.id}', resource: '*', action: cap(50, 'monthly') },
      { id: 'user-openai', actor: '{principal.id}', resource: 'openai', action: cap(2) },
      { id: 'all-4o', actor: '*', resource: 'openai/gpt-4o', action: cap(100) },
    ])
    if (!decision.allowed) throw new Error(outcome(decision))
    expect(decision.matched).toEqual(['user-low', 'user-high', 'user-month', 'user-openai', 'all-4o'])
    expect(
      decision.charges.map((charge) => [charge.bucket, charge.period, charge.window.limit, charge.key]),
    ).toEqual([
      ['alice:*', 'daily', 5_000_000, 'policy:alice:*:daily:2026-06-10T00:00:00.000Z'],
      ['alice:*', 'monthly', 50_000_000, 'policy:alice:*:monthly:2026-06-01T00:00:00.000Z'],
      ['alice:openai', 'daily', 2_000_000, 'policy:alice:openai:daily:2026-06-10T00:00:00.000Z'],
      ['*:openai/gpt-4o', 'daily', 100_000_000, 'policy:*:openai%2Fgpt-4o:daily:2026-06-10T00:00:00.000Z'],
    ])
    expect(decision.charges[0]!.window).toEqual({
      limit: 5_000_000,
      windowMs: 86_400_000,
      technique: 'fixed',
    })
  })

  it('a no-limit exempts its own bucket only', async () => {
    const store = createMemoryLimitStore()
    const policies = compilePolicies([
      { id: 'tiny', actor: '{principal.id}', resource: '*', action: cap(0.000001) },
      { id: 'vip', actor: 'alice', resource: '*', action: { type: 'no-limit' } },
      { id: 'vip-bucket', actor: '{principal.id}', resource: '*', action: { type: 'no-limit' } },
      { id: 'openai', actor: '{principal.id}', resource: 'openai', action: cap(3) },
    ])
    for (let i = 0; i < 3; i++) {
      const decision = await evaluatePolicies(policies, request(), store)
      if (!decision.allowed) throw new Error(outcome(decision))
      // 'tiny' shares its bucket with the no-limit 'vip-bucket'; 'vip' is the bucket (alice, *) too.
      expect(decision.charges.map((charge) => charge.bucket)).toEqual(['alice:openai'])
    }
  })

  it('two buckets, one over its cap: 429 naming it, and the other’s reservation given back', async () => {
    const store = recording(createMemoryLimitStore())
    const policies = compilePolicies([
      { id: 'per-user', actor: '{principal.id}', resource: '*', action: cap(10) },
      { id: 'openai-total', actor: '*', resource: 'openai', action: cap(1) },
    ])
    const first = await evaluatePolicies(policies, request(), store)
    if (!first.allowed) throw new Error(outcome(first))
    await settlePolicies(first.charges, 1.25, store, { now: NOW + 1000 })
    store.calls.length = 0
    const second = await evaluatePolicies(policies, request({ principal: BOB, now: NOW + 2000 }), store)
    expect(second).toEqual({
      allowed: false,
      status: 429,
      policyId: 'openai-total',
      retryAfterSeconds: 43_198,
      body: {
        success: false,
        error: {
          message: 'Spending limit exceeded',
          bucket: '*:openai',
          period: 'daily',
          spent: 1.25,
          limit: 1,
        },
      },
    })
    // Bob's own bucket was reserved and given back.
    expect(store.calls).toContainEqual(['adjust', 'policy:bob:*:daily:2026-06-10T00:00:00.000Z', -1])
    const third = await evaluatePolicies(
      compilePolicies([{ id: 'per-user', actor: '{principal.id}', resource: '*', action: cap(0.000001) }]),
      request({ principal: BOB, now: NOW + 3000 }),
      store,
    )
    expect(outcome(third)).toBe('allow')
  })

  it('templated actors count per caller', async () => {
    const store = createMemoryLimitStore()
    const policies = compilePolicies([
      { id: 'per-user', actor: '{principal.id}', resource: '*', action: cap(1) },
    ])
    const alice = await evaluatePolicies(policies, request(), store)
    if (!alice.allowed) throw new Error(outcome(alice))
    await settlePolicies(alice.charges, 1, store, { now: NOW })
    expect(outcome(await evaluatePolicies(policies, request(), store))).toBe('429')
    expect(outcome(await evaluatePolicies(policies, request({ principal: BOB }), store))).toBe('allow')
  })

  it('metadata templates count per value, and a missing value means no match', async () => {
    const store = createMemoryLimitStore()
    const policies = compilePolicies([
      { id: 'per-team', actor: 'team:{metadata.team}', resource: '*', action: cap(1) },
    ])
    const search = await evaluatePolicies(policies, request({ metadata: { team: 'search' } }), store)
    if (!search.allowed) throw new Error(outcome(search))
    expect(search.charges[0]!.bucket).toBe('team:search:*')
    await settlePolicies(search.charges, 2, store, { now: NOW })
    expect(outcome(await evaluatePolicies(policies, request({ metadata: { team: 'search' } }), store))).toBe(
      '429',
    )
    expect(outcome(await evaluatePolicies(policies, request({ metadata: { team: 'ml' } }), store))).toBe(
      'allow',
    )
    expect(outcome(await evaluatePolicies(policies, request(), store))).toBe('403 unmatched')
  })

  it('keyPrefix goes before every counter key', async () => {
    const policies = compilePolicies([{ id: 'p', actor: '{principal.id}', resource: '*', action: cap(1) }], {
      keyPrefix: 'gw1:policy:',
    })
    const decision = await evaluatePolicies(policies, request(), createMemoryLimitStore())
    if (!decision.allowed) throw new Error(outcome(decision))
    expect(decision.charges[0]!.key).toBe('gw1:policy:alice:*:daily:2026-06-10T00:00:00.000Z')
  })
})

describe('conditions (CEL)', () => {
  const conditional = (condition: string) => [
    { id: 'cond', actor: '{principal.id}', resource: '*', condition, action: { type: 'no-limit' } },
  ]

  it.each<[string, Partial<PolicyRequest>, string]>([
    ['principal.plan == "pro"', {}, 'allow'],
    ['principal.plan == "free"', {}, '403 unmatched'],
    ['has(principal.plan) && principal.plan == "pro"', { principal: BOB }, '403 unmatched'],
    ['principal.tenant in ["acme", "globex"]', {}, 'allow'],
    ['metadata.env == "prod"', { metadata: { env: 'prod' } }, 'allow'],
    ['metadata.n + 1 == 3', { metadata: { n: 2 } }, 'allow'],
    ['metadata.ratio > 0.5', { metadata: { ratio: 0.75 } }, 'allow'],
    ['metadata.beta', { metadata: { beta: true } }, 'allow'],
    ['request.provider == "openai" && request.model.startsWith("gpt-4")', {}, 'allow'],
    ['request.model == null', { model: undefined }, 'allow'],
    ['request.method == "POST" && request.path.startsWith("/openai/")', {}, 'allow'],
    ['time.hour >= 9 && time.hour < 17', {}, 'allow'],
    ['time.hour >= 9 && time.hour < 17', { now: Date.parse('2026-06-10T20:00:00Z') }, '403 unmatched'],
    // 2026-06-10 is a Wednesday: CEL counts days from Sunday = 0.
    ['time.weekday == 3', {}, 'allow'],
    ['time.weekday in [0, 6]', {}, '403 unmatched'],
    [
      'principal.groups.exists(g, g == "admin")',
      { principal: { id: 'carol', groups: ['dev', 'admin'] } },
      'allow',
    ],
  ])('%s → %s', async (condition, overrides, expected) => {
    expect(outcome(await decide(conditional(condition), overrides))).toBe(expected)
  })

  const proOnlyAndTiny = () =>
    compilePolicies([
      {
        id: 'pro-only',
        actor: '{principal.id}',
        resource: '*',
        condition: 'principal.plan == "pro"',
        action: cap(1),
      },
      { id: 'tiny', actor: '*', resource: '*', action: cap(0.000001) },
    ])

  it('a condition that fails to evaluate skips its own policy and is reported; the others still charge', async () => {
    const failures: PolicyFailure[] = []
    const decision = await evaluatePolicies(
      proOnlyAndTiny(),
      request({ principal: BOB }),
      createMemoryLimitStore(),
      {
        onError: (failure) => failures.push(failure),
      },
    )
    expect(decision).toMatchObject({ allowed: true, charges: [{ bucket: '*:*' }], matched: ['tiny'] })
    expect(failures).toHaveLength(1)
    expect(failures[0]).toMatchObject({ kind: 'condition', policyId: 'pro-only' })
    expect(String((failures[0] as { error: unknown }).error)).toContain('plan')
  })

  it('a condition that fails to evaluate does not lift the other policies’ caps', async () => {
    const policies = proOnlyAndTiny()
    const store = createMemoryLimitStore()
    expect(outcome(await evaluatePolicies(policies, request(), store))).toBe('allow')
    const decision = await evaluatePolicies(policies, request({ principal: BOB }), store)
    expect(decision).toMatchObject({ allowed: false, status: 429, policyId: 'tiny' })
  })

  it('a condition that gives something other than a bool is a failure, not a refusal', async () => {
    const failures: PolicyFailure[] = []
    const decision = await evaluatePolicies(
      compilePolicies(conditional('principal.id')),
      request(),
      createMemoryLimitStore(),
      {
        onError: (failure) => failures.push(failure),
      },
    )
    expect(outcome(decision)).toBe('allow')
    expect(String((failures[0] as { error: unknown }).error)).toContain('not a bool')
  })

  it('a division by zero is a failure, not a refusal', async () => {
    const failures: PolicyFailure[] = []
    const decision = await evaluatePolicies(
      compilePolicies(conditional('metadata.n / 0 == 1')),
      request({ metadata: { n: 1 } }),
      createMemoryLimitStore(),
      { onError: (failure) => failures.push(failure) },
    )
    expect(outcome(decision)).toBe('allow')
    expect(failures.map((failure) => failure.kind)).toEqual(['condition'])
  })

  it('a block still refuses when another policy’s condition fails', async () => {
    const decision = await decide([
      {
        id: 'broken',
        actor: '*',
        resource: '*',
        condition: 'principal.missing == 1',
        action: { type: 'no-limit' },
      },
      { id: 'no-4o', actor: '*', resource: 'openai/gpt-4o', action: { type: 'block' } },
    ])
    expect(decision).toMatchObject({ status: 403, reason: 'blocked', policyId: 'no-4o' })
  })

  it('a listener that throws changes nothing', async () => {
    const decision = await evaluatePolicies(
      compilePolicies(conditional('principal.missing == 1')),
      request(),
      createMemoryLimitStore(),
      {
        onError: () => {
          throw new Error('listener')
        },
      },
    )
    expect(outcome(decision)).toBe('allow')
  })

  it('sees plain data only: no functions, no prototype members', async () => {
    const principal = { id: 'dave', n: 2, fn: () => 1, when: new Date(0), nested: { deep: { ok: true } } }
    expect(
      outcome(await decide(conditional('principal.n * 2 == 4 && principal.nested.deep.ok'), { principal })),
    ).toBe('allow')
    expect(
      outcome(await decide(conditional('has(principal.fn) || has(principal.when)'), { principal })),
    ).toBe('403 unmatched')
    expect(outcome(await decide(conditional('has(principal.constructor)'), { principal }))).toBe(
      '403 unmatched',
    )
  })
})

describe('spend with the memory limit store', () => {
  const dailyBudget = compilePolicies([
    { id: 'per-user', actor: '{principal.id}', resource: '*', action: cap(1) },
  ])

  it('admits until spent reaches the limit, refuses with 429, and admits again the next UTC day', async () => {
    const store = createMemoryLimitStore()
    let now = Date.parse('2026-12-31T20:00:00.000Z')
    for (let i = 0; i < 4; i++) {
      const decision = await evaluatePolicies(dailyBudget, request({ now }), store)
      expect(outcome(decision)).toBe('allow')
      if (decision.allowed) await settlePolicies(decision.charges, 0.3, store, { now: now + 500 })
      now += 60_000
    }
    // Spent 1.2 ≥ 1.
    const refused = await evaluatePolicies(dailyBudget, request({ now }), store)
    expect(refused).toMatchObject({
      allowed: false,
      status: 429,
      policyId: 'per-user',
      body: { error: { message: 'Spending limit exceeded', bucket: 'alice:*', spent: 1.2, limit: 1 } },
    })
    if (!refused.allowed && refused.status === 429) {
      expect(refused.retryAfterSeconds).toBe(Math.ceil((Date.parse('2027-01-01T00:00:00Z') - now) / 1000))
    }
    // Refusals take nothing: still 1.2.
    const again = await evaluatePolicies(dailyBudget, request({ now: now + 1 }), store)
    expect(again).toMatchObject({ body: { error: { spent: 1.2 } } })
    // Another caller has a budget of their own.
    expect(outcome(await evaluatePolicies(dailyBudget, request({ principal: BOB, now }), store))).toBe(
      'allow',
    )
    // The next UTC day starts afresh.
    const tomorrow = await evaluatePolicies(
      dailyBudget,
      request({ now: Date.parse('2027-01-01T00:00:00.000Z') }),
      store,
    )
    expect(outcome(tomorrow)).toBe('allow')
  })

  it('a bucket spent exactly to its limit refuses', async () => {
    const store = createMemoryLimitStore()
    const decision = await evaluatePolicies(dailyBudget, request(), store)
    if (!decision.allowed) throw new Error(outcome(decision))
    await settlePolicies(decision.charges, 1, store, { now: NOW })
    expect(await evaluatePolicies(dailyBudget, request(), store)).toMatchObject({
      status: 429,
      body: { error: { spent: 1, limit: 1 } },
    })
  })

  it('a weekly bucket keeps its spend across Thursday 00:00 UTC, where epoch-aligned weeks turn over', async () => {
    const store = createMemoryLimitStore()
    const weekly = compilePolicies([
      { id: 'w', actor: '{principal.id}', resource: '*', action: cap(1, 'weekly') },
    ])
    const monday = Date.parse('2026-06-08T09:00:00Z')
    const decision = await evaluatePolicies(weekly, request({ now: monday }), store)
    if (!decision.allowed) throw new Error(outcome(decision))
    await settlePolicies(decision.charges, 1, store, { now: monday })
    expect(
      outcome(await evaluatePolicies(weekly, request({ now: Date.parse('2026-06-11T00:00:01Z') }), store)),
    ).toBe('429')
    expect(
      outcome(await evaluatePolicies(weekly, request({ now: Date.parse('2026-06-14T23:59:59Z') }), store)),
    ).toBe('429')
    expect(
      outcome(await evaluatePolicies(weekly, request({ now: Date.parse('2026-06-15T00:00:00Z') }), store)),
    ).toBe('allow')
  })

  it('a monthly bucket lasts the calendar month', async () => {
    const store = createMemoryLimitStore()
    const monthly = compilePolicies([
      { id: 'm', actor: '{principal.id}', resource: '*', action: cap(1, 'monthly') },
    ])
    const start = Date.parse('2027-01-01T00:00:00Z')
    const decision = await evaluatePolicies(monthly, request({ now: start }), store)
    if (!decision.allowed) throw new Error(outcome(decision))
    await settlePolicies(decision.charges, 1, store, { now: start })
    const late = await evaluatePolicies(monthly, request({ now: Date.parse('2027-01-31T23:59:59Z') }), store)
    expect(late).toMatchObject({ status: 429, retryAfterSeconds: 1 })
    expect(
      outcome(await evaluatePolicies(monthly, request({ now: Date.parse('2027-02-01T00:00:00Z') }), store)),
    ).toBe('allow')
  })

  it('settling: a zero cost gives the reservation back, an unknown cost leaves it', async () => {
    const oneMicro = compilePolicies([
      { id: 'p', actor: '{principal.id}', resource: '*', action: cap(0.000001) },
    ])
    const store = createMemoryLimitStore()
    const first = await evaluatePolicies(oneMicro, request(), store)
    if (!first.allowed) throw new Error(outcome(first))
    await settlePolicies(first.charges, 0, store, { now: NOW })
    const second = await evaluatePolicies(oneMicro, request(), store)
    if (!second.allowed) throw new Error(outcome(second))
    await settlePolicies(second.charges, undefined, store, { now: NOW })
    expect(await evaluatePolicies(oneMicro, request(), store)).toMatchObject({
      status: 429,
      body: { error: { spent: 0.000001 } },
    })
  })

  it('an answer that ends in the next period is charged to that period', async () => {
    const store = createMemoryLimitStore()
    const before = Date.parse('2026-12-31T23:59:59.000Z')
    const after = Date.parse('2027-01-01T00:00:05.000Z')
    const decision = await evaluatePolicies(dailyBudget, request({ now: before }), store)
    if (!decision.allowed) throw new Error(outcome(decision))
    await settlePolicies(decision.charges, 0.75, store, { now: after })
    const next = await evaluatePolicies(dailyBudget, request({ now: after + 1 }), store)
    if (!next.allowed) throw new Error(outcome(next))
    await settlePolicies(next.charges, 0.25, store, { now: after + 2 })
    expect(await evaluatePolicies(dailyBudget, request({ now: after + 3 }), store)).toMatchObject({
      status: 429,
      body: { error: { spent: 1 } },
    })
  })

  it('costs count in whole micro-dollars, rounded up', () => {
    expect(costMicros(0)).toBe(0)
    expect(costMicros(0.000015)).toBe(15)
    expect(costMicros(0.0000031)).toBe(4)
    expect(costMicros(1.2)).toBe(1_200_000)
    expect(costMicros(1e-12)).toBe(1)
    expect(costMicros(-1)).toBeUndefined()
    expect(costMicros(Number.NaN)).toBeUndefined()
    expect(costMicros(1e12)).toBeUndefined()
  })
})

describe('store failures never refuse', () => {
  const policies = compilePolicies([{ id: 'p', actor: '{principal.id}', resource: '*', action: cap(1) }])

  it('a store that throws lets the request through, uncharged, and is reported', async () => {
    const failures: PolicyFailure[] = []
    const broken: LimitStore = {
      consume: () => {
        throw new Error('down')
      },
      adjust: () => {
        throw new Error('down')
      },
    }
    const decision = await evaluatePolicies(policies, request(), broken, { onError: (f) => failures.push(f) })
    expect(decision).toEqual({ allowed: true, charges: [], matched: ['p'] })
    expect(failures).toMatchObject([
      { kind: 'store', operation: 'consume', key: 'policy:alice:*:daily:2026-06-10T00:00:00.000Z' },
    ])
  })

  it('a store that does not answer in time is given up', async () => {
    const failures: PolicyFailure[] = []
    const hanging: LimitStore = { consume: () => new Promise(() => {}), adjust: () => new Promise(() => {}) }
    const decision = await evaluatePolicies(policies, request(), hanging, {
      storeTimeoutMs: 10,
      onError: (f) => failures.push(f),
    })
    expect(decision).toEqual({ allowed: true, charges: [], matched: ['p'] })
    expect(failures).toHaveLength(1)
  })

  it('settling reports a failing adjust and does not throw', async () => {
    const store = createMemoryLimitStore()
    const decision = await evaluatePolicies(policies, request(), store)
    if (!decision.allowed) throw new Error(outcome(decision))
    const failures: PolicyFailure[] = []
    const failing: LimitStore = {
      ...store,
      adjust: () => Promise.reject(new Error('down')),
    }
    await expect(
      settlePolicies(decision.charges, 0.5, failing, { now: NOW, onError: (f) => failures.push(f) }),
    ).resolves.toBeUndefined()
    expect(failures).toMatchObject([{ kind: 'store', operation: 'adjust' }])
  })
})

/** A store that notes each call (its kind, key and amount) before passing it on. */
function recording(store: LimitStore): LimitStore & { calls: [string, string, number][] } {
  const calls: [string, string, number][] = []
  return {
    calls,
    consume(key, amount, window, now, options) {
      calls.push(['consume', key, amount])
      return store.consume(key, amount, window, now, options)
    },
    adjust(key, reservation, delta, window, now, options) {
      calls.push(['adjust', key, delta])
      return store.adjust(key, reservation, delta, window, now, options)
    },
  }
}
