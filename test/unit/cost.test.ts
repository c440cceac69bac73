import { describe, expect, it } from 'vitest'
import {
  computeCost,
  extractStreamUsage,
  extractUsage,
  parseCustomCost,
  totalInputTokens,
  type Usage,
} from '../../src/cost/cost.js'
import { add, decimalOf, multiply, round, shift, toDollars, toNumber } from '../../src/cost/money.js'
import { createPriceTable, findPrice, PRICES_AS_OF, PRICING, type Price } from '../../src/cost/pricing.js'
import { PROVIDERS } from '../../src/providers/catalog.js'

function sse(events: Array<[string | undefined, unknown]>): string {
  return events
    .map(
      ([name, data]) =>
        `${name ? `event: ${name}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`,
    )
    .join('')
}

describe('money', () => {
  it('reads a number as the decimal it prints as', () => {
    expect(decimalOf(0.15)).toEqual({ units: 15n, scale: 2 })
    expect(decimalOf(1.5e-7)).toEqual({ units: 15n, scale: 8 })
    expect(decimalOf(1e21)).toEqual({ units: 10n ** 21n, scale: 0 })
    expect(decimalOf(-2.5)).toEqual({ units: -25n, scale: 1 })
    expect(decimalOf(0)).toEqual({ units: 0n, scale: 0 })
    expect(() => decimalOf(Number.NaN)).toThrow(RangeError)
    expect(() => decimalOf(Number.POSITIVE_INFINITY)).toThrow(RangeError)
  })

  it('adds, shifts and rounds exactly, halves away from zero', () => {
    expect(toNumber(add(decimalOf(0.1), decimalOf(0.2)))).toBe(0.3)
    expect(toNumber(shift(decimalOf(0.0000025), 6))).toBe(2.5)
    expect(round(decimalOf(0.00000000005), 10)).toEqual({ units: 1n, scale: 10 })
    expect(round(decimalOf(-0.00000000005), 10)).toEqual({ units: -1n, scale: 10 })
    expect(round(decimalOf(0.000000000049), 10)).toEqual({ units: 0n, scale: 10 })
    expect(toDollars(decimalOf(0.12345678901234))).toBe(0.123456789)
    expect(toNumber({ units: -33n, scale: 7 })).toBe(-0.0000033)
    expect(toNumber({ units: 123n, scale: 0 })).toBe(123)
  })
})

describe('PRICING', () => {
  it('is keyed by provider slugs the catalog knows', () => {
    const slugs = new Set(PROVIDERS.map((provider) => provider.id))
    for (const provider of Object.keys(PRICING)) expect(slugs).toContain(provider)
    expect(Object.keys(PRICING).sort()).toEqual(
      ['anthropic', 'deepseek', 'google-ai-studio', 'grok', 'groq', 'mistral', 'openai'].sort(),
    )
  })

  it('says when its prices were checked', () => {
    expect(PRICES_AS_OF).toMatch(/^\d{4}-\d{2}(-\d{2})?$/)
  })

  it('holds only finite, non-negative rates and lower-case ids', () => {
    for (const models of Object.values(PRICING)) {
      for (const [model, price] of Object.entries(models)) {
        expect(model).toBe(model.toLowerCase())
        for (const value of Object.values(price)) {
          expect(Number.isFinite(value) && value >= 0).toBe(true)
        }
      }
    }
  })
})

describe('findPrice()', () => {
  it.each([
    ['openai', 'gpt-4o', { input: 2.5, output: 10, cacheRead: 1.25 }],
    ['openai', 'gpt-4o-2024-08-06', { input: 2.5, output: 10, cacheRead: 1.25 }],
    ['openai', 'gpt-4o-2024-05-13', { input: 5, output: 15 }],
    ['openai', 'gpt-4o-mini', { input: 0.15, output: 0.6, cacheRead: 0.075 }],
    ['openai', 'gpt-4o-mini-2024-07-18', { input: 0.15, output: 0.6, cacheRead: 0.075 }],
    ['openai', 'GPT-4.1-Mini', { input: 0.4, output: 1.6, cacheRead: 0.1 }],
    ['openai', 'gpt-4.1-nano-2025-04-14', { input: 0.1, output: 0.4, cacheRead: 0.025 }],
    ['openai', 'o4-mini-2025-04-16', { input: 1.1, output: 4.4, cacheRead: 0.275 }],
    ['openai', 'gpt-4-0613', { input: 30, output: 60 }],
    ['anthropic', 'claude-sonnet-4-5-20250929', { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 }],
    ['anthropic', 'claude-3-5-haiku-latest', { input: 0.8, output: 4, cacheRead: 0.08, cacheWrite: 1 }],
    ['anthropic', 'claude-opus-4-1-20250805', { input: 15, output: 75, cacheRead: 1.5, cacheWrite: 18.75 }],
    ['google-ai-studio', 'models/gemini-2.5-flash', { input: 0.3, output: 2.5, cacheRead: 0.03 }],
    ['google-ai-studio', 'gemini-2.5-flash-lite', { input: 0.1, output: 0.4, cacheRead: 0.01 }],
    ['google-ai-studio', 'gemini-2.0-flash-001', { input: 0.1, output: 0.4, cacheRead: 0.025 }],
    ['mistral', 'mistral-large-latest', { input: 2, output: 6 }],
    ['mistral', 'mistral-small-2503', { input: 0.1, output: 0.3 }],
    ['grok', 'grok-4-0709', { input: 3, output: 15, cacheRead: 0.75 }],
    ['deepseek', 'deepseek-reasoner', { input: 0.28, output: 0.42, cacheRead: 0.028 }],
    ['groq', 'llama-3.3-70b-versatile', { input: 0.59, output: 0.79 }],
  ])('%s %s', (provider, model, price) => {
    expect(findPrice(provider, model)).toEqual(price)
  })

  it.each([
    ['openai', 'gpt-4o-mini-tts'],
    ['openai', 'gpt-4o-mega'],
    ['openai', 'gpt'],
    ['openai', 'models/gpt-4o'],
    ['anthropic', 'claude-sonnet-4-5-x'],
    ['google-ai-studio', 'gemini-2.5-flash-preview-05-20'],
    ['openai', 'claude-sonnet-4-5'],
    ['nowhere', 'gpt-4o'],
    ['openai', 'constructor'],
    ['constructor', 'name'],
    ['openai', '-latest'],
  ])('answers undefined for %s %s', (provider, model) => {
    expect(findPrice(provider, model)).toBeUndefined()
  })
})

describe('createPriceTable()', () => {
  it('puts host overrides in front of the built-in prices, snapshots included', () => {
    const prices = createPriceTable({
      openai: { 'GPT-4o': { input: 2, output: 8 }, 'ft:gpt-4o-mini:acme:1': { input: 0.3, output: 1.2 } },
      'workers-ai': { '@cf/meta/llama-3.1-8b-instruct': { input: 0.28, output: 0.83 } },
    })
    expect(prices.find('openai', 'gpt-4o-2024-11-20')).toEqual({ input: 2, output: 8 })
    expect(prices.find('openai', 'ft:gpt-4o-mini:acme:1')).toEqual({ input: 0.3, output: 1.2 })
    expect(prices.find('openai', 'gpt-4o-mini')).toEqual(findPrice('openai', 'gpt-4o-mini'))
    expect(prices.find('workers-ai', '@cf/meta/llama-3.1-8b-instruct')).toEqual({ input: 0.28, output: 0.83 })
    expect(findPrice('openai', 'gpt-4o')).toEqual({ input: 2.5, output: 10, cacheRead: 1.25 })
  })

  it.each([
    [{ openai: { x: { input: -1, output: 1 } } }, 'openai.x.input'],
    [{ openai: { x: { input: 1, output: Number.POSITIVE_INFINITY } } }, 'openai.x.output'],
    [{ openai: { x: { input: 1 } } }, 'openai.x.output'],
    [{ openai: { x: { input: 1, output: 1, cached: 1 } } }, 'openai.x'],
  ])('refuses an invalid override (%j)', (overrides, path) => {
    expect(() => createPriceTable(overrides as never)).toThrow(
      new RegExp(`at ${path.replace(/\./g, '\\.')}\\b`),
    )
  })
})

describe('computeCost()', () => {
  const gpt4oMini = findPrice('openai', 'gpt-4o-mini')!
  const sonnet = findPrice('anthropic', 'claude-sonnet-4-5')!
  const flash = findPrice('google-ai-studio', 'gemini-2.5-flash')!

  it.each<[string, Usage, Price, number]>([
    // 1000 × 0.15 + 500 × 0.60 = 450 µ$
    [
      'gpt-4o-mini, no cache',
      { inputTokens: 1000, outputTokens: 500, inputIncludesCache: true },
      gpt4oMini,
      0.00045,
    ],
    // (2000 − 1024) × 0.15 + 1024 × 0.075 + 100 × 0.60 = 146.4 + 76.8 + 60 = 283.2 µ$
    [
      'gpt-4o-mini, cached tokens inside the prompt count',
      { inputTokens: 2000, outputTokens: 100, cacheReadTokens: 1024, inputIncludesCache: true },
      gpt4oMini,
      0.0002832,
    ],
    // 100 × 3 + 5000 × 0.30 + 2000 × 3.75 + 300 × 15 = 300 + 1500 + 7500 + 4500 = 13800 µ$
    [
      'claude sonnet, cache reported beside the input',
      {
        inputTokens: 100,
        outputTokens: 300,
        cacheReadTokens: 5000,
        cacheWriteTokens: 2000,
        inputIncludesCache: false,
      },
      sonnet,
      0.0138,
    ],
    // (10000 − 8000) × 0.30 + 8000 × 0.03 + 1500 × 2.50 = 600 + 240 + 3750 = 4590 µ$
    [
      'gemini flash, cached content inside the prompt count',
      { inputTokens: 10_000, outputTokens: 1500, cacheReadTokens: 8000, inputIncludesCache: true },
      flash,
      0.00459,
    ],
    // No cache rates: cache tokens at the input rate, 300 × 2 + 50 × 4 = 800 µ$
    [
      'cache rates defaulting to the input rate',
      {
        inputTokens: 100,
        outputTokens: 50,
        cacheReadTokens: 150,
        cacheWriteTokens: 50,
        inputIncludesCache: false,
      },
      { input: 2, output: 4 },
      0.0008,
    ],
    // More cache than input (a provider quirk) never makes the uncached part negative: 500 × 1 = 500 µ$
    [
      'cache counts larger than the input count',
      { inputTokens: 100, outputTokens: 0, cacheReadTokens: 500, inputIncludesCache: true },
      { input: 2, output: 4, cacheRead: 1 },
      0.0005,
    ],
    [
      'counts that are not numbers',
      {
        inputTokens: Number.NaN,
        outputTokens: -5,
        cacheReadTokens: Number.POSITIVE_INFINITY,
        inputIncludesCache: true,
      },
      gpt4oMini,
      0,
    ],
  ])('%s', (_, usage, price, expected) => {
    expect(computeCost(usage, price)).toBe(expected)
  })

  it.each<[string, Usage, Price, number]>([
    // 22 × 0.15 / 1e6 in floats is 0.0000032999999999999997.
    [
      '22 prompt tokens at $0.15/M',
      { inputTokens: 22, outputTokens: 0, inputIncludesCache: true },
      gpt4oMini,
      0.0000033,
    ],
    // Floats: 0.0005252999999999999.
    [
      '1234 in at $0.15/M, 567 out at $0.60/M',
      { inputTokens: 1234, outputTokens: 567, inputIncludesCache: true },
      gpt4oMini,
      0.0005253,
    ],
    // Floats: 0.00007259999999999999.
    [
      '7 in at $3.30/M, 3 out at $16.50/M',
      { inputTokens: 7, outputTokens: 3, inputIncludesCache: true },
      { input: 3.3, output: 16.5 },
      0.0000726,
    ],
    // Floats: 0.00006930000000000002.
    [
      '11 in at $1.10/M, 13 out at $4.40/M',
      { inputTokens: 11, outputTokens: 13, inputIncludesCache: true },
      { input: 1.1, output: 4.4 },
      0.0000693,
    ],
    // Floats: 0.0000016499999999999999.
    [
      '22 cached tokens at $0.075/M',
      { inputTokens: 22, outputTokens: 0, cacheReadTokens: 22, inputIncludesCache: true },
      gpt4oMini,
      0.00000165,
    ],
  ])('is the exact decimal for %s', (_, usage, price, expected) => {
    const cost = computeCost(usage, price)
    expect(cost).toBe(expected)
    expect(String(cost)).toBe(String(expected))
  })

  it('is exact for every built-in price and token counts up to 3000', () => {
    // The oracle: integer nano-dollars, divided once by 1e9 (IEEE division is correctly rounded). Every
    // built-in rate is a whole number of milli-dollars per million tokens.
    const mismatches: string[] = []
    for (const [provider, models] of Object.entries(PRICING)) {
      for (const [model, price] of Object.entries(models)) {
        const milli = (rate: number) => Math.round(rate * 1000)
        expect(milli(price.input) / 1000).toBe(price.input)
        for (let tokens = 0; tokens <= 3000; tokens += 7) {
          const usage = { inputTokens: tokens, outputTokens: 3000 - tokens, inputIncludesCache: true }
          const nanoDollars = tokens * milli(price.input) + (3000 - tokens) * milli(price.output)
          const cost = computeCost(usage, price)
          if (cost !== nanoDollars / 1e9) mismatches.push(`${provider}/${model} ${tokens}: ${cost}`)
        }
      }
    }
    expect(mismatches).toEqual([])
  })

  it('rounds once, to 10 decimal places, halves away from zero', () => {
    // 1 token at $0.00005/M is $5e-11: half of the last place, so it rounds up to $1e-10.
    expect(
      computeCost(
        { inputTokens: 1, outputTokens: 0, inputIncludesCache: true },
        { input: 0.00005, output: 0 },
      ),
    ).toBe(1e-10)
    expect(
      computeCost(
        { inputTokens: 1, outputTokens: 0, inputIncludesCache: true },
        { input: 0.00004, output: 0 },
      ),
    ).toBe(0)
    // Rounded after summing, not per part: 2 × 5e-11 is 1e-10, not 2e-10.
    expect(
      computeCost(
        { inputTokens: 1, outputTokens: 1, inputIncludesCache: true },
        { input: 0.00005, output: 0.00005 },
      ),
    ).toBe(1e-10)
  })

  it('counts every prompt token once in totalInputTokens', () => {
    expect(
      totalInputTokens({
        inputTokens: 10,
        outputTokens: 1,
        cacheReadTokens: 90,
        cacheWriteTokens: 5,
        inputIncludesCache: false,
      }),
    ).toBe(105)
    expect(
      totalInputTokens({ inputTokens: 100, outputTokens: 1, cacheReadTokens: 90, inputIncludesCache: true }),
    ).toBe(100)
  })
})

describe('parseCustomCost()', () => {
  it('converts USD per token to USD per million tokens', () => {
    expect(parseCustomCost('{"per_token_in":0.0000025,"per_token_out":0.00001}')).toEqual({
      input: 2.5,
      output: 10,
    })
    expect(
      parseCustomCost(
        '{"per_token_in":0.000003,"per_token_out":0.000015,"per_cache_read_token":3e-7,"per_cache_write_token":0.00000375}',
      ),
    ).toEqual({ input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 })
    expect(parseCustomCost('{"per_token_in":0,"per_token_out":0}')).toEqual({ input: 0, output: 0 })
  })

  it('prices cache tokens at per_token_in when no cache rate is given', () => {
    const price = parseCustomCost('{"per_token_in":0.000001,"per_token_out":0.000002}')
    const usage = { inputTokens: 100, outputTokens: 10, cacheReadTokens: 400, inputIncludesCache: false }
    // (100 + 400) × 1 + 10 × 2 = 520 µ$
    expect(computeCost(usage, price)).toBe(0.00052)
    // Inside the prompt count, the same 500 prompt tokens cost the same: no double counting.
    expect(computeCost({ ...usage, inputTokens: 500, inputIncludesCache: true }, price)).toBe(0.00052)
  })

  it('prices with the per-token rates as written, exactly', () => {
    // In floats 1.65e-8 × 1e6 is 0.016499999999999997 and 3.3e-6 × 1e6 is 3.3000000000000003.
    const price = parseCustomCost(
      '{"per_token_in":3.3e-6,"per_token_out":1.65e-8,"per_cache_read_token":7.5e-10}',
    )
    expect(price).toEqual({ input: 3.3, output: 0.0165, cacheRead: 0.00075 })
    const usage = { inputTokens: 1000, outputTokens: 22, cacheReadTokens: 8, inputIncludesCache: true }
    // 992 × 3.3e-6 + 8 × 7.5e-10 + 22 × 1.65e-8 = 0.0032736 + 0.000000006 + 0.000000363
    expect(computeCost(usage, price)).toBe(0.003273969)
    // Rates finer than 10 places count exactly until the one rounding: 3 × 1.5e-11 = 4.5e-11 → 0,
    // 7 × 1.5e-11 = 1.05e-10 → 1e-10.
    const fine = parseCustomCost('{"per_token_in":1.5e-11,"per_token_out":0}')
    expect(computeCost({ inputTokens: 3, outputTokens: 0, inputIncludesCache: true }, fine)).toBe(0)
    expect(computeCost({ inputTokens: 7, outputTokens: 0, inputIncludesCache: true }, fine)).toBe(1e-10)
  })

  it.each([
    ['not JSON', 'per_token_in=1', /must be JSON/],
    ['an array', '[1,2]', /must be a JSON object/],
    ['a missing per_token_in', '{"per_token_out":0.1}', /per_token_in is required/],
    ['a missing per_token_out', '{"per_token_in":0.1}', /per_token_out is required/],
    [
      'a negative rate',
      '{"per_token_in":-0.1,"per_token_out":0.1}',
      /per_token_in must be a number from 0 to 1000/,
    ],
    ['a string rate', '{"per_token_in":0.1,"per_token_out":"0.2"}', /per_token_out must be a number/],
    [
      'a null cache rate',
      '{"per_token_in":0.1,"per_token_out":0.2,"per_cache_read_token":null}',
      /per_cache_read_token/,
    ],
    ['an overflowing rate', '{"per_token_in":1e999,"per_token_out":0.2}', /per_token_in must be a number/],
    [
      // Finite, but its per-million price and any cost it made would not be.
      'a rate past a thousand dollars a token',
      '{"per_token_in":1e308,"per_token_out":1e308}',
      /per_token_in must be a number from 0 to 1000 \(USD per token\), got 1e\+308/,
    ],
    [
      'a misspelt field',
      '{"per_token_in":0.1,"per_token_out":0.2,"per_cache_read_tokens":0.01}',
      /unknown field per_cache_read_tokens/,
    ],
    [
      'an oversized value',
      `{"per_token_in":0.1,"per_token_out":0.2,"x":"${'a'.repeat(2000)}"}`,
      /longer than/,
    ],
  ])('refuses %s', (_, header, message) => {
    expect(() => parseCustomCost(header)).toThrow(message)
  })
})

describe('extractUsage()', () => {
  it.each<[string, Parameters<typeof extractUsage>[0], unknown, Usage | undefined]>([
    [
      'OpenAI chat completion',
      'openai',
      {
        usage: {
          prompt_tokens: 120,
          completion_tokens: 30,
          total_tokens: 150,
          prompt_tokens_details: { cached_tokens: 64 },
        },
      },
      { inputTokens: 120, outputTokens: 30, cacheReadTokens: 64, inputIncludesCache: true },
    ],
    [
      'OpenAI Responses API',
      'openai',
      {
        object: 'response',
        usage: { input_tokens: 80, output_tokens: 12, input_tokens_details: { cached_tokens: 0 } },
      },
      { inputTokens: 80, outputTokens: 12, cacheReadTokens: 0, inputIncludesCache: true },
    ],
    [
      'OpenAI embeddings',
      'openai',
      { data: [], usage: { prompt_tokens: 9, total_tokens: 9 } },
      { inputTokens: 9, outputTokens: 0, inputIncludesCache: true },
    ],
    [
      'DeepSeek cache hits',
      'openai',
      {
        usage: {
          prompt_tokens: 100,
          completion_tokens: 5,
          prompt_cache_hit_tokens: 60,
          prompt_cache_miss_tokens: 40,
        },
      },
      { inputTokens: 100, outputTokens: 5, cacheReadTokens: 60, inputIncludesCache: true },
    ],
    ['OpenAI without usage', 'openai', { choices: [] }, undefined],
    ['OpenAI with usage null', 'openai', { usage: null }, undefined],
    [
      // The first of usage, response.usage and x_groq.usage that is an object counts.
      'Groq usage after a usage that is no object',
      'openai',
      { usage: null, response: { usage: 5 }, x_groq: { usage: { prompt_tokens: 3, completion_tokens: 4 } } },
      { inputTokens: 3, outputTokens: 4, inputIncludesCache: true },
    ],
    [
      'Anthropic message',
      'anthropic',
      {
        usage: {
          input_tokens: 20,
          output_tokens: 40,
          cache_read_input_tokens: 1000,
          cache_creation_input_tokens: 200,
        },
      },
      {
        inputTokens: 20,
        outputTokens: 40,
        cacheReadTokens: 1000,
        cacheWriteTokens: 200,
        inputIncludesCache: false,
      },
    ],
    [
      'Anthropic message with null cache counts',
      'anthropic',
      { usage: { input_tokens: 20, output_tokens: 40, cache_read_input_tokens: null } },
      { inputTokens: 20, outputTokens: 40, inputIncludesCache: false },
    ],
    ['Anthropic without usage', 'anthropic', { type: 'message' }, undefined],
    [
      'Gemini response with thoughts and cached content',
      'gemini',
      {
        usageMetadata: {
          promptTokenCount: 500,
          candidatesTokenCount: 50,
          thoughtsTokenCount: 200,
          cachedContentTokenCount: 300,
          totalTokenCount: 750,
        },
      },
      { inputTokens: 500, outputTokens: 250, cacheReadTokens: 300, inputIncludesCache: true },
    ],
    [
      'Gemini array of streamed responses',
      'gemini',
      [
        { usageMetadata: { promptTokenCount: 5 } },
        { usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 9 } },
        {},
      ],
      { inputTokens: 5, outputTokens: 9, inputIncludesCache: true },
    ],
    ['Gemini without usage', 'gemini', { candidates: [] }, undefined],
    ['a string body', 'gemini', 'oops', undefined],
    ['null', 'openai', null, undefined],
    [
      'a Workers AI answer, read as OpenAI',
      'workers-ai',
      { usage: { prompt_tokens: 3, completion_tokens: 4 } },
      { inputTokens: 3, outputTokens: 4, inputIncludesCache: true },
    ],
  ])('%s', (_, dialect, body, expected) => {
    expect(extractUsage(dialect, body)).toEqual(expected)
  })

  it("still takes 'google', the older name of the gemini dialect", () => {
    const body = { usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 9 } }
    expect(extractUsage('google', body)).toEqual(extractUsage('gemini', body))
    expect(extractStreamUsage('google', `data: ${JSON.stringify(body)}\n\n`)).toEqual({
      inputTokens: 5,
      outputTokens: 9,
      inputIncludesCache: true,
    })
  })

  it('answers no usage for a count, or a sum of counts, no answer could have', () => {
    // Past a safe integer, and each safe but summed past a trillion (input and cache read; candidates and thoughts).
    expect(
      extractUsage(
        'openai',
        JSON.parse('{"usage":{"prompt_tokens":10000000000000000000,"completion_tokens":2}}'),
      ),
    ).toBeUndefined()
    expect(
      extractUsage('anthropic', {
        usage: { input_tokens: 5e15, cache_read_input_tokens: 5e15, output_tokens: 1 },
      }),
    ).toBeUndefined()
    expect(
      extractUsage('gemini', {
        usageMetadata: { promptTokenCount: 1, candidatesTokenCount: 1e308, thoughtsTokenCount: 1e308 },
      }),
    ).toBeUndefined()
    expect(
      extractStreamUsage(
        'openai',
        sse([[undefined, { usage: { prompt_tokens: 1, completion_tokens: 2e12 } }]]),
      ),
    ).toBeUndefined()
    // A trillion is the most one count may be.
    expect(
      extractUsage('openai', { usage: { prompt_tokens: 1e12, completion_tokens: 0 } })?.inputTokens,
    ).toBe(1e12)
  })
})

describe('extractStreamUsage()', () => {
  it('reads the OpenAI chunk that carries usage', () => {
    const body = sse([
      [undefined, { choices: [{ delta: { content: 'Hi' } }], usage: null }],
      [undefined, { choices: [{ delta: {}, finish_reason: 'stop' }], usage: null }],
      [
        undefined,
        {
          choices: [],
          usage: { prompt_tokens: 11, completion_tokens: 7, prompt_tokens_details: { cached_tokens: 0 } },
        },
      ],
      [undefined, '[DONE]'],
    ])
    expect(extractStreamUsage('openai', body)).toEqual({
      inputTokens: 11,
      outputTokens: 7,
      cacheReadTokens: 0,
      inputIncludesCache: true,
    })
  })

  it("reads Groq's x_groq usage and the Responses API's response.completed", () => {
    const groq = sse([
      [undefined, { choices: [], x_groq: { usage: { prompt_tokens: 3, completion_tokens: 4 } } }],
    ])
    expect(extractStreamUsage('openai', groq)).toEqual({
      inputTokens: 3,
      outputTokens: 4,
      inputIncludesCache: true,
    })
    const responses = sse([
      ['response.created', { type: 'response.created', response: { usage: null } }],
      ['response.output_text.delta', { type: 'response.output_text.delta', delta: 'Hi' }],
      [
        'response.completed',
        { type: 'response.completed', response: { usage: { input_tokens: 8, output_tokens: 2 } } },
      ],
    ])
    expect(extractStreamUsage('openai', responses)).toEqual({
      inputTokens: 8,
      outputTokens: 2,
      inputIncludesCache: true,
    })
  })

  it("combines Anthropic's message_start and last message_delta usage", () => {
    const body = sse([
      [
        'message_start',
        {
          type: 'message_start',
          message: {
            usage: {
              input_tokens: 25,
              output_tokens: 1,
              cache_read_input_tokens: 2048,
              cache_creation_input_tokens: 0,
            },
          },
        },
      ],
      ['content_block_delta', { type: 'content_block_delta', delta: { type: 'text_delta', text: 'Hi' } }],
      [
        'message_delta',
        { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 15 } },
      ],
      [
        'message_delta',
        { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 42 } },
      ],
      ['message_stop', { type: 'message_stop' }],
    ])
    expect(extractStreamUsage('anthropic', body)).toEqual({
      inputTokens: 25,
      outputTokens: 42,
      cacheReadTokens: 2048,
      cacheWriteTokens: 0,
      inputIncludesCache: false,
    })
  })

  it("reads Gemini's last usageMetadata", () => {
    const body = sse([
      [
        undefined,
        {
          candidates: [{ content: { parts: [{ text: 'a' }] } }],
          usageMetadata: { promptTokenCount: 9, candidatesTokenCount: 1 },
        },
      ],
      [
        undefined,
        {
          candidates: [{ finishReason: 'STOP' }],
          usageMetadata: { promptTokenCount: 9, candidatesTokenCount: 6, thoughtsTokenCount: 4 },
        },
      ],
    ])
    expect(extractStreamUsage('gemini', body)).toEqual({
      inputTokens: 9,
      outputTokens: 10,
      inputIncludesCache: true,
    })
  })

  it('answers undefined for streams without usage or with broken events', () => {
    expect(
      extractStreamUsage(
        'openai',
        sse([
          [undefined, { choices: [] }],
          [undefined, '[DONE]'],
        ]),
      ),
    ).toBeUndefined()
    expect(extractStreamUsage('anthropic', sse([['ping', { type: 'ping' }]]))).toBeUndefined()
    expect(extractStreamUsage('gemini', 'data: {not json\n\n')).toBeUndefined()
    expect(extractStreamUsage('openai', '')).toBeUndefined()
  })

  it('reads CRLF-separated events and a last event without its blank line', () => {
    const body =
      'data: {"usage":{"prompt_tokens":1,"completion_tokens":2}}\r\n\r\ndata: {"usage":{"prompt_tokens":1,"completion_tokens":3}}'
    expect(extractStreamUsage('openai', body)).toEqual({
      inputTokens: 1,
      outputTokens: 3,
      inputIncludesCache: true,
    })
  })
})

describe('computeCost against exact decimal arithmetic', () => {
  /** The cost the slow way: every rate and count as an exact decimal, rounded once. */
  function exactCost(usage: Usage, price: Price): number {
    const rate = (usdPerMillion: number | undefined) => shift(decimalOf(usdPerMillion ?? price.input), -6)
    const input = usage.inputTokens
    const read = usage.cacheReadTokens ?? 0
    const write = usage.cacheWriteTokens ?? 0
    const uncached = usage.inputIncludesCache ? Math.max(0, input - read - write) : input
    return toDollars(
      [
        multiply(decimalOf(uncached), rate(price.input)),
        multiply(decimalOf(read), rate(price.cacheRead)),
        multiply(decimalOf(write), rate(price.cacheWrite)),
        multiply(decimalOf(usage.outputTokens), rate(price.output)),
      ].reduce(add),
    )
  }

  it('gives the same double for table-like prices, fine prices and counts past the safe range', () => {
    // A seeded generator: the same cases every run.
    let seed = 7
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed % n
    }
    const prices = [0.15, 0.6, 2.5, 10, 0.075, 1.25, 3, 15, 0.0375, 0.1234567, 1e-7, 7.77777777, 123456.789]
    const counts = [0, 1, 22, 999, 1_000_000, 123_456_789, 2 ** 40, 2 ** 53 - 1]
    for (let round = 0; round < 2000; round++) {
      const price = Object.freeze({
        input: prices[next(prices.length)]!,
        output: prices[next(prices.length)]!,
        ...(next(2) ? { cacheRead: prices[next(prices.length)]! } : {}),
        ...(next(2) ? { cacheWrite: prices[next(prices.length)]! } : {}),
      })
      const usage: Usage = {
        inputTokens: counts[next(counts.length)]!,
        outputTokens: counts[next(counts.length)]!,
        cacheReadTokens: counts[next(4)]!,
        cacheWriteTokens: counts[next(4)]!,
        inputIncludesCache: next(2) === 1,
      }
      expect(computeCost(usage, price)).toBe(exactCost(usage, price))
    }
  })
})
