import { isRecord } from '../json.js'
import { dialectOf } from '../providers/dialects/index.js'
import type { UsageReader } from '../providers/dialects/types.js'
import type { Dialect } from '../providers/types.js'
import {
  add,
  atScale,
  COST_DECIMALS,
  type Decimal,
  decimalOf,
  isNegative,
  multiply,
  shift,
  subtract,
  toDollars,
  toNumber,
  ZERO,
} from './money.js'
import type { Price } from './pricing.js'

/**
 * Token counts of one response. Providers disagree on whether cached prompt tokens are part of the input
 * count: OpenAI and Gemini include them, Anthropic reports them beside it; `inputIncludesCache` says which.
 *
 * @example
 * const usage: Usage = { inputTokens: 1200, outputTokens: 80, cacheReadTokens: 1024, inputIncludesCache: true }
 */
export interface Usage {
  inputTokens: number
  /** Includes reasoning / thinking tokens, which every listed provider bills as output. */
  outputTokens: number
  cacheReadTokens?: number
  cacheWriteTokens?: number
  inputIncludesCache: boolean
}

/**
 * The dialect whose format usage is read in: a provider's {@link Dialect}. `'google'`, the name this
 * took before dialects had one naming scheme, is still accepted for `'gemini'`.
 */
export type UsageDialect = Dialect | 'google'

const MAX_CUSTOM_COST_LENGTH = 1024
const CUSTOM_COST_FIELDS = {
  per_token_in: 'input',
  per_token_out: 'output',
  per_cache_read_token: 'cacheRead',
  per_cache_write_token: 'cacheWrite',
} as const

/** A price's rates as exact decimals of USD per token. */
interface DecimalRates {
  input: Decimal
  output: Decimal
  cacheRead: Decimal
  cacheWrite: Decimal
}

interface ExactRates extends DecimalRates {
  /** The same rates as whole numbers of 10^-scale USD, where they fit: see `computeCost`. */
  units: UnitRates | undefined
}

interface UnitRates {
  scale: number
  input: number
  output: number
  cacheRead: number
  cacheWrite: number
}

const POWERS_OF_TEN = Array.from({ length: COST_DECIMALS + 1 }, (_, power) => 10 ** power)

/**
 * Rates as integers at one scale of at most `COST_DECIMALS` places (every price of the tables is), so that a
 * cost is integer arithmetic and one division; `undefined` for finer rates.
 */
function unitRatesOf(rates: DecimalRates): UnitRates | undefined {
  const all = [rates.input, rates.output, rates.cacheRead, rates.cacheWrite]
  const scale = Math.max(...all.map((rate) => rate.scale))
  if (scale > COST_DECIMALS) return undefined
  const [input, output, cacheRead, cacheWrite] = all.map((rate) => Number(atScale(rate, scale)))
  if (![input, output, cacheRead, cacheWrite].every((rate) => Number.isSafeInteger(rate))) return undefined
  return { scale, input: input!, output: output!, cacheRead: cacheRead!, cacheWrite: cacheWrite! }
}

/**
 * `rates`, given their integer form as well. A price a host did not freeze has its rates worked out for every
 * cost: no spread (`{ ...rates, units }` is a slow path on Node 20).
 */
function withUnits(rates: DecimalRates): ExactRates {
  return Object.assign(rates, { units: unitRatesOf(rates) })
}

// Frozen prices (the tables', parsed custom costs) cannot change, so their exact rates are worked out once.
const exactRatesOf = new WeakMap<Price, ExactRates>()

function ratesOf(price: Price): ExactRates {
  const known = exactRatesOf.get(price)
  if (known !== undefined) return known
  const input = perToken(price.input)
  const rates = withUnits({
    input,
    output: perToken(price.output),
    cacheRead: price.cacheRead === undefined ? input : perToken(price.cacheRead),
    cacheWrite: price.cacheWrite === undefined ? input : perToken(price.cacheWrite),
  })
  if (Object.isFrozen(price)) exactRatesOf.set(price, rates)
  return rates
}

/** A rate in USD per million tokens as the exact decimal it prints as, per token. */
function perToken(usdPerMillion: number): Decimal {
  return shift(decimalOf(usdPerMillion), -6)
}

