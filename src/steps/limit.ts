import { z } from 'zod'
import { costMicros, MICROS_PER_DOLLAR, priceOf } from '../cost/answer-cost.js'
import { computeCost } from '../cost/cost.js'
import { GatewayError } from '../errors.js'
import { reportStoreError } from '../events.js'
import { isRecord } from '../json.js'
import { type LimitRule, type LimitRuleOptions, limitRules, limitStore, parseWith } from '../options.js'
import { dialectOf } from '../providers/dialects/index.js'
import { callStore } from '../stores/call.js'
import { createMemoryLimitStore } from '../stores/memory-limits.js'
import type { LimitDecision, LimitStore, LimitWindow } from '../stores/types.js'
import type { GatewayContext, Step } from '../types.js'
import { totalTokens } from '../usage.js'

/** After a store failure, its rule uses the fallback this long before asking the store again. */
const STORE_RETRY_MS = 1000
/**
 * Without `insuranceLimit`, each instance's in-process fallback admits this share of the rule's limit:
 * `ceil(limit / 10)`, so up to ten instances failing open together stay within the limit.
 */
export const INSURANCE_SHARE = 10
const OUTPUT_CAP_FIELDS = ['max_tokens', 'max_completion_tokens', 'max_output_tokens'] as const

/** One rule, ready to count: its window, its store, and its fallback while the store is down. */
export interface CompiledRule {
  readonly name: string
  readonly rule: LimitRule
  readonly window: LimitWindow
  readonly store: LimitStore
  readonly insurance: LimitStore
  readonly insuranceWindow: LimitWindow
  /**
   * Time (the gateway's `now`) before which the store is not asked again after it failed; 0 while it works. Once
   * it has passed, one request asks the store (the probe) while the others keep to the fallback, so a store
   * that still hangs costs one request's wait per retry, not every request's.
   */
  storeDownUntil: number
  /** A probe is on its way to the store. */
  probing: boolean
}

/** What `limit()` accepts: the rules, as the gateway's `rateLimit` option takes them, and a default store. */
export interface LimitOptions {
  /** One rule or several (the `rateLimit` option's shape); each that applies must admit the request. */
  rules: LimitRuleOptions | readonly LimitRuleOptions[]
  /** Where rules without a `store` of their own count. Default: in memory, per `limit()` step. */
  store?: LimitStore | undefined
}

const limitOptions = z.strictObject({ rules: limitRules, store: limitStore.optional() })

function compileRules(option: LimitRule | LimitRule[], defaultStore: LimitStore | undefined): CompiledRule[] {
  const rules = Array.isArray(option) ? option : [option]
  const memory = defaultStore ?? createMemoryLimitStore()
  const insurance = createMemoryLimitStore()
  return rules.map((rule, index) => {
    const limit = rule.unit === 'cost' ? Math.round(rule.limit * MICROS_PER_DOLLAR) : rule.limit
    const window: LimitWindow = { limit, windowMs: rule.window * 1000, technique: rule.technique }
    return {
      name: rule.name ?? (rules.length === 1 ? 'default' : `rule${index}`),
      rule,
      window,
      store: rule.store ?? memory,
      insurance,
      insuranceWindow: { ...window, limit: rule.insuranceLimit ?? Math.ceil(limit / INSURANCE_SHARE) },
      storeDownUntil: 0,
      probing: false,
    }
  })
}

interface Admission {
  readonly compiled: CompiledRule
  readonly key: string
  readonly amount: number
  readonly decision: LimitDecision
  /** The store that admitted it (the rule's, or the insurance one), so a correction goes to the same place. */
  readonly store: LimitStore
  readonly window: LimitWindow
}

/**
 * Rate limits. Every rule that applies must admit the request; the first that refuses answers 429 (code
 * 2003) with `Retry-After`, and what the others had admitted is given back. Token rules reserve an estimate
 * here and settle it with the usage the answer reports once its last byte went out. Each admitted response
 * carries the IETF `RateLimit-Policy` and `RateLimit` headers for the rules that applied.
 *
 * The rules are validated and compiled once, here (a wrong rule throws `GatewayOptionsError` naming it), so
 * one step can be added several times, each with its own counters. Steps sharing a `store` need distinct
 * rule names: the name keys the counters.
 *
 * @example
 * steps: (builtIn) => [...builtIn.slice(0, -1), limit({ rules: { name: 'tenant', limit: 100, window: 60, key: 'tenant' } }), builtIn.at(-1)!]
 */
