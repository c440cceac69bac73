import { expect, it } from 'vitest'
import { send } from '../helpers/http.js'
import { chat, type World } from './scenarios.js'

const CHAT = '/ai/openai/chat/completions'
const COMPAT = '/ai/compat/chat/completions'

/** Spend limits (`rateLimit` rules with `unit: 'cost'`): on every surface, per user, with the reference's filters. */
export function spendLimitScenarios(world: World): void {
  const LIMIT = 0.002

  /**
   * Sends requests for `user` until one is refused (or `most` were sent); the answered ones' record costs.
   * `request` adds to each request's headers and body.
   */
  async function spendUntilRefused(
    url: string,
    user: string,
    path: string,
    most = 20,
    request: { headers?: Record<string, string>; body?: Record<string, unknown> } = {},
  ) {
    const costs: number[] = []
    for (let i = 0; i < most; i++) {
      const res = await send(`${url}${path}`, {
        headers: { 'cf-aig-metadata': JSON.stringify({ user }), ...request.headers },
        body: chat('spend a little money on a few words here', {
          model: path === COMPAT ? 'openai/gpt-4o' : 'gpt-4o',
          stream: i % 2 === 1,
          ...request.body,
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

  it.each([
    [
      "OpenAI's n",
      CHAT,
      (choices: number) => chat('many choices', { model: 'gpt-4o', max_tokens: 1000, n: choices }),
    ],
    [
      "Gemini's candidateCount",
      '/ai/google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent',
      (choices: number) => ({
        contents: [{ role: 'user', parts: [{ text: 'many choices' }] }],
        generationConfig: { maxOutputTokens: 1000, candidateCount: choices },
      }),
    ],
  ])(
    'spend limits: the estimate counts every choice asked for (%s), each at its full output cap',
    async (_field, path, body) => {
      world.mock.reset()
      // One choice of 1000 output tokens fits (gpt-4o: $0.01, gemini-2.5-flash: $0.0025); a hundred do not.
      const url = await world.start({ rateLimit: { unit: 'cost', limit: 0.2, window: 3600 } })
      const many = await send(`${url}${path}`, { body: body(100) })
      expect(many.status).toBe(429)
      expect(many.json()).toMatchObject({ internalCode: 2041 })
      expect(world.mock.calls).toHaveLength(0)
      expect((await send(`${url}${path}`, { body: body(1) })).status).toBe(200)
    },
  )

  it('spend limits: rules of spend limits alone send no RateLimit headers', async () => {
    world.mock.reset()
    const url = await world.start({ rateLimit: { unit: 'cost', limit: 5, window: 3600 } })
    const res = await send(`${url}${CHAT}`, { body: chat('no headers') })
    expect(res.status).toBe(200)
    expect(res.headers).not.toHaveProperty('ratelimit-policy')
    expect(res.headers).not.toHaveProperty('ratelimit')
  })

  it.each([
    ['a first model without a price', {}, 'openai/my-own-model'],
    ['a filter naming only the fallback', { filter: { model: ['gpt-4o'] } }, 'openai/gpt-4o-mini'],
  ])('spend limits: a fallback that answers is charged, with %s', async (_case, rule, first) => {
    world.mock.reset()
    // Each request's first model is refused, as a provider refuses a model it does not serve: gpt-4o answers.
    for (let i = 0; i < 20; i++) world.mock.enqueue({ status: 404 }, {})
    const url = await world.start({
      rateLimit: { name: 'daily', unit: 'cost', limit: LIMIT, window: 86_400, key: 'metadata.user', ...rule },
    })
    const fallback = { body: { model: first, models: ['openai/gpt-4o'] } }
    const { costs, refused } = await spendUntilRefused(url, 'ann', COMPAT, 20, fallback)
    expect(refused?.json()).toMatchObject({
      internalCode: 2041,
      message: expect.stringMatching(/for openai gpt-4o$/),
    })
    expect(costs.length).toBeGreaterThan(1)
  })

  it('token limits: a filtered rule gives its reservation back when a fallback outside its filter answered', async () => {
    world.mock.reset()
    world.mock.enqueue({ status: 404 }, {}, { status: 404 }, {})
    // Room for one request's estimate: a second fits only if the first one's was given back.
    const filter = { model: ['gpt-4o'] }
    const url = await world.start({
      rateLimit: { unit: 'tokens', limit: 100, window: 3600, estimate: () => 100, filter },
    })
    for (let i = 0; i < 2; i++) {
      const body = chat('filtered', { model: 'openai/gpt-4o', models: ['openai/gpt-4o-mini'] })
      const res = await send(`${url}${COMPAT}`, { body })
      expect(res.headers['cf-aig-model']).toBe('gpt-4o-mini')
      // Settled once the answer's usage was read, before its record is written.
      await world.gateway?.flushLogs()
    }
  })

  it('spend limits: a caller pricing its requests at 0 with cf-aig-custom-cost is charged the model’s price', async () => {
    world.mock.reset()
    const url = await world.start({
      rateLimit: { name: 'daily', unit: 'cost', limit: LIMIT, window: 86_400, key: 'metadata.user' },
    })
    const free = { headers: { 'cf-aig-custom-cost': '{"per_token_in":0,"per_token_out":0}' } }
    const { costs, refused } = await spendUntilRefused(url, 'ann', CHAT, 20, free)
    expect(refused?.json()).toMatchObject({ internalCode: 2041 })
    // The log records keep the price the caller gave.
    expect(new Set(costs)).toEqual(new Set([0]))
  })

  it('spend limits: a cost limit must be positive, and request and token limits whole numbers', async () => {
    await expect(world.start({ rateLimit: { unit: 'cost', limit: 0, window: 60 } })).rejects.toThrow(/limit/)
    await expect(world.start({ rateLimit: { limit: 1.5, window: 60 } })).rejects.toThrow(/whole number/)
  })
}
