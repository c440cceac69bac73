/**
 * Time ranges as the pages pick them (a preset such as "last 24 hours", or from/to) and the analytics
 * bucket that suits each: enough points to show a shape, few enough to draw at once.
 */

export type Bucket = 'minute' | 'hour' | 'day'

export const BUCKET_MS: Record<Bucket, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 }

export interface RangePreset {
  readonly id: string
  readonly label: string
  readonly ms: number
}

export const PRESETS: readonly RangePreset[] = [
  { id: '15m', label: 'Last 15 minutes', ms: 15 * 60_000 },
  { id: '1h', label: 'Last hour', ms: 3_600_000 },
  { id: '24h', label: 'Last 24 hours', ms: 86_400_000 },
  { id: '7d', label: 'Last 7 days', ms: 7 * 86_400_000 },
  { id: '30d', label: 'Last 30 days', ms: 30 * 86_400_000 },
]

/** A preset id, or `custom` with its own bounds (milliseconds since the epoch). */
export interface TimeRange {
  readonly preset: string
  readonly from?: number | undefined
  readonly to?: number | undefined
}

/**
 * The bounds of a range at `now`: a preset ends now; a custom range without `to` too.
 *
 * @example
 * resolveRange({ preset: '1h' }, now) // { from: now - 3_600_000, to: now }
 */
export function resolveRange(range: TimeRange, now: number): { from: number; to: number } {
  const preset = PRESETS.find((candidate) => candidate.id === range.preset)
  if (preset !== undefined) return { from: now - preset.ms, to: now }
  const to = range.to ?? now
  return { from: Math.min(range.from ?? to - 86_400_000, to), to }
}

/**
 * The bucket for a span: minutes up to six hours, hours up to eight days, days beyond.
 *
 * @example
 * bucketFor(86_400_000) // 'hour'
 */
export function bucketFor(spanMs: number): Bucket {
  if (spanMs <= 6 * 3_600_000) return 'minute'
  if (spanMs <= 8 * 86_400_000) return 'hour'
  return 'day'
}

/**
 * Every bucket start from the one holding `from` up to `to`, aligned to the epoch in UTC, as the log
 * stores align them.
 *
 * @example
 * bucketStarts(90_000, 200_000, 'minute') // [60_000, 120_000, 180_000]
 */
export function bucketStarts(from: number, to: number, bucket: Bucket): number[] {
  const size = BUCKET_MS[bucket]
  const starts: number[] = []
  for (let start = Math.floor(from / size) * size; start < to; start += size) starts.push(start)
  return starts
}
