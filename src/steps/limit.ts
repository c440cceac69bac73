import { z } from 'zod'
import { costMicros, isPriced, MICROS_PER_DOLLAR } from '../cost/answer-cost.js'
import type { Usage } from '../cost/cost.js'
import { GatewayError } from '../errors.js'
import { reportStoreError } from '../events.js'
import { isRecord } from '../json.js'
import { type LimitRule, type LimitRuleOptions, limitRules, limitStore, parseWith } from '../options.js'
import { dialectOf } from '../providers/dialects/index.js'
import { callStore } from '../stores/call.js'
import { createMemoryLimitStore } from '../stores/memory-limits.js'
import type { LimitDecision, LimitStore, LimitWindow } from '../stores/types.js'
import type { UpstreamTarget } from '../target.js'
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
  const metered = rules.filter((compiled) => compiled.rule.unit !== 'requests')
  // Without rules the step waits on nothing: awaiting `next()` would only add turns of the microtask queue.
  if (rules.length === 0) {
    return function limit(_ctx, next) {
      return next()
    }
  }
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
    if (admitted.length > 0) Object.assign(ctx.responseHeaders, rateLimitHeaders(admitted))
    // Awaited rather than returned: an async function returning a promise takes two more turns to settle.
    if (metered.length === 0) return await next()
    const ledger = openLedger(ctx, metered, admitted)
    try {
      await next()
    } catch (error) {
      giveBack(ctx, ledger.admitted, ledger)
      throw error
    }
    settleReserved(ctx, ledger)
  }
  // Token and cost rules settle on the usage answers report: the gateway must ask providers for it.
  if (metered.length > 0) step.watchesUsage = true
  return step
}

/**
 * Whether the rule counts the request: it may reach a model the rule counts (see `counts`), a fallback as
 * much as the model it names first, since any of them may be the one that answers.
 */
function appliesTo(ctx: GatewayContext, rule: LimitRule): boolean {
  if (rule.filter === undefined && rule.unit !== 'cost') return true
  return countedTarget(ctx, rule) !== undefined
}

/**
 * Whether a rule counts what a target's model uses: one its `filter` names and, for a cost rule, one with a
 * price (the reference's spend limits cover models with known pricing).
 */
function counts(ctx: GatewayContext, rule: LimitRule, target: UpstreamTarget): boolean {
  return matchesFilter(rule, target) && (rule.unit !== 'cost' || isPriced(ctx, target))
}

/** The first of the request's targets the rule counts: its `provider` and `model` keys name this one. */
function countedTarget(ctx: GatewayContext, rule: LimitRule): UpstreamTarget | undefined {
  return ctx.state.targets?.find((target) => counts(ctx, rule, target))
}

function matchesFilter({ filter }: LimitRule, target: UpstreamTarget): boolean {
  if (filter === undefined) return true
  const provider = target.provider.spec.id
  if (filter.provider !== undefined && !filter.provider.includes(provider)) return false
  if (filter.model === undefined) return true
  const { model } = target
  return (
    model !== undefined && (filter.model.includes(model) || filter.model.includes(`${provider}/${model}`))
  )
}

/**
 * What the request takes from a rule before the call: one request, an estimate of its tokens, or of its
 * cost in micro-dollars at the dearest model the rule counts among those it may reach (a fallback may be
 * the one that answers); `undefined` for a cost rule when none of them has a price.
 */
async function amountOf(ctx: GatewayContext, compiled: CompiledRule): Promise<number | undefined> {
  const { unit } = compiled.rule
  if (unit === 'requests') return 1
  if (unit === 'tokens') return estimateTokens(ctx, compiled)
  const priced = ctx.state.targets?.filter((target) => counts(ctx, compiled.rule, target)) ?? []
  if (priced.length === 0) return undefined
  const { input, output } = await estimateTokenParts(ctx)
  const estimate: Usage = { inputTokens: input, outputTokens: output, inputIncludesCache: true }
  return Math.max(1, ...priced.map((target) => costMicros(ctx, target, estimate) ?? 0))
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
  else if (key === 'provider') value = countedTarget(ctx, compiled.rule)?.provider.spec.id
  else if (key === 'model') value = modelKey(countedTarget(ctx, compiled.rule))
  else {
    const entry = ctx.state.metadata?.[key.slice('metadata.'.length)]
    value = entry === undefined ? undefined : String(entry)
  }
  if (value === undefined) return undefined
  return `${ctx.gateway.options.name}:${compiled.name}:${encodeURIComponent(value)}`
}

function modelKey(target: UpstreamTarget | undefined): string | undefined {
  const model = target?.model
  return model === undefined ? undefined : `${target!.provider.spec.id}/${model}`
}

async function admit(
  ctx: GatewayContext,
  compiled: CompiledRule,
  key: string,
  amount: number,
): Promise<Admission> {
  // More than the whole limit never fits, now or later: refused here, without troubling a store (whose
  // counts stop at 2^53).
  if (amount > compiled.window.limit) return tooLarge(compiled, key, amount)
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
    // A store refusing the amount it was given (both built-in ones throw RangeError) is not down: the
    // request fails alone, and the rule keeps asking its store.
    if (error instanceof RangeError) throw error
    compiled.storeDownUntil = ctx.gateway.now() + STORE_RETRY_MS
    reportStoreError(ctx, 'limit', 'consume', error)
    return fallback()
  } finally {
    if (probe) compiled.probing = false
  }
}

