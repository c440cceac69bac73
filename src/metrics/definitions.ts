import type { LogStats } from '../logs/recorder.js'
import type { MetricsBook, RequestSeries } from './book.js'
import { Buckets } from './buckets.js'

/** One sample of a counter or gauge: its label values, in the metric's label order. */
export interface Row {
  readonly labels: readonly string[]
  readonly value: number
}

/** One histogram series: its label values and its buckets. */
export interface HistogramRow {
  readonly labels: readonly string[]
  readonly buckets: Buckets
}

interface Described {
  /** Prometheus name, after the prefix. */
  readonly name: string
  readonly help: string
  /** Prometheus label names, in the order of each row's values. */
  readonly labels: readonly string[]
  /**
   * How many of `labels`, at their end, are the `labels.metadata` keys: names the host chose, which
   * OpenTelemetry takes as they are, never for an attribute of the gateway's that has the same label name.
   */
  readonly metadataLabels?: number
}

export interface ValueMetric extends Described {
  readonly type: 'counter' | 'gauge'
  /**
   * The OpenTelemetry instrument observing the same rows (an observable counter, or up-down counter for a
   * gauge), named after the namespace; none where a GenAI histogram already carries the figure.
   */
  readonly otel?: { readonly name: string; readonly unit: string } | undefined
  rows(): Iterable<Row>
}

export interface HistogramMetric extends Described {
  readonly type: 'histogram'
  rows(): Iterable<HistogramRow>
}

export type MetricDefinition = ValueMetric | HistogramMetric

/**
 * Every metric the gateway exports, each read from `book` when it is collected: the one table the
 * Prometheus and OpenTelemetry exports are both made from. Request metrics are the book's series merged
 * over the labels each metric keeps (the requests counter keeps all of them, the latency histograms fewer,
 * so that buckets do not multiply by every label). Log metrics exist only when the gateway keeps logs.
 *
 * @example
 * for (const metric of defineMetrics(book, queue.stats)) console.log(metric.name, [...metric.rows()])
 */
