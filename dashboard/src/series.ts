/**
 * Analytics rows turned into chart series: one value per bucket (buckets without records are absent
 * from the rows and filled in here), and per group the few largest groups with the rest summed as "other".
 */
import type { AnalyticsRow } from '../../src/logs/types.js'

export interface Series {
  readonly label: string
  readonly values: (number | null)[]
}

export interface ChartData {
  /** Bucket starts, milliseconds since the epoch. */
  readonly x: readonly number[]
  readonly series: readonly Series[]
}

/** What a chart plots from a row; `null` draws a gap. */
export type Metric = (row: AnalyticsRow) => number | null

export const METRICS = {
  requests: (row) => row.requests,
  errors: (row) => row.errors,
  tokens: (row) => row.tokensIn + row.tokensOut,
  tokensIn: (row) => row.tokensIn,
  tokensOut: (row) => row.tokensOut,
  cost: (row) => row.cost ?? 0,
  cacheHitRate: (row) => (row.requests === 0 ? null : row.cacheHits / row.requests),
  errorRate: (row) => (row.requests === 0 ? null : row.errors / row.requests),
  latencyP50: (row) => row.latencyP50,
  latencyP95: (row) => row.latencyP95,
} satisfies Record<string, Metric>

/** Metrics that add up across groups, so "other" can be their sum; the rest are not split by group. */
const ADDITIVE = new Set<Metric>([METRICS.requests, METRICS.errors, METRICS.tokens, METRICS.cost])

/**
 * How a group is written: its value, `(none)` for records without one.
 *
 * @example
 * groupLabel({ provider: null }, 'provider') // '(none)'
 */
export function groupLabel(group: Record<string, string | null>, key: string): string {
  return group[key] ?? '(none)'
}

/**
 * One series over the buckets: `metric` of the row at each start, `empty` where there is none (0 for
 * counts, null for rates and latencies, which have no value without requests).
 *
 * @example
 * bucketValues(rows, [0, 60_000], METRICS.requests, 0) // [3, 0]
 */
export function bucketValues(
  rows: readonly AnalyticsRow[],
  starts: readonly number[],
  metric: Metric,
  empty: number | null,
): (number | null)[] {
  const byStart = new Map(rows.map((row) => [row.bucketStart, row]))
  return starts.map((start) => {
    const row = byStart.get(start)
    return row === undefined ? empty : metric(row)
  })
}

/**
 * Series per group for an additive metric: the `top` groups with the largest totals, then `other` for
 * the rest, if any.
 *
 * @example
 * groupSeries(rows, 'provider', starts, METRICS.requests).map((series) => series.label) // ['openai', 'anthropic']
 */
export function groupSeries(
  rows: readonly AnalyticsRow[],
  key: string,
  starts: readonly number[],
  metric: Metric,
  top = 6,
): Series[] {
  if (!ADDITIVE.has(metric)) throw new Error('only additive metrics can be split by group')
  const groups = new Map<string, AnalyticsRow[]>()
  for (const row of rows) {
    const label = groupLabel(row.group, key)
    groups.set(label, [...(groups.get(label) ?? []), row])
  }
  const total = (list: AnalyticsRow[]) => list.reduce((sum, row) => sum + (metric(row) ?? 0), 0)
  const ranked = [...groups.entries()].sort((a, b) => total(b[1]) - total(a[1]) || a[0].localeCompare(b[0]))
  const series = ranked
    .slice(0, top)
    .map(([label, list]) => ({ label, values: bucketValues(list, starts, metric, 0) }))
  const rest = ranked.slice(top).flatMap(([, list]) => list)
  if (rest.length > 0) {
    const values = starts.map((start) =>
      rest.filter((row) => row.bucketStart === start).reduce((sum, row) => sum + (metric(row) ?? 0), 0),
    )
    series.push({ label: 'other', values })
  }
  return series
}
