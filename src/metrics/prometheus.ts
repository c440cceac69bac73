import { GatewayOptionsError } from '../errors.js'
import { loadPeer } from '../peers.js'
import type { HistogramMetric, MetricDefinition, ValueMetric } from './definitions.js'

/**
 * What the metrics need of a prom-client `Registry`, written out so that the published types do not need
 * prom-client (an optional peer): prom-client's default `register`, or any `new Registry()`, is one.
 */
export interface PrometheusRegistry {
  registerMetric(metric: never): void
  getSingleMetric(name: string): unknown
  removeSingleMetric(name: string): void
  metrics(): Promise<string>
  readonly contentType: string
}

/** One sample as prom-client's registry formats it. */
interface Sample {
  readonly metricName?: string
  readonly labels: Record<string, string | number>
  readonly value: number
}

/**
 * A metric as prom-client's registry reads it (`get()`, as its own metric classes answer), computed from
 * the gateway's tally when scraped. prom-client's classes would hash their labels on every increment, a
 * cost each request would pay; these cost nothing until someone reads them.
 */
class Collected {
  readonly aggregator = 'sum'

  constructor(
    // prom-client renames counters in place for an OpenMetrics registry.
    public name: string,
    readonly help: string,
    readonly type: MetricDefinition['type'],
    private readonly samples: () => Sample[],
    readonly reset: () => void,
  ) {}

  get() {
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      values: this.samples(),
      aggregator: this.aggregator,
    })
  }
}

/** Metrics registered in a prom-client registry, and how to take them out again. */
export interface PrometheusExport {
  readonly registry: PrometheusRegistry
  /** Removes the gateway's metrics from the registry (`gateway.close()`), so another may take the names. */
  close(): void
}

/**
 * Registers every metric of `definitions` in `registry` under `prefix`: all of them, or none when one of
 * the names is taken (two gateways on one registry need different prefixes). Without a registry, the
 * gateway gets a new one of its own, from prom-client (an optional peer, loaded here).
 *
 * @example
 * exportToPrometheus(undefined, 'aigw_', defineMetrics(book, undefined), () => book.reset())
 */
export function exportToPrometheus(
  given: PrometheusRegistry | undefined,
  prefix: string,
  definitions: readonly MetricDefinition[],
  reset: () => void,
): PrometheusExport {
  const registry = given ?? newRegistry()
  const collected = definitions.map(
    (definition) =>
      new Collected(
        `${prefix}${definition.name}`,
        definition.help,
        definition.type,
        definition.type === 'histogram'
          ? () => histogramSamples(`${prefix}${definition.name}`, definition)
          : () => valueSamples(definition),
        reset,
      ),
  )
  const taken = collected.find((metric) => registry.getSingleMetric(metric.name) !== undefined)
  if (taken !== undefined) {
    throw new GatewayOptionsError(
      `metrics: the registry already has a metric named ${taken.name}; give this gateway another metrics.prefix, or a registry of its own`,
    )
  }
  for (const metric of collected) registry.registerMetric(metric as never)
  // Each scrape of an OpenMetrics registry renames its counters (`name` loses its `_total`), but the
  // registry keeps them under the names they were registered with: those are the names to remove.
  const registered = collected.map((metric) => ({ name: metric.name, metric }))
  return {
    registry,
    close() {
      for (const { name, metric } of registered) {
        if (registry.getSingleMetric(name) === metric) registry.removeSingleMetric(name)
      }
    },
  }
}

function newRegistry(): PrometheusRegistry {
  const { Registry } = loadPeer<{ Registry: new () => PrometheusRegistry }>('prom-client', 'metrics')
  return new Registry()
}

function labelsOf(names: readonly string[], values: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {}
  for (let at = 0; at < names.length; at++) labels[names[at]!] = values[at]!
  return labels
}

function valueSamples(definition: ValueMetric): Sample[] {
  const samples: Sample[] = []
  for (const row of definition.rows()) {
    samples.push({ labels: labelsOf(definition.labels, row.labels), value: row.value })
  }
  return samples
}

/** A histogram's samples: cumulative `_bucket`s up to `+Inf`, then `_sum` and `_count`, per series. */
function histogramSamples(name: string, definition: HistogramMetric): Sample[] {
  const samples: Sample[] = []
  for (const { labels: values, buckets } of definition.rows()) {
    const labels = labelsOf(definition.labels, values)
    let cumulative = 0
    for (let at = 0; at < buckets.counts.length; at++) {
      cumulative += buckets.counts[at]!
      const le = at < buckets.bounds.length ? buckets.bounds[at]! : '+Inf'
      samples.push({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: cumulative })
    }
    samples.push({ metricName: `${name}_sum`, labels, value: buckets.sum })
    samples.push({ metricName: `${name}_count`, labels, value: buckets.count })
  }
  return samples
}
