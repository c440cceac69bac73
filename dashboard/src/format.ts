/** How the dashboard writes numbers, money, durations and times: one place, so every page agrees. */

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })

/**
 * A count with thousands separators; `—` for null.
 *
 * @example
 * formatNumber(12345) // '12,345'
 */
export function formatNumber(value: number | null | undefined): string {
  return value === null || value === undefined ? '—' : integer.format(value)
}

/**
 * US dollars, with as many decimals as a fraction of a cent needs (costs are exact to 1e-10); `—` for
 * an unknown cost, never `$0`.
 *
 * @example
 * formatCost(0.0000033) // '$0.0000033'
 * formatCost(12.5) // '$12.50'
 */
export function formatCost(value: number | null | undefined): string {
  if (value === null || value === undefined) return '—'
  if (value === 0) return '$0'
  if (Math.abs(value) >= 1) return `$${value.toFixed(2)}`
  if (Math.abs(value) >= 0.01) return `$${value.toFixed(4).replace(/0+$/, '')}`
  return `$${value.toFixed(10).replace(/0+$/, '')}`
}

/**
 * A duration: milliseconds up to a second, then seconds.
 *
 * @example
 * formatMs(840) // '840 ms'
 * formatMs(1520) // '1.52 s'
 */
export function formatMs(value: number | null | undefined): string {
  if (value === null || value === undefined) return '—'
  return value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(2)} s`
}

/**
 * A ratio as a percentage with one decimal; `—` when there is nothing to divide.
 *
 * @example
 * formatPercent(0.125) // '12.5%'
 */
export function formatPercent(value: number | null | undefined): string {
  return value === null || value === undefined || Number.isNaN(value) ? '—' : `${(value * 100).toFixed(1)}%`
}

/**
 * A size in bytes, KiB or MiB.
 *
 * @example
 * formatBytes(2048) // '2.0 KiB'
 */
export function formatBytes(value: number): string {
  if (value < 1024) return `${value} B`
  if (value < 1024 * 1024) return `${(value / 1024).toFixed(1)} KiB`
  return `${(value / 1024 / 1024).toFixed(1)} MiB`
}

const pad = (value: number) => String(value).padStart(2, '0')

/**
 * A time in the browser's zone, `YYYY-MM-DD HH:MM:SS`, sortable and the same in every locale.
 *
 * @example
 * formatTime(Date.UTC(2025, 0, 2, 3, 4, 5)) // '2025-01-02 03:04:05' in UTC
 */
export function formatTime(ms: number): string {
  const d = new Date(ms)
  return `${formatDate(ms)} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

/**
 * A date in the browser's zone, `YYYY-MM-DD`.
 *
 * @example
 * formatDate(Date.UTC(2025, 0, 2, 12)) // '2025-01-02' in UTC
 */
export function formatDate(ms: number): string {
  const d = new Date(ms)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`
}

/**
 * A UTC day, `YYYY-MM-DD`: analytics buckets are UTC days.
 *
 * @example
 * formatUtcDate(Date.UTC(2025, 0, 2)) // '2025-01-02'
 */
export function formatUtcDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10)
}