/**
 * The cost of a response in USD, computed exactly from the decimal prices and rounded once to
 * `COST_DECIMALS` places (1e-10 USD), so it reads as the decimal it is. Cache tokens are priced at
 * their own rates (the input rate when the price has none) and are taken out of the input count first
 * when the provider included them, so no token is charged twice. Counts that are not finite and
 * non-negative count as 0.
 *
 * @example
 * computeCost({ inputTokens: 1000, outputTokens: 500, inputIncludesCache: true }, findPrice('openai', 'gpt-4o-mini')!)
 * // 0.00045 (1000 × $0.15/M + 500 × $0.60/M)
 * computeCost({ inputTokens: 22, outputTokens: 0, inputIncludesCache: true }, findPrice('openai', 'gpt-4o-mini')!)
 * // 0.0000033, not 0.0000032999999999999997
 */
export function computeCost(usage: Usage, price: Price): number {
  const rates = ratesOf(price)
  const { units } = rates
  if (units !== undefined) {
    // Whole numbers of 10^-scale USD: exact while the sum is a safe integer (every term is non-negative, so
    // an inexact term makes the sum unsafe too), and one division of two exact numbers is the double
    // nearest the decimal, as `toDollars` gives it.
    const input = count(usage.inputTokens)
    const cacheRead = count(usage.cacheReadTokens)
    const cacheWrite = count(usage.cacheWriteTokens)
    const uncached = usage.inputIncludesCache ? Math.max(0, input - cacheRead - cacheWrite) : input
    const sum =
      uncached * units.input +
      cacheRead * units.cacheRead +
      cacheWrite * units.cacheWrite +
      count(usage.outputTokens) * units.output
    if (Number.isSafeInteger(sum)) return sum / POWERS_OF_TEN[units.scale]!
  }
  const input = decimalOf(count(usage.inputTokens))
  const cacheRead = decimalOf(count(usage.cacheReadTokens))
  const cacheWrite = decimalOf(count(usage.cacheWriteTokens))
  let uncached = input
  if (usage.inputIncludesCache) {
    uncached = subtract(subtract(input, cacheRead), cacheWrite)
    if (isNegative(uncached)) uncached = ZERO
  }
  const dollars = [
    multiply(uncached, rates.input),
    multiply(cacheRead, rates.cacheRead),
    multiply(cacheWrite, rates.cacheWrite),
    multiply(decimalOf(count(usage.outputTokens)), rates.output),
  ].reduce(add)
  return toDollars(dollars)
}

/**
 * Every prompt token of a response, cached or not: what logs call tokens in.
 *
 * @example
 * totalInputTokens({ inputTokens: 10, outputTokens: 5, cacheReadTokens: 90, inputIncludesCache: false }) // 100
 */
export function totalInputTokens(usage: Usage): number {
  const input = count(usage.inputTokens)
  if (usage.inputIncludesCache) return input
  return input + count(usage.cacheReadTokens) + count(usage.cacheWriteTokens)
}

function count(value: number | undefined): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0
}

/**
 * Reads a `cf-aig-custom-cost` header: JSON with USD per token, `per_token_in` and `per_token_out` required,
 * `per_cache_read_token` and `per_cache_write_token` optional. Answers a {@link Price} in USD per million
 * tokens like every other price; a missing cache rate is then charged at `per_token_in` by
 * {@link computeCost}. Throws an Error naming the bad field; unknown fields are refused, so a misspelt cache
 * rate cannot silently fall back to the input rate.
 *
 * @example
 * parseCustomCost('{"per_token_in":0.000001,"per_token_out":0.000002}') // { input: 1, output: 2 }
 * parseCustomCost('{"per_token_in":3.3e-9,"per_token_out":1.1e-8}') // { input: 0.0033, output: 0.011 }
 */
