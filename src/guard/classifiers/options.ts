import { z } from 'zod'
import { GatewayOptionsError } from '../../errors.js'

/** The longest a timer can wait: `setTimeout` treats anything longer as 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** A function option; zod's own function schemas validate calls, not the value, so this checks the type only. */
export function fn<T>(what: string) {
  return z.custom<T>((value) => typeof value === 'function', `must be a function (${what})`)
}

/** An `id` naming a classifier in errors and logs. */
export const classifierId = z
  .string()
  .min(1, 'must not be empty')
  .max(128, 'at most 128 characters')
  .regex(/^[\w.:-]+$/, 'only letters, digits and . _ : -')

/** A whole number in `min..max`. */
export function whole(min: number, max: number) {
  return z.number().int('must be a whole number').min(min, `at least ${min}`).max(max, `at most ${max}`)
}

/**
 * Validates `raw` against `schema`; throws `GatewayOptionsError` naming every wrong field, as classifier
 * options are part of a gateway's configuration and a mistake there must stop it starting.
 *
 * @example
 * parseOptions(z.strictObject({ ms: whole(1, 10) }), { ms: 0 }, 'deadline') // GatewayOptionsError: Invalid deadline options: ms: at least 1
 */
export function parseOptions<S extends z.ZodType>(schema: S, raw: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(raw)
  if (parsed.success) return parsed.data
  const problems = parsed.error.issues.map(
    (issue) => `${issue.path.join('.') || '(options)'}: ${issue.message}`,
  )
  throw new GatewayOptionsError(`Invalid ${what} options: ${problems.join('; ')}`)
}
