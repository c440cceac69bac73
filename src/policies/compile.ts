import { z } from 'zod'
import { GatewayOptionsError } from '../errors.js'
import { isRecord } from '../json.js'
import { compileCondition, MAX_CONDITION_BYTES } from './condition.js'
import { parseActor, parseResource } from './match.js'
import { limitMicros, MICROS_PER_DOLLAR } from './micros.js'
import { PERIODS } from './periods.js'
import type { CompiledPolicies, CompiledPolicy, CompilePoliciesOptions, Policy } from './types.js'

/** More policies than any gateway needs; each request walks them all. */
export const MAX_POLICIES = 1000
/** A cap in USD whose micro-dollars stay a safe integer in every store. */
const MAX_AMOUNT = 1_000_000_000
const DEFAULT_KEY_PREFIX = 'policy:'

const text = (max: number) => z.string().min(1, 'must not be empty').max(max, `at most ${max} characters`)

// Strict objects: a misspelt field (`ammount`, `expect`) is an error, not a silently ignored setting.
const action = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('no-limit') }),
  z.strictObject({ type: z.literal('block'), except: z.boolean().optional() }),
  z.strictObject({
    type: z.literal('limit'),
    amount: z
      .number()
      .min(1 / MICROS_PER_DOLLAR, 'must be at least 0.000001 (one micro-dollar)')
      .max(MAX_AMOUNT, `at most ${MAX_AMOUNT}`),
    period: z.enum(PERIODS),
    technique: z.literal('named-interval').default('named-interval'),
  }),
])

const policySchema = z.strictObject({
  id: text(128),
  name: z.string().max(256, 'at most 256 characters').optional(),
  actor: text(512),
  resource: text(512),
  condition: z.string().optional(),
  action,
})

/**
 * Validates policies and compiles them once: actors and resources are parsed, conditions parsed and
 * type-checked. Throws `GatewayOptionsError` (a `TypeError`, code `GW_ERR_INVALID_OPTIONS`) listing every
 * problem by policy id and field, as policies are part of a gateway's configuration. An empty list is valid
 * and allows every request.
 *
 * @example
 * const policies = compilePolicies([
 *   { id: 'per-user', actor: '{principal.id}', resource: '*', action: { type: 'limit', amount: 5, period: 'daily', technique: 'named-interval' } },
 * ])
 */
export function compilePolicies(raw: unknown, options: CompilePoliciesOptions = {}): CompiledPolicies {
  const maxBytes = options.maxConditionBytes ?? MAX_CONDITION_BYTES
  const keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX
  if (!Array.isArray(raw)) throw new GatewayOptionsError('Invalid policies: expected a list of policies')
  if (raw.length > MAX_POLICIES) {
    throw new GatewayOptionsError(`Invalid policies: at most ${MAX_POLICIES}, got ${raw.length}`)
  }
  const problems: string[] = []
  const compiled: CompiledPolicy[] = []
  const ids = new Set<string>()
  for (const [index, entry] of raw.entries()) {
    const where = nameOf(entry, index)
    // Checked on the raw id, so a policy that is wrong otherwise still claims its id.
    const rawId = isRecord(entry) ? entry.id : undefined
    if (typeof rawId === 'string') {
      if (ids.has(rawId)) problems.push(`${where}: id: another policy has the same id`)
      ids.add(rawId)
    }
    const parsed = policySchema.safeParse(entry)
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        problems.push(`${where}: ${issue.path.join('.') || '(policy)'}: ${issue.message}`)
      }
      continue
    }
    const policy = parsed.data as Policy
    const part = <T>(field: string, make: () => T): T | undefined => {
      try {
        return make()
      } catch (error) {
        problems.push(`${where}: ${field}: ${(error as Error).message}`)
        return undefined
      }
    }
    const actor = part('actor', () => parseActor(policy.actor))
    const resource = part('resource', () => parseResource(policy.resource))
    const condition =
      policy.condition === undefined
        ? undefined
        : part('condition', () => compileCondition(policy.condition!, maxBytes))
    if (
      actor === undefined ||
      resource === undefined ||
      (policy.condition !== undefined && condition === undefined)
    ) {
      continue
    }
    const cap = policy.action.type === 'limit' ? limitMicros(policy.action.amount) : undefined
    compiled.push({ policy, actor, resource, condition, limitMicros: cap })
  }
  if (problems.length > 0) {
    throw new GatewayOptionsError(`Invalid policies:\n${problems.map((line) => `  - ${line}`).join('\n')}`)
  }
  return { policies: compiled, keyPrefix }
}

/** How an error names a policy: by its id when it has a usable one, and always by its place in the list. */
function nameOf(entry: unknown, index: number): string {
  const id = isRecord(entry) && typeof entry.id === 'string' && entry.id !== '' ? entry.id : undefined
  return id === undefined ? `policy #${index}` : `policy '${id.slice(0, 128)}' (#${index})`
}
