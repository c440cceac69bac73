/**
 * OpenTelemetry's GenAI bucket bounds for `gen_ai.client.operation.duration`, in seconds: doubling from
 * 10 ms to 82 s, so one set serves a cache hit and a long stream. The latency histograms use them on both
 * sides unless the `metrics.buckets` option says otherwise.
 */
export const DURATION_BUCKETS: readonly number[] = [
  0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
]

/** OpenTelemetry's GenAI bucket bounds for `gen_ai.client.token.usage`: powers of four, 1 to 67M tokens. */
export const TOKEN_BUCKETS: readonly number[] = [
  1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
]

/**
 * Observations counted into fixed buckets, with their sum: a histogram as Prometheus exports it, kept as
 * plain numbers so that observing costs a few comparisons and no allocation.
 *
 * @example
 * const latency = new Buckets(DURATION_BUCKETS)
 * latency.observe(0.3) // counted in the `le="0.32"` bucket (and every larger one, once exported)
 */
export class Buckets {
  /** Observations per bucket, not cumulative: one per bound, then the `+Inf` bucket. */
  readonly counts: Float64Array
  sum = 0
  count = 0

  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1)
  }

  observe(value: number): void {
    const { bounds } = this
    let at = 0
    // A bucket holds values up to and including its bound (Prometheus's `le`).
    while (at < bounds.length && value > bounds[at]!) at++
    this.counts[at]!++
    this.sum += value
    this.count++
  }

  /** Adds another's observations (same bounds) to this one's: series merged into fewer labels. */
  add(other: Buckets): void {
    for (let at = 0; at < this.counts.length; at++) this.counts[at]! += other.counts[at]!
    this.sum += other.sum
    this.count += other.count
  }
}
