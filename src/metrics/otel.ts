import type {
  Attributes,
  Histogram,
  Meter,
  ObservableCallback,
  ObservableCounter,
  ObservableUpDownCounter,
} from '@opentelemetry/api'
import type { RequestFigures } from '../logs/recorder.js'
import { loadPeer } from '../peers.js'
import { operationOf } from '../telemetry.js'
import type { GatewayContext } from '../types.js'
import type { RequestSeries } from './book.js'
import { TOKEN_BUCKETS } from './buckets.js'
import type { MetricDefinition, Row, ValueMetric } from './definitions.js'
import type { RequestSink } from './recorder.js'

type OtelApi = typeof import('@opentelemetry/api')

/**
 * Prometheus label names as OpenTelemetry attributes: the GenAI semantic conventions' where they have one,
 * the gateway's own namespace otherwise. Metadata labels keep their key (see `attributeNames`).
 */
const ATTRIBUTES: Readonly<Record<string, string>> = {
  provider: 'gen_ai.provider.name',
  model: 'gen_ai.request.model',
  direction: 'gen_ai.token.type',
  code: 'error.type',
  error: 'error.type',
  surface: 'aigw.surface',
  status_class: 'aigw.status_class',
  cache: 'aigw.cache',
  outcome: 'aigw.outcome',
  action: 'aigw.action',
  kind: 'aigw.guard.kind',
  phase: 'aigw.guard.phase',
  reason: 'aigw.reason',
  store: 'aigw.store',
  operation: 'aigw.store.operation',
}

/** The attribute sets one series records with, per GenAI operation, made at its first request. */
interface SeriesAttributes {
  readonly request: Attributes
  readonly input: Attributes
  readonly output: Attributes
}

/** Instruments on a meter, and how to stop observing. */
export interface OtelExport {
  /** Records each request into the GenAI histograms. */
  readonly sink: RequestSink
  close(): void
}

/**
 * The meter the `metrics.otel` option names: its own `{ meter }`, or with `true` the global
 * MeterProvider's, from `@opentelemetry/api` (an optional peer, loaded here).
 *
 * @example
 * meterOf(true) // metrics.getMeter('ai-gateway-middleware')
 */
export function meterOf(option: true | { meter: object }): Meter {
  if (option !== true) return option.meter as Meter
  return loadPeer<OtelApi>('@opentelemetry/api', 'metrics.otel').metrics.getMeter('ai-gateway-middleware')
}

/**
 * The metrics through OpenTelemetry. Counts come from the same table as Prometheus's, as observable
 * instruments read at each collection (a request pays nothing for them). Distributions are the GenAI
 * semantic conventions' histograms (`gen_ai.client.operation.duration`, `gen_ai.client.token.usage`,
 * `gen_ai.client.operation.time_to_first_chunk`) and the time to the first byte, recorded per request with
 * attribute sets made once per series: OpenTelemetry has no observable histogram.
 *
 * @example
 * exportToOtel(meterOf(true), 'aigw.', defineMetrics(book, undefined), DURATION_BUCKETS)
 */
export function exportToOtel(
  meter: Meter,
  namespace: string,
  definitions: readonly MetricDefinition[],
  bounds: readonly number[],
): OtelExport {
  const observing: (() => void)[] = []
  for (const definition of definitions) {
    if (definition.type === 'histogram' || definition.otel === undefined) continue
    const names = attributeNames(definition)
    observing.push(
      observe(meter, `${namespace}${definition.otel.name}`, definition, {
        rows: () => definition.rows(),
        attributes: (row) => attributesOf(names, row.labels),
      }),
    )
  }
  const seconds = { unit: 's', advice: { explicitBucketBoundaries: [...bounds] } }
  const duration = meter.createHistogram('gen_ai.client.operation.duration', {
    description: 'GenAI operation duration, to the last byte sent.',
    ...seconds,
  })
  const firstChunk = meter.createHistogram('gen_ai.client.operation.time_to_first_chunk', {
    description: 'Time to the first token of a streamed answer.',
    ...seconds,
  })
  const firstByte = meter.createHistogram(`${namespace}time_to_first_byte`, {
    description: 'Time to the answer being ready to send.',
    ...seconds,
  })
  const tokens = meter.createHistogram('gen_ai.client.token.usage', {
    description: 'Number of input and output tokens used.',
    unit: '{token}',
    advice: { explicitBucketBoundaries: [...TOKEN_BUCKETS] },
  })
  return {
    sink: {
      record(series, ctx, end, figures) {
        const attributes = attributesFor(series, ctx)
        duration.record(end.durationMs / 1000, attributes.request)
        const { firstByteMs, firstTokenMs } = ctx.metrics
        if (firstByteMs !== undefined) firstByte.record(firstByteMs / 1000, attributes.request)
        if (firstTokenMs !== undefined) firstChunk.record(firstTokenMs / 1000, attributes.request)
        recordTokens(tokens, series, figures, attributes)
      },
    },
    close() {
      for (const stop of observing) stop()
    },
  }
}

