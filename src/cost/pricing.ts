import { z } from 'zod'

/**
 * A model's list price in USD per million tokens. Cache rates, when absent, are charged at `input`.
 *
 * @example
 * const price: Price = { input: 2.5, output: 10, cacheRead: 1.25 }
 */
export interface Price {
  readonly input: number
  readonly output: number
  /** Tokens read from a prompt cache. */
  readonly cacheRead?: number
  /** Tokens written to a prompt cache (Anthropic's 5-minute cache writes). */
  readonly cacheWrite?: number
}

/** Prices by provider slug, then by model id (lower case). */
export type PriceOverrides = Readonly<Record<string, Readonly<Record<string, Price>>>>

/** Month the built-in prices were last checked against the providers' published list prices. */
export const PRICES_AS_OF = '2025-11'

function p(input: number, output: number, cacheRead?: number, cacheWrite?: number): Price {
  return Object.freeze({
    input,
    output,
    ...(cacheRead === undefined ? {} : { cacheRead }),
    ...(cacheWrite === undefined ? {} : { cacheWrite }),
  })
}

// Anthropic prices cache reads at 0.1x and 5-minute cache writes at 1.25x the input rate.
const OPUS_4 = p(15, 75, 1.5, 18.75)
const SONNET = p(3, 15, 0.3, 3.75)
const GPT_5 = p(1.25, 10, 0.125)
const GROK_4_FAST = p(0.2, 0.5, 0.05)

/**
 * Built-in list prices (standard tier, no batch discount), keyed by the gateway's provider slugs. Where a
 * provider charges more beyond a context size (Gemini 2.5 Pro and 3 Pro above 200k prompt tokens, Claude
 * Sonnet 4.x above 200k), the lower tier is listed. Hosts with negotiated or newer prices pass overrides to
 * {@link createPriceTable}.
 */
export const PRICING: PriceOverrides = Object.freeze({
  openai: Object.freeze({
    'gpt-5': GPT_5,
    'gpt-5.1': GPT_5,
    'gpt-5-chat-latest': GPT_5,
    'gpt-5-mini': p(0.25, 2, 0.025),
    'gpt-5-nano': p(0.05, 0.4, 0.005),
    'gpt-5-pro': p(15, 120),
    'gpt-4.1': p(2, 8, 0.5),
    'gpt-4.1-mini': p(0.4, 1.6, 0.1),
    'gpt-4.1-nano': p(0.1, 0.4, 0.025),
    'gpt-4o': p(2.5, 10, 1.25),
    // The first gpt-4o snapshot kept its launch price, so it must not fall back to the family's.
    'gpt-4o-2024-05-13': p(5, 15),
    'chatgpt-4o-latest': p(5, 15),
    'gpt-4o-mini': p(0.15, 0.6, 0.075),
    o1: p(15, 60, 7.5),
    'o1-pro': p(150, 600),
    'o1-mini': p(1.1, 4.4, 0.55),
    o3: p(2, 8, 0.5),
    'o3-pro': p(20, 80),
    'o3-mini': p(1.1, 4.4, 0.55),
    'o4-mini': p(1.1, 4.4, 0.275),
    'gpt-4-turbo': p(10, 30),
    'gpt-4': p(30, 60),
    'gpt-3.5-turbo': p(0.5, 1.5),
    'text-embedding-3-small': p(0.02, 0),
    'text-embedding-3-large': p(0.13, 0),
    'text-embedding-ada-002': p(0.1, 0),
  }),
  anthropic: Object.freeze({
    'claude-opus-4-5': p(5, 25, 0.5, 6.25),
    'claude-opus-4-1': OPUS_4,
    'claude-opus-4': OPUS_4,
    'claude-opus-4-0': OPUS_4,
    'claude-sonnet-4-5': SONNET,
    'claude-sonnet-4': SONNET,
    'claude-sonnet-4-0': SONNET,
    'claude-3-7-sonnet': SONNET,
    'claude-3-5-sonnet': SONNET,
    'claude-haiku-4-5': p(1, 5, 0.1, 1.25),
    'claude-3-5-haiku': p(0.8, 4, 0.08, 1),
    'claude-3-opus': OPUS_4,
    'claude-3-haiku': p(0.25, 1.25, 0.03, 0.3),
  }),
  'google-ai-studio': Object.freeze({
    'gemini-3-pro-preview': p(2, 12, 0.2),
    'gemini-2.5-pro': p(1.25, 10, 0.125),
    'gemini-2.5-flash': p(0.3, 2.5, 0.03),
    'gemini-2.5-flash-lite': p(0.1, 0.4, 0.01),
    'gemini-2.0-flash': p(0.1, 0.4, 0.025),
    'gemini-2.0-flash-lite': p(0.075, 0.3),
    'gemini-embedding-001': p(0.15, 0),
  }),
  groq: Object.freeze({
    'llama-3.3-70b-versatile': p(0.59, 0.79),
    'llama-3.1-8b-instant': p(0.05, 0.08),
    'meta-llama/llama-4-scout-17b-16e-instruct': p(0.11, 0.34),
    'meta-llama/llama-4-maverick-17b-128e-instruct': p(0.2, 0.6),
    'moonshotai/kimi-k2-instruct': p(1, 3),
  }),
  mistral: Object.freeze({
    'mistral-large': p(2, 6),
    'mistral-medium': p(0.4, 2),
    'mistral-small': p(0.1, 0.3),
    'magistral-medium': p(2, 5),
    'magistral-small': p(0.5, 1.5),
    codestral: p(0.3, 0.9),
    'pixtral-large': p(2, 6),
    'ministral-8b': p(0.1, 0.1),
    'ministral-3b': p(0.04, 0.04),
    'open-mistral-nemo': p(0.15, 0.15),
    'mistral-embed': p(0.1, 0),
  }),
  deepseek: Object.freeze({
    // One price for both since V3.2; cacheRead is DeepSeek's "cache hit" input rate.
    'deepseek-chat': p(0.28, 0.42, 0.028),
    'deepseek-reasoner': p(0.28, 0.42, 0.028),
  }),
  grok: Object.freeze({
    'grok-4': p(3, 15, 0.75),
    'grok-4-fast-reasoning': GROK_4_FAST,
    'grok-4-fast-non-reasoning': GROK_4_FAST,
    'grok-code-fast-1': p(0.2, 1.5, 0.02),
    'grok-3': p(3, 15, 0.75),
    'grok-3-mini': p(0.3, 0.5, 0.075),
  }),
})