export function limit(options: LimitOptions = { rules: [] }): Step {
  const parsed = parseWith(limitOptions, options, 'limit() options')
  const rules = compileRules(parsed.rules, parsed.store)
  const step: Step = async function limit(ctx, next) {
    const admitted: Admission[] = []
    for (const compiled of rules) {
      const key = appliesTo(ctx, compiled.rule) ? ruleKey(ctx, compiled) : undefined
      if (key === undefined) continue
      const amount = await amountOf(ctx, compiled)
      if (amount === undefined) continue
      const admission = await admit(ctx, compiled, key, amount)
      if (!admission.decision.allowed) {
        giveBack(ctx, admitted)
        throw refusal(ctx, admission)
      }
      admitted.push(admission)
    }
    if (admitted.length === 0) return next()
    Object.assign(ctx.responseHeaders, rateLimitHeaders(admitted))
    const reserved = admitted.filter((a) => a.compiled.rule.unit !== 'requests')
    if (reserved.length === 0) return next()
    try {
      await next()
    } catch (error) {
      giveBack(ctx, reserved)
      throw error
    }
    settleReserved(ctx, reserved)
  }
  // Token and cost rules settle on the usage answers report: the gateway must ask providers for it.
  if (rules.some((compiled) => compiled.rule.unit !== 'requests')) step.watchesUsage = true
  return step
}

/** Whether the request is one the rule's `filter` names (its first target's provider and model). */
function appliesTo(ctx: GatewayContext, rule: LimitRule): boolean {
  const { filter } = rule
  if (filter === undefined) return true
  const target = ctx.state.targets?.[0]
  const provider = target?.provider.spec.id
  if (filter.provider !== undefined && (provider === undefined || !filter.provider.includes(provider))) {
    return false
  }
  if (filter.model === undefined) return true
  const model = target?.model
  return (
    model !== undefined && (filter.model.includes(model) || filter.model.includes(`${provider}/${model}`))
  )
}

/**
 * What the request takes from a rule before the call: one request, an estimate of its tokens, or of its
 * cost in micro-dollars; `undefined` for a cost rule when no price is known for its model (the rule does not
 * apply, as the reference's spend limits cover models with known pricing).
 */
async function amountOf(ctx: GatewayContext, compiled: CompiledRule): Promise<number | undefined> {
  const { unit } = compiled.rule
  if (unit === 'requests') return 1
  if (unit === 'tokens') return estimateTokens(ctx, compiled)
  const price = priceOf(ctx, ctx.state.targets?.[0])
  if (price === undefined) return undefined
  const { input, output } = await estimateTokenParts(ctx)
  const estimate = computeCost({ inputTokens: input, outputTokens: output, inputIncludesCache: true }, price)
  return Math.max(1, Math.ceil(estimate * MICROS_PER_DOLLAR))
}

/** The counter this request counts against for a rule, or `undefined` when the rule does not apply to it. */
function ruleKey(ctx: GatewayContext, compiled: CompiledRule): string | undefined {
  const { key } = compiled.rule
  let value: string | undefined
  if (typeof key === 'function') value = key(ctx)
  else if (key === 'gateway') value = ''
  // Callers `identify` cannot name share one counter: leaving them out would let them skip the limit.
  else if (key === 'principal') value = ctx.state.principal?.id ?? '(anonymous)'
  else if (key === 'tenant') value = ctx.state.principal?.tenant ?? '(anonymous)'
  else if (key === 'provider') value = ctx.state.targets?.[0]?.provider.spec.id
  else if (key === 'model') value = modelKey(ctx)
  else {
    const entry = ctx.state.metadata?.[key.slice('metadata.'.length)]
    value = entry === undefined ? undefined : String(entry)
  }
  if (value === undefined) return undefined
  return `${ctx.gateway.options.name}:${compiled.name}:${encodeURIComponent(value)}`
}

function modelKey(ctx: GatewayContext): string | undefined {
  const target = ctx.state.targets?.[0]
  const model = target?.model
  return model === undefined ? undefined : `${target!.provider.spec.id}/${model}`
}

async function admit(
  ctx: GatewayContext,
  compiled: CompiledRule,
  key: string,
  amount: number,
): Promise<Admission> {
  const now = ctx.gateway.now()
  const fallback = (): Admission => {
    if (compiled.rule.onStoreError === 'closed') {
      throw new GatewayError('LIMIT_STORE_UNAVAILABLE', `rule '${compiled.name}'`)
    }
    const decision = compiled.insurance.consume(key, amount, compiled.insuranceWindow, now) as LimitDecision
    return { compiled, key, amount, decision, store: compiled.insurance, window: compiled.insuranceWindow }
  }
  const probe = compiled.storeDownUntil !== 0
  if (probe) {
    if (compiled.probing || now < compiled.storeDownUntil) return fallback()
    compiled.probing = true
  }
  const { store, window } = compiled
  const timeoutMs = compiled.rule.storeTimeoutMs
  try {
    const decision = await callStore(
      () => store.consume(key, amount, window, now, { timeoutMs }),
      timeoutMs,
      // Counted by the store after this request was decided by the fallback: given back, so the store
      // holds only what it decided itself.
      (late) => {
        if (late.allowed && late.reservation !== undefined) {
          correct(ctx, { compiled, key, amount, decision: late, store, window }, -amount)
        }
      },
    )
    if (probe) compiled.storeDownUntil = 0
    return { compiled, key, amount, decision, store, window }
  } catch (error) {
    compiled.storeDownUntil = ctx.gateway.now() + STORE_RETRY_MS
    reportStoreError(ctx, 'limit', 'consume', error)
    return fallback()
  } finally {
    if (probe) compiled.probing = false
  }
}

