import { decimalOf, shift } from '../cost/money.js'

export { MICROS_PER_DOLLAR } from '../cost/answer-cost.js'

import { MICROS_PER_DOLLAR } from '../cost/answer-cost.js'

/** A cap in USD as micro-dollars, to the nearest one. */
export function limitMicros(amountUsd: number): number {
  return Math.round(amountUsd * MICROS_PER_DOLLAR)
}

/**
 * A cost in USD as whole micro-dollars, rounded up, so a budget is never under-charged: read as the decimal
 * it prints as, so `0.000015` is 15 and not 16 from binary noise. `undefined` for a cost that is not a finite
 * amount of at least 0, or too large to count exactly.
 *
 * @example
 * costMicros(0.0000031) // 4
 */
export function costMicros(costUsd: number): number | undefined {
  if (!Number.isFinite(costUsd) || costUsd < 0) return undefined
  const { units, scale } = shift(decimalOf(costUsd), 6)
  const divisor = 10n ** BigInt(scale)
  const micros = units / divisor + (units % divisor === 0n ? 0n : 1n)
  return micros <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(micros) : undefined
}