/**
 * Model prices with a host's overrides in front of the built-in table.
 *
 * @example
 * const prices = createPriceTable({ openai: { 'ft:gpt-4o-mini:acme': { input: 0.3, output: 1.2 } } })
 * prices.find('openai', 'gpt-4o-2024-08-06') // { input: 2.5, output: 10, cacheRead: 1.25 }
 */
export interface PriceTable {
  /** The price for a provider's model, or undefined when neither table knows it. */
  find(provider: string, model: string): Price | undefined
}

const rate = z.number().nonnegative()
const priceSchema = z.strictObject({
  input: rate,
  output: rate,
  cacheRead: rate.optional(),
  cacheWrite: rate.optional(),
})
const overridesSchema = z.record(z.string().min(1), z.record(z.string().min(1), priceSchema))

/**
 * What is wrong with a `prices` option, each problem with its path below it: empty when nothing is. The
 * gateway's options report these as a `GatewayOptionsError`, like every other option.
 *
 * @example
 * priceOverrideIssues({ openai: { 'gpt-4o': { input: -1, output: 10 } } })
 * // [{ path: ['openai', 'gpt-4o', 'input'], message: 'Too small: expected number to be >=0' }]
 */
export function priceOverrideIssues(overrides: unknown): { path: PropertyKey[]; message: string }[] {
  const parsed = overridesSchema.safeParse(overrides)
  return parsed.success ? [] : parsed.error.issues.map(({ path, message }) => ({ path, message }))
}

// Snapshot suffixes: OpenAI `-2024-08-06`, Anthropic `-20250929`, Mistral and xAI `-2411` / `-0709`,
// Gemini `-001`, and the `-latest` aliases. Only one is stripped, and only whole: a prefix match would
// price `gpt-4o-mini` as `gpt-4o`.
const SNAPSHOT_SUFFIX = /-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|\d{3}|latest)$/

/**
 * Builds a price table. Overrides are validated here (finite, non-negative USD per million tokens) and
 * win over built-in prices for the same id; model ids are matched case-insensitively.
 *
 * @example
 * const prices = createPriceTable({ mistral: { 'mistral-large': { input: 1.8, output: 5.4 } } })
 * prices.find('mistral', 'mistral-large-2411') // { input: 1.8, output: 5.4 }
 */
export function createPriceTable(overrides: PriceOverrides = {}): PriceTable {
  const parsed = overridesSchema.safeParse(overrides)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new TypeError(`invalid price override at ${issue?.path.join('.') ?? '?'}: ${issue?.message}`)
  }
  const prices = mergePrices(PRICING, parsed.data as PriceOverrides)

  function find(provider: string, model: string): Price | undefined {
    const models = prices.get(provider)
    if (models === undefined) return undefined
    for (const id of candidateIds(provider, model)) {
      const price = models.get(id)
      if (price !== undefined) return price
    }
    return undefined
  }

  return { find }
}

// Maps rather than objects, so ids such as `constructor` or `__proto__` never reach Object.prototype.
function mergePrices(...tables: PriceOverrides[]): Map<string, Map<string, Price>> {
  const merged = new Map<string, Map<string, Price>>()
  for (const table of tables) {
    for (const [provider, models] of Object.entries(table)) {
      const target = merged.get(provider) ?? new Map<string, Price>()
      merged.set(provider, target)
      for (const [model, price] of Object.entries(models)) {
        target.set(model.toLowerCase(), p(price.input, price.output, price.cacheRead, price.cacheWrite))
      }
    }
  }
  return merged
}

/** The exact id first, then the family a dated snapshot belongs to. */
function candidateIds(provider: string, model: string): string[] {
  let id = model.trim().toLowerCase()
  // Gemini names models as resources (`models/gemini-2.5-flash`) in paths and responses.
  if (provider === 'google-ai-studio' && id.startsWith('models/')) id = id.slice('models/'.length)
  const family = id.replace(SNAPSHOT_SUFFIX, '')
  return family === id || family === '' ? [id] : [id, family]
}

const builtIn = createPriceTable()

/**
 * The built-in price of a provider's model, or undefined when it is not listed.
 *
 * @example
 * findPrice('openai', 'gpt-4o-mini-2024-07-18') // { input: 0.15, output: 0.6, cacheRead: 0.075 }
 * findPrice('anthropic', 'claude-sonnet-4-5-20250929') // { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 }
 */
export function findPrice(provider: string, model: string): Price | undefined {
  return builtIn.find(provider, model)
}