function refusal(ctx: GatewayContext, { compiled, decision }: Admission): GatewayError {
  const retryAfter = Math.max(1, Math.ceil(decision.resetMs / 1000))
  const { rule } = compiled
  if (rule.unit === 'cost') {
    // The reference's wording: "Spend limit exceeded: rule '<id>' (cost limit <n> per <s>s, sliding) for …"
    const target = ctx.state.targets?.[0]
    const what = target === undefined ? '' : ` for ${target.provider.spec.id} ${target.model ?? ''}`.trimEnd()
    return new GatewayError(
      'SPEND_LIMITED',
      `rule '${compiled.name}' (cost limit ${rule.limit} per ${rule.window}s, ${rule.technique})${what}`,
      { headers: { 'retry-after': String(retryAfter) } },
    )
  }
  return new GatewayError('RATE_LIMITED', `rule '${compiled.name}' allows ${describe(compiled)}`, {
    headers: { 'retry-after': String(retryAfter), ...rateLimitHeaders([{ compiled, decision }]) },
  })
}

function describe({ rule }: CompiledRule): string {
  return `${rule.limit} ${rule.unit} per ${rule.window} s (${rule.technique})`
}

/** IETF `RateLimit-Policy` / `RateLimit` (draft-ietf-httpapi-ratelimit-headers): quota, window, remaining, reset. */
function rateLimitHeaders(
  admissions: ReadonlyArray<Pick<Admission, 'compiled' | 'decision'>>,
): Record<string, string> {
  const policies: string[] = []
  const states: string[] = []
  for (const { compiled, decision } of admissions) {
    // Money has no quota unit in the draft; spend limits say their state in their 429 instead.
    if (compiled.rule.unit === 'cost') continue
    const unit = compiled.rule.unit === 'tokens' ? ';qu="tokens"' : ''
    policies.push(`"${compiled.name}";q=${compiled.rule.limit};w=${compiled.rule.window}${unit}`)
    states.push(`"${compiled.name}";r=${decision.remaining};t=${Math.ceil(decision.resetMs / 1000)}`)
  }
  return { 'ratelimit-policy': policies.join(', '), ratelimit: states.join(', ') }
}

/** Tokens reserved before the call: the host's estimate, else request bytes / 4 plus the output cap asked for. */
async function estimateTokens(ctx: GatewayContext, compiled: CompiledRule): Promise<number> {
  const custom = compiled.rule.estimate?.(ctx, await ctx.readJson())
  if (custom !== undefined) return Math.max(1, Math.ceil(custom))
  const { input, output } = await estimateTokenParts(ctx)
  return Math.max(1, input + output)
}

/** A request's tokens before the call: its bytes / 4 in, and the output cap it asks for (0 without one) out. */
async function estimateTokenParts(ctx: GatewayContext): Promise<{ input: number; output: number }> {
  const body = await ctx.readBody()
  const json = await ctx.readJson()
  let outputCap = 0
  if (isRecord(json)) {
    for (const field of OUTPUT_CAP_FIELDS) if (typeof json[field] === 'number') outputCap = json[field]
    // A dialect's own cap field (Gemini's `generationConfig.maxOutputTokens`) wins.
    outputCap = dialectOf(ctx.state.targets?.[0]?.clientDialect ?? 'openai').outputCap(json) ?? outputCap
  }
  return { input: Math.ceil((body?.length ?? 0) / 4), output: Math.max(0, Math.ceil(outputCap)) }
}

/**
 * Corrects each token or cost reservation to what the answer really used, once it was read: its tokens,
 * or its cost at the price of the model that answered (after a fallback, not the one first asked).
 */
function settleReserved(ctx: GatewayContext, reserved: readonly Admission[]): void {
  const response = ctx.response
  if (response === undefined || response.status >= 400 || ctx.state.usage === undefined) {
    // The provider refused or failed before answering: nothing was spent.
    giveBack(ctx, reserved)
    return
  }
  void ctx.state.usage.then((usage) => {
    // Without a usage report (a cut stream, an answer too large to read) the estimate stands.
    if (usage === undefined) return
    const tokens = totalTokens(usage)
    const micros = costMicros(ctx, ctx.state.target, usage)
    for (const admission of reserved) {
      const used = admission.compiled.rule.unit === 'cost' ? micros : tokens
      if (used !== undefined) correct(ctx, admission, used - admission.amount)
    }
  })
}

function giveBack(ctx: GatewayContext, admissions: readonly Admission[]): void {
  for (const admission of admissions) correct(ctx, admission, -admission.amount)
}

function correct(ctx: GatewayContext, admission: Admission, delta: number): void {
  const { reservation } = admission.decision
  if (delta === 0 || reservation === undefined) return
  const { store, key, window, compiled } = admission
  const timeoutMs = compiled.rule.storeTimeoutMs
  Promise.resolve()
    .then(() =>
      callStore(
        () => store.adjust(key, reservation, delta, window, ctx.gateway.now(), { timeoutMs }),
        timeoutMs,
      ),
    )
    .catch((error) => reportStoreError(ctx, 'limit', 'adjust', error))
}