/** One gateway's rows of an observable instrument, as attribute sets. */
interface RowSource {
  rows(): Iterable<Row>
  attributes(row: Row): Attributes
}

/** An observable instrument of a meter, and the gateways whose rows it reports. */
interface SharedInstrument {
  readonly instrument: ObservableCounter | ObservableUpDownCounter
  readonly sources: Set<RowSource>
  readonly callback: ObservableCallback
}

// The observable instruments each meter has from the gateways, by name. The SDK keeps one value per
// attribute set of an observable instrument, the last one observed: two gateways on one meter (two mounts
// with `otel: true`) that each observed their own count under the same names would report one gateway's
// count, not their sum. So the gateways on a meter share each instrument, and its one callback adds up
// their rows, as the histograms they record to add up their requests.
const instrumentsOf = new WeakMap<Meter, Map<string, SharedInstrument>>()

/**
 * Observes `source`'s rows through the instrument named `name` on `meter`, made for the first gateway that
 * needs it and shared with the next ones. Returns how to stop: the last gateway to stop removes the callback.
 */
function observe(meter: Meter, name: string, definition: ValueMetric, source: RowSource): () => void {
  let instruments = instrumentsOf.get(meter)
  if (instruments === undefined) {
    instruments = new Map()
    instrumentsOf.set(meter, instruments)
  }
  let shared = instruments.get(name)
  if (shared === undefined) {
    const options = { description: definition.help, unit: definition.otel!.unit }
    const instrument =
      definition.type === 'counter'
        ? meter.createObservableCounter(name, options)
        : meter.createObservableUpDownCounter(name, options)
    const sources = new Set<RowSource>()
    const callback: ObservableCallback = (result) => {
      if (sources.size === 1) {
        for (const only of sources)
          for (const row of only.rows()) result.observe(row.value, only.attributes(row))
        return
      }
      for (const { value, attributes } of summed(sources)) result.observe(value, attributes)
    }
    instrument.addCallback(callback)
    shared = { instrument, sources, callback }
    instruments.set(name, shared)
  }
  const { sources } = shared
  sources.add(source)
  return () => {
    if (!sources.delete(source) || sources.size > 0) return
    shared.instrument.removeCallback(shared.callback)
    instruments.delete(name)
  }
}

/** The rows of several gateways, added up by attribute set (whatever the order of its attributes). */
function summed(sources: Iterable<RowSource>): Iterable<{ value: number; attributes: Attributes }> {
  const sums = new Map<string, { value: number; attributes: Attributes }>()
  for (const source of sources) {
    for (const row of source.rows()) {
      const attributes = source.attributes(row)
      const key = JSON.stringify(Object.entries(attributes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      const sum = sums.get(key)
      if (sum === undefined) sums.set(key, { value: row.value, attributes })
      else sum.value += row.value
    }
  }
  return sums.values()
}

/** Tokens the provider reported; a cache hit used none, and is not a usage to count. */
function recordTokens(
  tokens: Histogram,
  series: RequestSeries,
  figures: RequestFigures,
  attributes: SeriesAttributes,
): void {
  if (series.labels.cache === 'hit') return
  if (figures.tokensIn !== null) tokens.record(figures.tokensIn, attributes.input)
  if (figures.tokensOut !== null) tokens.record(figures.tokensOut, attributes.output)
}

function attributesFor(series: RequestSeries, ctx: GatewayContext): SeriesAttributes {
  const operation = operationOf(ctx)
  let byOperation = series.otel as Map<string, SeriesAttributes> | undefined
  if (byOperation === undefined) {
    byOperation = new Map()
    series.otel = byOperation
  }
  let attributes = byOperation.get(operation)
  if (attributes === undefined) {
    const { labels } = series
    const failed = labels.outcome !== 'success' && labels.outcome !== 'cache_hit'
    const request: Attributes = {
      'gen_ai.operation.name': operation,
      'gen_ai.provider.name': labels.provider,
      'gen_ai.request.model': labels.model,
      'http.response.status_code': labels.status,
      'aigw.cache': labels.cache,
      // The semantic conventions' low-cardinality error class: how the request failed.
      ...(failed ? { 'error.type': labels.outcome } : {}),
    }
    attributes = {
      request,
      input: { ...request, 'gen_ai.token.type': 'input' },
      output: { ...request, 'gen_ai.token.type': 'output' },
    }
    byOperation.set(operation, attributes)
  }
  return attributes
}

/**
 * The attribute names of a metric's labels. A metadata key is the host's name for a client's value: it stays
 * as it is, so that a key `code` or `operation` never reports a client's value as `error.type` or
 * `aigw.store.operation`. Keys are label names (no dots), so they meet no dotted attribute of the gateway's.
 */
function attributeNames(definition: ValueMetric): string[] {
  const own = definition.labels.length - (definition.metadataLabels ?? 0)
  return definition.labels.map((label, at) => (at < own ? (ATTRIBUTES[label] ?? label) : label))
}

function attributesOf(names: readonly string[], values: readonly string[]): Attributes {
  const attributes: Attributes = {}
  for (let at = 0; at < names.length; at++) attributes[names[at]!] = values[at]
  return attributes
}
