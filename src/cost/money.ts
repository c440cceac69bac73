/**
 * Exact decimal arithmetic for money. Prices and costs travel as JS numbers of dollars, but binary
 * floating point cannot hold most decimal fractions (22 × 0.15 / 1e6 gives 0.0000032999999999999997), so
 * every computation reads each number as the decimal it prints as, works on bigints, and rounds once at the
 * end, to {@link COST_DECIMALS} places.
 */

/**
 * Decimal places of every cost the library reports (a record's `cost`, an analytics sum): 1e-10 USD. It
 * holds any built-in price times any token count exactly; a cost under $100,000 therefore reads back as
 * the exact decimal, and larger sums are the nearest double to it.
 */
export const COST_DECIMALS = 10

/** `units × 10^-scale`, exactly; `scale` is never negative. */
export interface Decimal {
  readonly units: bigint
  readonly scale: number
}

export const ZERO: Decimal = Object.freeze({ units: 0n, scale: 0 })

// What String() prints for a finite number: plain (`0.15`, `-12`) or with an exponent (`1.5e-7`, `1e+21`).
const NUMBER_TEXT = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/

/**
 * The decimal a number prints as: the shortest one that reads back as the same double, so `0.15` is
 * exactly 15/100 and not the binary fraction stored for it. Throws a RangeError for NaN and infinities.
 *
 * @example
 * decimalOf(0.15) // { units: 15n, scale: 2 }
 * decimalOf(1.5e-7) // { units: 15n, scale: 8 }
 */
export function decimalOf(value: number): Decimal {
  // Token counts are whole numbers: no need to read them from their printed form.
  if (Number.isSafeInteger(value)) return { units: BigInt(value), scale: 0 }
  const match = Number.isFinite(value) ? NUMBER_TEXT.exec(String(value)) : null
  if (match === null) throw new RangeError(`not a finite amount: ${value}`)
  const [, sign, whole, fraction = '', exponent = '0'] = match
  const units = BigInt(`${sign}${whole}${fraction}`)
  return normalized(units, fraction.length - Number(exponent))
}

function normalized(units: bigint, scale: number): Decimal {
  return scale >= 0 ? { units, scale } : { units: units * 10n ** BigInt(-scale), scale: 0 }
}

/** `value`'s units at a scale no smaller than its own. */
export function atScale(value: Decimal, scale: number): bigint {
  return value.units * 10n ** BigInt(scale - value.scale)
}

/** `a + b`, exactly. */
export function add(a: Decimal, b: Decimal): Decimal {
  const scale = Math.max(a.scale, b.scale)
  return { units: atScale(a, scale) + atScale(b, scale), scale }
}

/** `a - b`, exactly. */
export function subtract(a: Decimal, b: Decimal): Decimal {
  return add(a, { units: -b.units, scale: b.scale })
}

/** `a × b`, exactly. */
export function multiply(a: Decimal, b: Decimal): Decimal {
  return { units: a.units * b.units, scale: a.scale + b.scale }
}

/** `value × 10^power`, exactly: a change of unit, e.g. dollars per token to dollars per million. */
export function shift(value: Decimal, power: number): Decimal {
  return normalized(value.units, value.scale - power)
}

/** Whether `value < 0`. */
export function isNegative(value: Decimal): boolean {
  return value.units < 0n
}

/**
 * `value` rounded to `decimals` places, halves away from zero (as Postgres `round(numeric, int)` does, so
 * both log stores report the same sums).
 */
export function round(value: Decimal, decimals: number): Decimal {
  if (value.scale <= decimals) return value
  const divisor = 10n ** BigInt(value.scale - decimals)
  const magnitude = value.units < 0n ? -value.units : value.units
  let units = magnitude / divisor
  if ((magnitude % divisor) * 2n >= divisor) units += 1n
  return { units: value.units < 0n ? -units : units, scale: decimals }
}

/**
 * The double nearest to `value`: exactly the decimal whenever it has at most 15 significant digits.
 *
 * @example
 * toNumber({ units: 33n, scale: 7 }) // 0.0000033
 */
export function toNumber(value: Decimal): number {
  const negative = value.units < 0n
  const digits = (negative ? -value.units : value.units).toString().padStart(value.scale + 1, '0')
  const point = digits.length - value.scale
  const text = value.scale === 0 ? digits : `${digits.slice(0, point)}.${digits.slice(point)}`
  return Number(negative ? `-${text}` : text)
}

/**
 * An amount of dollars as the library reports it: rounded to {@link COST_DECIMALS} places, then the
 * nearest double.
 *
 * @example
 * toDollars(multiply(decimalOf(22), shift(decimalOf(0.15), -6))) // 0.0000033
 */
export function toDollars(value: Decimal): number {
  return toNumber(round(value, COST_DECIMALS))
}