export function defineMetrics(book: MetricsBook, logs: LogStats | undefined): MetricDefinition[] {
  const metadata = book.settings.metadataKeys
  const definitions: MetricDefinition[] = [
    {
      type: 'counter',
      name: 'requests_total',
      help: 'Requests answered, by provider, model, surface, status class, cache status and outcome.',
      labels: ['provider', 'model', 'surface', 'status_class', 'cache', 'outcome', ...metadata],
      metadataLabels: metadata.length,
      otel: { name: 'requests', unit: '{request}' },
      rows: () =>
        sumBy(
          book,
          ({ labels: l }) => [
            l.provider,
            l.model,
            l.surface,
            l.statusClass,
            l.cache,
            l.outcome,
            ...l.metadata,
          ],
          (series) => series.requests,
        ),
    },
    {
      type: 'histogram',
      name: 'request_duration_seconds',
      help: 'Time from the request entering the gateway to its last byte sent (or the client leaving).',
      labels: ['provider', 'model', 'outcome'],
      rows: () => mergeBy(book, requestOutcome, (series) => series.duration),
    },
    {
      type: 'histogram',
      name: 'time_to_first_byte_seconds',
      help: 'Time from the request entering the gateway to its answer being ready to send.',
      labels: ['provider', 'model', 'outcome'],
      rows: () => mergeBy(book, requestOutcome, (series) => series.firstByte),
    },
    {
      type: 'histogram',
      name: 'time_to_first_token_seconds',
      help: 'Time from the request entering the gateway to the first token of a streamed answer.',
      labels: ['provider', 'model'],
      rows: () =>
        mergeBy(
          book,
          ({ labels: l }) => [l.provider, l.model],
          (series) => series.firstToken,
        ),
    },
    {
      type: 'counter',
      name: 'tokens_total',
      help: 'Tokens the providers reported, input (cache reads and writes included) and output.',
      labels: ['provider', 'model', 'direction', ...metadata],
      metadataLabels: metadata.length,
      rows: () => [
        ...sumBy(
          book,
          (series) => tokenLabels(series, 'input'),
          (series) => series.tokensIn,
        ),
        ...sumBy(
          book,
          (series) => tokenLabels(series, 'output'),
          (series) => series.tokensOut,
        ),
      ],
    },
    {
      type: 'counter',
      name: 'cost_usd_total',
      help: 'Cost in US dollars of the answers whose model has a price (cache hits cost nothing).',
      labels: ['provider', 'model', ...metadata],
      metadataLabels: metadata.length,
      otel: { name: 'cost', unit: '{USD}' },
      rows: () =>
        sumBy(
          book,
          ({ labels: l }) => [l.provider, l.model, ...l.metadata],
          (series) => series.cost,
        ),
    },
    {
      type: 'counter',
      name: 'upstream_retries_total',
      help: 'Failed upstream attempts followed by a retry, a fallback, a resumed stream, or targets skipped for an open circuit breaker.',
      labels: ['provider', 'action'],
      otel: { name: 'upstream.retries', unit: '{attempt}' },
      rows: () => book.retries.rows(),
    },
    {
      type: 'counter',
      name: 'rate_limited_total',
      help: 'Requests refused by a limit: rate (2003), spend (2041) or a policy spending cap (2131).',
      labels: ['code'],
      otel: { name: 'rate_limited', unit: '{request}' },
      rows: () => book.limited.rows(),
    },
    {
      type: 'counter',
      name: 'gateway_errors_total',
      help: "Requests answered with one of the gateway's own errors, or whose stream ended on one, by its code.",
      labels: ['code'],
      otel: { name: 'gateway.errors', unit: '{request}' },
      rows: () => book.errors.rows(),
    },
    {
      type: 'counter',
      name: 'guard_verdicts_total',
      help: 'Requests DLP or guardrails acted on, by the phase concerned and the strongest action taken.',
      labels: ['kind', 'phase', 'action'],
      otel: { name: 'guard.verdicts', unit: '{request}' },
      rows: () => book.guard.rows(),
    },
    {
      type: 'counter',
      name: 'store_errors_total',
      help: 'Store calls that failed or timed out; the requests went on by the store policy.',
      labels: ['store', 'operation', 'error'],
      otel: { name: 'store.errors', unit: '{call}' },
      rows: () => book.storeErrors.rows(),
    },
  ]
  if (logs === undefined) return definitions
  return [
    ...definitions,
    {
      type: 'gauge',
      name: 'log_queue_depth',
      help: 'Log records waiting to be written.',
      labels: [],
      otel: { name: 'log.queue.depth', unit: '{record}' },
      rows: () => [{ labels: [], value: logs.queued }],
    },
    {
      type: 'counter',
      name: 'log_written_total',
      help: 'Log records written to the store.',
      labels: [],
      otel: { name: 'log.written', unit: '{record}' },
      rows: () => [{ labels: [], value: logs.written }],
    },
    {
      type: 'counter',
      name: 'log_dropped_total',
      help: 'Log records lost: the queue was full, the store refused a batch, or a record failed to build.',
      labels: ['reason'],
      otel: { name: 'log.dropped', unit: '{record}' },
      rows: () => book.logDropped.rows(),
    },
  ]
}

function tokenLabels({ labels }: RequestSeries, direction: 'input' | 'output'): readonly string[] {
  return [labels.provider, labels.model, direction, ...labels.metadata]
}

function requestOutcome({ labels }: RequestSeries): readonly string[] {
  return [labels.provider, labels.model, labels.outcome]
}

/** The series' values summed over the labels `labelsOf` keeps; series that add nothing make no row. */
function sumBy(
  book: MetricsBook,
  labelsOf: (series: RequestSeries) => readonly string[],
  amountOf: (series: RequestSeries) => number,
): Row[] {
  const rows = new Map<string, { labels: readonly string[]; value: number }>()
  for (const series of book.series) {
    const value = amountOf(series)
    if (value === 0) continue
    const labels = labelsOf(series)
    const key = labels.join('\u0001')
    const row = rows.get(key)
    if (row === undefined) rows.set(key, { labels, value })
    else row.value += value
  }
  return [...rows.values()]
}

/** The series' buckets merged over the labels `labelsOf` keeps; empty ones make no row. */
function mergeBy(
  book: MetricsBook,
  labelsOf: (series: RequestSeries) => readonly string[],
  bucketsOf: (series: RequestSeries) => Buckets,
): HistogramRow[] {
  const rows = new Map<string, HistogramRow>()
  for (const series of book.series) {
    const buckets = bucketsOf(series)
    if (buckets.count === 0) continue
    const labels = labelsOf(series)
    const key = labels.join('\u0001')
    const row = rows.get(key)
    if (row === undefined) {
      const merged = new Buckets(buckets.bounds)
      merged.add(buckets)
      rows.set(key, { labels, buckets: merged })
    } else row.buckets.add(buckets)
  }
  return [...rows.values()]
}
