import { StoreTimeoutError } from '../errors.js'
import type { GatewayEmitter, LogDroppedEvent, StoreErrorEvent, UpstreamRetryEvent } from '../events.js'
import type { LogQueue } from '../logs/recorder.js'
import type { ResolvedMetricsOptions } from '../options.js'
import { MetricsBook } from './book.js'
import { DURATION_BUCKETS } from './buckets.js'
import { defineMetrics } from './definitions.js'
import { exportToOtel, meterOf } from './otel.js'
import { exportToPrometheus } from './prometheus.js'
import { createRecorder, type MetricsRecorder } from './recorder.js'

/**
 * A gateway's metrics in the Prometheus exposition format (`gateway.metrics`), for any route to serve:
 * `text()` read at the time of the call, sent with `contentType`.
 *
 * @example
 * app.get('/metrics', async (_req, res) => {
 *   res.type(gateway.metrics!.contentType).send(await gateway.metrics!.text())
 * })
 */
export interface GatewayMetrics {
  /** The registry's content type: the text format 0.0.4, or OpenMetrics for an OpenMetrics registry. */
  readonly contentType: string
  /** Every metric of the registry, the gateway's and (with a registry of the host's) the host's own. */
  text(): Promise<string>
}

/** What the gateway makes of its `metrics` option. */
export interface Metrics {
  /** For the `record` step: counts each request once it is over. */
  readonly recorder: MetricsRecorder
  readonly exposition: GatewayMetrics
  /** Stops counting events and takes the metrics out of the registry and the meter. */
  close(): void
}

/**
 * The gateway's metrics, from its `metrics` option: one tally (`MetricsBook`) fed by each request's end and
 * by the gateway's events, exported to a prom-client registry and, when asked, an OpenTelemetry meter.
 * Throws a `GatewayOptionsError` when a package it needs is missing or a metric name is taken.
 *
 * @example
 * const metrics = createMetrics(parseOptions({ metrics: true }).metrics, { events, logs: queue })
 */
export function createMetrics(
  options: ResolvedMetricsOptions,
  services: { readonly events: GatewayEmitter; readonly logs: LogQueue | undefined },
): Metrics {
  const buckets = options.buckets ?? DURATION_BUCKETS
  const book = new MetricsBook({
    metadataKeys: options.labels.metadata,
    maxValues: options.labels.maxValues,
    buckets,
  })
  const definitions = defineMetrics(book, services.logs?.stats)
  const prometheus = exportToPrometheus(options.registry, options.prefix, definitions, () => book.reset())
  let otel: ReturnType<typeof exportToOtel> | undefined
  try {
    otel =
      options.otel === false
        ? undefined
        : exportToOtel(meterOf(options.otel), otelNamespace(options.prefix), definitions, buckets)
  } catch (error) {
    prometheus.close()
    throw error
  }
  const stopCounting = countEvents(book, services.events)
  const { registry } = prometheus
  return {
    recorder: createRecorder(book, otel?.sink),
    exposition: {
      get contentType() {
        return registry.contentType
      },
      text: () => registry.metrics(),
    },
    close() {
      stopCounting()
      prometheus.close()
      otel?.close()
    },
  }
}

/** `aigw_` → `aigw.`: OpenTelemetry separates namespaces with dots. */
function otelNamespace(prefix: string): string {
  if (prefix === '') return ''
  return prefix.endsWith('_') ? `${prefix.slice(0, -1)}.` : `${prefix}.`
}

/**
 * Counts what the gateway's events report and a request's end does not see: retries, fallbacks and
 * skipped targets; store failures; lost log records. These are rare, so each may allocate its labels.
 */
function countEvents(book: MetricsBook, events: GatewayEmitter): () => void {
  const onRetry = (event: UpstreamRetryEvent) => book.retries.add([event.provider, event.action])
  const onStoreError = (event: StoreErrorEvent) => {
    const kind = event.error instanceof StoreTimeoutError ? 'timeout' : 'failure'
    book.storeErrors.add([event.store, event.operation, kind])
  }
  const onDropped = (event: LogDroppedEvent) => book.logDropped.add([event.reason], event.count)
  events.on('upstream:retry', onRetry)
  events.on('store:error', onStoreError)
  events.on('log:dropped', onDropped)
  return () => {
    events.off('upstream:retry', onRetry)
    events.off('store:error', onStoreError)
    events.off('log:dropped', onDropped)
  }
}