/** The refusal of an amount above a rule's whole limit, as a store answers it: a full window away. */
function tooLarge(compiled: CompiledRule, key: string, amount: number): Admission {
  const decision: LimitDecision = { allowed: false, remaining: 0, resetMs: compiled.window.windowMs }
  return { compiled, key, amount, decision, store: compiled.store, window: compiled.window }
}

function refusal(ctx: GatewayContext, { compiled, decision }: Admission): GatewayError {
  const retryAfter = Math.max(1, Math.ceil(decision.resetMs / 1000))
  const { rule } = compiled
  if (rule.unit === 'cost') {
    // The reference's wording: "Spend limit exceeded: rule '<id>' (cost limit <n> per <s>s, sliding) for …"
    const target = countedTarget(ctx, rule)
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
  // Spend limits alone have nothing to say here: no headers rather than empty ones.
  if (policies.length === 0) return {}
  return { 'ratelimit-policy': policies.join(', '), ratelimit: states.join(', ') }
}

/** Tokens reserved before the call: the host's estimate, else request bytes / 4 plus the output cap asked for. */
async function estimateTokens(ctx: GatewayContext, compiled: CompiledRule): Promise<number> {
  const custom = compiled.rule.estimate?.(ctx, await ctx.readJson())
  if (custom !== undefined) return Math.max(1, Math.ceil(custom))
  const { input, output } = await estimateTokenParts(ctx)
  return Math.max(1, input + output)
}

/**
 * A request's tokens before the call: its bytes / 4 in; out, the output cap it asks for (0 without one) for
 * each choice it asks for. Kept below 2^53 so that an absurd cap stays a number, one no limit admits.
 */
async function estimateTokenParts(ctx: GatewayContext): Promise<{ input: number; output: number }> {
  const body = await ctx.readBody()
  const json = await ctx.readJson()
  let outputCap = 0
  let choices = 1
  if (isRecord(json)) {
    for (const field of OUTPUT_CAP_FIELDS) if (typeof json[field] === 'number') outputCap = json[field]
    // A dialect's own cap field (Gemini's `generationConfig.maxOutputTokens`) wins.
    outputCap = dialectOf(ctx.state.targets?.[0]?.clientDialect ?? 'openai').outputCap(json) ?? outputCap
    choices = choicesAsked(json)
  }
  const output = Math.min(Number.MAX_SAFE_INTEGER, Math.max(0, Math.ceil(outputCap)) * choices)
  return { input: Math.ceil((body?.length ?? 0) / 4), output }
}

/**
 * How many answers a request asks for, each up to the output cap: OpenAI's `n` (and the legacy
 * completions' `best_of`, all generated and billed), Gemini's `generationConfig.candidateCount`; Anthropic's
 * and the Responses API's requests have no such field. Read whatever the dialect, as the cap fields are: a
 * field the provider does not know can only make the estimate larger.
 */
function choicesAsked(json: Record<string, unknown>): number {
  const generation = json.generationConfig
  const asked = [json.n, json.best_of, isRecord(generation) ? generation.candidateCount : undefined]
  let choices = 1
  for (const count of asked) if (typeof count === 'number' && count > choices) choices = Math.ceil(count)
  return Math.min(choices, Number.MAX_SAFE_INTEGER)
}

/**
 * What one `limit()` step holds of a request's token and cost rules until it is settled: the admissions
 * that reserved an amount, and what was charged beyond each while the request ran (see `chargeSession`).
 */
interface Ledger {
  /** The step's token and cost rules, admitted or not. */
  readonly rules: readonly CompiledRule[]
  readonly admitted: Admission[]
  /** Per admission, what `chargeSession` took beyond its reservation so far. */
  readonly charged: Map<Admission, number>
}

/** Each request's ledgers, one per `limit()` step it passed, for `chargeSession` to find. */
const ledgers = new WeakMap<GatewayContext, Ledger[]>()

function openLedger(
  ctx: GatewayContext,
  rules: readonly CompiledRule[],
  admitted: readonly Admission[],
): Ledger {
  const ledger: Ledger = {
    rules,
    admitted: admitted.filter((a) => a.compiled.rule.unit !== 'requests'),
    charged: new Map(),
  }
  const open = ledgers.get(ctx)
  if (open === undefined) ledgers.set(ctx, [ledger])
  else open.push(ledger)
  return ledger
}

/**
 * Charges a request that reports its usage while it runs (a realtime WebSocket session) with the usage
 * reported so far, `usage` being the running total: each token and cost rule of the `limit` steps it
 * passed takes, from its window, what the request used beyond what it took already. A rule that did not
 * apply when the request came (its model had no known price yet, as for a Gemini Live session, whose
 * model comes in its first message) takes it all now. Answers the refusal of the first rule the request no
 * longer fits in (a rule that had admitted it counts what it used all the same), or `undefined` while every
 * rule has room. Calls for one request must not overlap: each reads what the one before it charged.
 *
 * @example
 * const refusal = await chargeSession(ctx, { inputTokens: 1200, outputTokens: 300, inputIncludesCache: true })
 * if (refusal !== undefined) socket.close(4429, refusal.message)
 */
export async function chargeSession(ctx: GatewayContext, usage: Usage): Promise<GatewayError | undefined> {
  const open = ledgers.get(ctx)
  if (open === undefined) return undefined
  const tokens = totalTokens(usage)
  const micros = costMicros(ctx, ctx.state.target ?? ctx.state.targets?.[0], usage)
  let refused: GatewayError | undefined
  for (const ledger of open) {
    for (const compiled of ledger.rules) {
      const used = compiled.rule.unit === 'cost' ? micros : tokens
      if (used === undefined || used <= 0) continue
      const admission = ledger.admitted.find((entry) => entry.compiled === compiled)
      const refusedHere =
        admission === undefined
          ? await admitLate(ctx, ledger, compiled, used)
          : await chargeMore(ctx, ledger, admission, used)
      refused ??= refusedHere
    }
  }
  return refused
}

/** A rule that did not apply at the start and now does: admitted for everything used so far, or refused. */
async function admitLate(
  ctx: GatewayContext,
  ledger: Ledger,
  compiled: CompiledRule,
  used: number,
): Promise<GatewayError | undefined> {
  if (!appliesTo(ctx, compiled.rule)) return undefined
  const key = ruleKey(ctx, compiled)
  if (key === undefined) return undefined
  const admission = await admitOrRefuse(ctx, compiled, key, used)
  if (admission instanceof GatewayError) return admission
  if (admission.decision.allowed) {
    ledger.admitted.push(admission)
    return undefined
  }
  return refusal(ctx, admission)
}

/** Takes what an admitted request used beyond its reservation and its earlier charges; over the limit, a refusal. */
async function chargeMore(
  ctx: GatewayContext,
  ledger: Ledger,
  admission: Admission,
  used: number,
): Promise<GatewayError | undefined> {
  const before = ledger.charged.get(admission) ?? 0
  const extra = used - admission.amount - before
  if (extra <= 0) return undefined
  ledger.charged.set(admission, before + extra)
  const more = await admitOrRefuse(ctx, admission.compiled, admission.key, extra)
  if (more instanceof GatewayError) {
    correct(ctx, admission, extra)
    return more
  }
  if (more.decision.allowed) return undefined
  // Spent all the same: counted on the first reservation, so the window shows it.
  correct(ctx, admission, extra)
  return refusal(ctx, more)
}

/** `admit`, with a rule that fails closed answering its error instead of throwing it. */
async function admitOrRefuse(
  ctx: GatewayContext,
  compiled: CompiledRule,
  key: string,
  amount: number,
): Promise<Admission | GatewayError> {
  try {
    return await admit(ctx, compiled, key, amount)
  } catch (error) {
    if (error instanceof GatewayError) return error
    throw error
  }
}

/**
 * Corrects each token or cost reservation to what the answer really used, once it was read: its tokens,
 * or its cost at the price of the model that answered (after a fallback, not the one first asked). What a
 * session was charged while it ran (see `chargeSession`) is taken into account.
 */
function settleReserved(ctx: GatewayContext, ledger: Ledger): void {
  const { admitted: reserved, charged } = ledger
  const response = ctx.response
  if (response === undefined || response.status >= 400 || ctx.state.usage === undefined) {
    // The provider refused or failed before answering: nothing was spent.
    giveBack(ctx, reserved, ledger)
    return
  }
  if (reserved.length === 0) return
  void ctx.state.usage.then((usage) => {
    // Without a usage report (a cut stream, an answer too large to read) the estimate stands.
    if (usage === undefined) return
    const tokens = totalTokens(usage)
    const micros = costMicros(ctx, ctx.state.target, usage)
    for (const admission of reserved) {
      const used = usedOf(ctx, admission.compiled.rule, { tokens, micros })
      const taken = admission.amount + (charged.get(admission) ?? 0)
      if (used !== undefined) correct(ctx, admission, used - taken)
    }
  })
}

/**
 * What an answer used of a rule: its tokens, or its cost in micro-dollars. Nothing when the model that
 * answered is one the rule does not count (a fallback outside its `filter`, a model without a price).
 */
function usedOf(
  ctx: GatewayContext,
  rule: LimitRule,
  used: { tokens: number; micros: number | undefined },
): number | undefined {
  const answered = ctx.state.target
  if (answered !== undefined && !counts(ctx, rule, answered)) return 0
  return rule.unit === 'cost' ? used.micros : used.tokens
}

function giveBack(ctx: GatewayContext, admissions: readonly Admission[], ledger?: Ledger): void {
  for (const admission of admissions) {
    correct(ctx, admission, -(admission.amount + (ledger?.charged.get(admission) ?? 0)))
  }
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
