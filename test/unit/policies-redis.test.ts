import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  compilePolicies,
  evaluatePolicies,
  type PolicyRequest,
  settlePolicies,
} from '../../src/policies/index.js'
import { createRedisLimitStore } from '../../src/redis/limit-store.js'
import type { LimitStore } from '../../src/stores/types.js'
import { REDIS_URL, uniqueName } from '../helpers/services.js'

/**
 * Calendar periods through the Redis limit store: each counter is the store's window 0 of its period, so
 * its key expires shortly after the period ends, and the spend holds for the whole period.
 */
describe.skipIf(!REDIS_URL)('policies with the Redis limit store', () => {
  let client: Redis
  let store: LimitStore
  const prefix = `${uniqueName('policies')}:`

  beforeAll(async () => {
    client = new Redis(REDIS_URL!, { lazyConnect: true })
    await client.connect()
    store = createRedisLimitStore(client, { prefix })
  })

  afterAll(async () => {
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
      if (keys.length > 0) await client.del(...keys)
      cursor = next
    } while (cursor !== '0')
    await client.quit()
  })

  const request = (now: number, id = 'alice'): PolicyRequest => ({
    principal: { id },
    metadata: {},
    provider: 'openai',
    model: 'gpt-4o',
    path: '/openai/chat/completions',
    method: 'POST',
    now,
  })

  it('a monthly budget holds for the calendar month, and its counter expires after the month', async () => {
    const policies = compilePolicies([
      {
        id: 'monthly',
        actor: '{principal.id}',
        resource: '*',
        action: { type: 'limit', amount: 2, period: 'monthly', technique: 'named-interval' },
      },
    ])
    // Real time, so that the key's expiry can be read against the server's clock.
    const now = Date.now()
    const first = await evaluatePolicies(policies, request(now), store)
    if (!first.allowed) throw new Error(`refused: ${first.status}`)
    const [charge] = first.charges
    const ttl = await client.pttl(`${prefix}${charge!.key}:0`)
    expect(ttl).toBeGreaterThan(charge!.end - now - 1000)
    expect(ttl).toBeLessThanOrEqual(charge!.end - now + 10_000)
    await settlePolicies(first.charges, 2.5, store, { now: now + 1 })
    const refused = await evaluatePolicies(policies, request(now + 2), store)
    expect(refused).toMatchObject({
      allowed: false,
      status: 429,
      body: { error: { bucket: 'alice:*', spent: 2.5, limit: 2 } },
    })
    expect((await evaluatePolicies(policies, request(now + 3, 'bob'), store)).allowed).toBe(true)
  })

  it('a weekly budget keeps its spend across Thursday 00:00 UTC and ends on Monday', async () => {
    const policies = compilePolicies([
      {
        id: 'weekly',
        actor: '{principal.id}',
        resource: '*',
        action: { type: 'limit', amount: 1, period: 'weekly', technique: 'named-interval' },
      },
    ])
    const monday = Date.parse('2030-06-03T09:00:00Z')
    const first = await evaluatePolicies(policies, request(monday, 'carol'), store)
    if (!first.allowed) throw new Error(`refused: ${first.status}`)
    await settlePolicies(first.charges, 1, store, { now: monday })
    const thursday = await evaluatePolicies(
      policies,
      request(Date.parse('2030-06-06T00:00:01Z'), 'carol'),
      store,
    )
    expect(thursday).toMatchObject({ status: 429, body: { error: { spent: 1 } } })
    const nextMonday = await evaluatePolicies(
      policies,
      request(Date.parse('2030-06-10T00:00:00Z'), 'carol'),
      store,
    )
    expect(nextMonday.allowed).toBe(true)
  })
})