export function parseCustomCost(headerValue: string): Price {
  if (headerValue.length > MAX_CUSTOM_COST_LENGTH) {
    throw new Error(`cf-aig-custom-cost is longer than ${MAX_CUSTOM_COST_LENGTH} characters`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(headerValue)
  } catch {
    throw new Error(
      'cf-aig-custom-cost must be JSON, e.g. {"per_token_in":0.000001,"per_token_out":0.000002}',
    )
  }
  if (!isRecord(parsed)) throw new Error('cf-aig-custom-cost must be a JSON object')
  const unknown = Object.keys(parsed).filter((field) => !Object.hasOwn(CUSTOM_COST_FIELDS, field))
  if (unknown.length > 0) {
    throw new Error(
      `cf-aig-custom-cost has unknown field ${unknown.join(', ')}; expected ${Object.keys(CUSTOM_COST_FIELDS).join(', ')}`,
    )
  }
  const input = rateOf(parsed, 'per_token_in')
  const rates: DecimalRates = {
    input,
    output: rateOf(parsed, 'per_token_out'),
    cacheRead: parsed.per_cache_read_token === undefined ? input : rateOf(parsed, 'per_cache_read_token'),
    cacheWrite: parsed.per_cache_write_token === undefined ? input : rateOf(parsed, 'per_cache_write_token'),
  }
  const price: { -readonly [K in keyof Price]: Price[K] } = {
    input: perMillion(rates.input),
    output: perMillion(rates.output),
  }
  if (parsed.per_cache_read_token !== undefined) price.cacheRead = perMillion(rates.cacheRead)
  if (parsed.per_cache_write_token !== undefined) price.cacheWrite = perMillion(rates.cacheWrite)
  // The rates as written are kept: the per-million number is for display, the cost uses these.
  Object.freeze(price)
  exactRatesOf.set(price, withUnits(rates))
  return price
}

const MAX_CUSTOM_RATE = 1000

function rateOf(fields: Record<string, unknown>, name: keyof typeof CUSTOM_COST_FIELDS): Decimal {
  const value = fields[name]
  if (value === undefined) throw new Error(`cf-aig-custom-cost.${name} is required`)
  // Bounded so that every cost it makes stays a finite number (a record's cost, a budget's micro-dollars):
  // a thousand dollars a token is beyond any price.
  if (typeof value !== 'number' || !(value >= 0 && value <= MAX_CUSTOM_RATE)) {
    throw new Error(
      `cf-aig-custom-cost.${name} must be a number from 0 to ${MAX_CUSTOM_RATE} (USD per token), got ${JSON.stringify(value)}`,
    )
  }
  return decimalOf(value)
}

function perMillion(perTokenRate: Decimal): number {
  return toNumber(shift(perTokenRate, 6))
}

/**
 * Token usage from a provider's JSON response, or undefined when it reports none; read as the dialect's
 * `usage.fromJson` does (see `dialectOf`).
 * - `openai` (and every dialect without its own format): `usage.prompt_tokens` / `completion_tokens` /
 *   `prompt_tokens_details.cached_tokens`, the Responses API's `input_tokens` / `output_tokens` /
 *   `input_tokens_details.cached_tokens`, DeepSeek's `prompt_cache_hit_tokens` and Groq's `x_groq.usage`.
 * - `anthropic`: `usage.input_tokens` / `output_tokens` / `cache_read_input_tokens` /
 *   `cache_creation_input_tokens`.
 * - `gemini`: `usageMetadata.promptTokenCount` / `candidatesTokenCount` + `thoughtsTokenCount` /
 *   `cachedContentTokenCount`; for a streamed array of responses, the last one that has it.
 *
 * @example
 * extractUsage('anthropic', { usage: { input_tokens: 12, output_tokens: 3 } })
 * // { inputTokens: 12, outputTokens: 3, inputIncludesCache: false }
 */
export function extractUsage(dialect: UsageDialect, body: unknown): Usage | undefined {
  return usageReader(dialect).fromJson(body)
}

/**
 * Token usage from a complete server-sent-events body, or undefined when it reports none; read as the
 * dialect's `usage.fromStream` does.
 * - `openai`: the last chunk carrying usage (sent when `stream_options.include_usage` is set), or the
 *   Responses API's `response.completed` event.
 * - `anthropic`: `message_start`'s usage, updated by the last `message_delta`'s.
 * - `gemini`: the last chunk's `usageMetadata` (Gemini repeats running totals).
 *
 * @example
 * extractStreamUsage('openai', 'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}\n\ndata: [DONE]\n\n')
 * // { inputTokens: 5, outputTokens: 2, inputIncludesCache: true }
 */
export function extractStreamUsage(dialect: UsageDialect, sseText: string): Usage | undefined {
  return usageReader(dialect).fromStream(sseText)
}

function usageReader(dialect: UsageDialect): UsageReader {
  return dialectOf(dialect === 'google' ? 'gemini' : dialect).usage
}
