import { expect, it } from 'vitest'
import { send } from '../helpers/http.js'
import { chat, type World } from './scenarios.js'

const CHAT = '/ai/openai/chat/completions'
const COMPAT = '/ai/compat/chat/completions'

/** Spend limits (`rateLimit` rules with `unit: 'cost'`): on every surface, per user, with the reference's filters. */
export function spendLimitScenarios(world: World): void {
  const LIMIT = 0.002

  /** Sends requests for `user` until one is refused (or `most` were sent); the answered ones' record costs. */
  async function spendUntilRefused(url: string, user: string, path: string, most = 20) {
    const costs: number[] = []
    for (let i = 0; i < most; i++) {
      const res = await send(`${url}${path}`, {
        headers: { 'cf-aig-metadata': JSON.stringify({ user }) },
        body: chat('spend a little money on a few words here', {
          model: path === COMPAT ? 'openai/gpt-4o' : 'gpt-4o',
          stream: i % 2 === 1,
        }),
      })
      if (res.status === 429) return { costs, refused: res }
      expect(res.status).toBe(200)
      // The answer's cost is settled once its usage was read, before its record is written.
      await world.gateway?.flushLogs()
      const record = await world.gateway?.logs?.get(res.headers['cf-aig-log-id'] as string)
      costs.push(record?.cost ?? Number.NaN)
    }
    return { costs, refused: undefined }
  }

  it.each([
    ['passthrough', CHAT],
    ['/compat', COMPAT],
  ])(
    'spend limits (%s): a user is served until their spend passes the budget, then refused with 429 (2041)',
    async (_surface, path) => {
      world.mock.reset()
      const url = await world.start({
        rateLimit: { name: 'daily', unit: 'cost', limit: LIMIT, window: 86_400, key: 'metadata.user' },
      })
      const { costs, refused } = await spendUntilRefused(url, 'ann', path)
      expect(refused?.json()).toMatchObject({
        internalCode: 2041,
        message: expect.stringMatching(
          /rule 'daily' \(cost limit 0.002 per 86400s, sliding\) for openai gpt-4o/,
        ),
      })
      expect(Number(refused?.headers['retry-after'])).toBeGreaterThan(0)
      const spent = costs.reduce((sum, cost) => sum + cost, 0)
      // Refused only once what was spent and the next request's estimate no longer fit: never early, and
      // past the budget by less than one request.
      expect(costs.length).toBeGreaterThan(1)
      expect(spent).toBeGreaterThan(LIMIT - Math.max(...costs) * 2)
      expect(spent).toBeLessThan(LIMIT + Math.max(...costs))
      // Another user has a budget of their own.
      const other = await spendUntilRefused(url, 'bob', path, 1)
      expect(other.costs).toHaveLength(1)
    },
  )

  it('spend limits: a rule filtered to one model leaves the others alone, and a model without a price is not counted', async () => {
    world.mock.reset()
    const url = await world.start({
      rateLimit: {
        unit: 'cost',
        // A hundredth of a cent: one answer fits, the next one's estimate no longer does.
        limit: 0.0001,
        window: 3600,
        filter: { provider: ['openai'], model: ['gpt-4o'] },
      },
    })
    const ask = (model: string) => send(`${url}${CHAT}`, { body: chat('filtered', { model }) })
    let served = 0
    while (served < 10 && (await ask('gpt-4o')).status === 200) {
      served++
      await world.gateway?.flushLogs()
    }
    expect(served).toBeGreaterThan(0)
    expect(served).toBeLessThan(10)
    for (let i = 0; i < 3; i++) expect((await ask('gpt-4o-mini')).status).toBe(200)
    const priceless = await world.start({ rateLimit: { unit: 'cost', limit: 0.000001, window: 3600 } })
    for (let i = 0; i < 3; i++) {
      const res = await send(`${priceless}${CHAT}`, { body: chat('no price', { model: 'my-own-model' }) })
      expect(res.status).toBe(200)
      await world.gateway?.flushLogs()
    }
  })

  it('spend limits: a cost limit must be positive, and request and token limits whole numbers', async () => {
    await expect(world.start({ rateLimit: { unit: 'cost', limit: 0, window: 60 } })).rejects.toThrow(/limit/)
    await expect(world.start({ rateLimit: { limit: 1.5, window: 60 } })).rejects.toThrow(/whole number/)
  })
}
