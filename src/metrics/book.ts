import type { LogOutcome } from '../logs/types.js'
import type { Metadata } from '../settings.js'
import type { Surface } from '../types.js'
import { Buckets } from './buckets.js'
import { BoundedValues, statusClass } from './labels.js'

/** Whether the cache answered (`hit`), was asked in vain (`miss`), or did not apply (`none`). */
export type CacheLabel = 'none' | 'hit' | 'miss'

/** The labels one group of requests shares, each from a bounded set. */
export interface RequestLabels {
  /** `provider`, `compat` or `universal`. */
  readonly surface: string
  readonly provider: string
  readonly model: string
  /** The status sent (499 when the client left); Prometheus gets its class, OpenTelemetry the status. */
  readonly status: number
  readonly statusClass: string
  /** `hit`, `miss`, or `none` for a request the cache did not apply to. */
  readonly cache: string
  /** The log record's outcome: `success`, `cache_hit`, `rate_limited`, ... */
  readonly outcome: string
  /** The values of the metadata keys the options list, in their order. */
  readonly metadata: readonly string[]
}

/** What requests with the same labels added up to. */
export class RequestSeries {
  requests = 0
  tokensIn = 0
  tokensOut = 0
  /** USD, of the requests whose price was known. */
  cost = 0
  readonly duration: Buckets
  readonly firstByte: Buckets
  readonly firstToken: Buckets
  /** What the OpenTelemetry side made for this series once (its attribute sets), so requests make none. */
  otel: unknown

  constructor(
    readonly labels: RequestLabels,
    bounds: readonly number[],
  ) {
    this.duration = new Buckets(bounds)
    this.firstByte = new Buckets(bounds)
    this.firstToken = new Buckets(bounds)
  }
}

/** A count per set of label values, for what events report (retries, refusals, store failures). */
export class Tally {
  readonly #rows = new Map<string, { readonly labels: readonly string[]; value: number }>()

  add(labels: readonly string[], by = 1): void {
    const key = labels.join('\u0001')
    const row = this.#rows.get(key)
    if (row === undefined) this.#rows.set(key, { labels, value: by })
    else row.value += by
  }

  rows(): IterableIterator<{ readonly labels: readonly string[]; readonly value: number }> {
    return this.#rows.values()
  }

  clear(): void {
    this.#rows.clear()
  }
}

export interface BookSettings {
  /** Metadata keys counted as labels, in this order. */
  readonly metadataKeys: readonly string[]
  /** Distinct values kept per label (models, each metadata key's values) before `other`. */
  readonly maxValues: number
  /** Upper bounds, in seconds, of the latency buckets. */
  readonly buckets: readonly number[]
}

// Each label's index within its few values, so that a series is found by one number. The numbers are
// bounded: a key stays far below 2^53 however many models, providers and statuses there are.
const SURFACES: Readonly<Record<Surface['kind'], number>> = { provider: 0, compat: 1, universal: 2 }
const CACHES: Readonly<Record<CacheLabel, number>> = { none: 0, hit: 1, miss: 2 }
const OUTCOMES: Readonly<Record<LogOutcome, number>> = {
  success: 0,
  cache_hit: 1,
  rate_limited: 2,
  blocked: 3,
  upstream_error: 4,
  gateway_error: 5,
  aborted: 6,
}
// Providers are the configured ones: far fewer than this, which only bounds a key.
const MAX_PROVIDERS = 1000

/** A level of the series index: series by key, or (with metadata labels) the next level by key. */
type Level = Map<number, RequestSeries | Level>

/**
 * One gateway's metrics as plain numbers: what each request added, what events reported. The one source
 * both exports read, Prometheus at each scrape and OpenTelemetry's observable instruments at each
 * collection, so the two never disagree. A request finds its series by a number made from its labels'
 * indices (a string key built per request would cost more than the rest of the counting together) and
 * adds to it; labels are turned into the exports' shapes only when someone reads them.
 */
export class MetricsBook {
  /** Every request series, in the order they were first seen. */
  readonly series: RequestSeries[] = []
  /** provider, action (`retry`, `fallback`, `skip`, `resume`). */
  readonly retries = new Tally()
  /** code: the refusals of rate, spend and policy limits. */
  readonly limited = new Tally()
  /** code: every request answered with one of the gateway's own errors. */
  readonly errors = new Tally()
  /** kind (`dlp`, `guardrail`), phase (`prompt`, `answer`, `both`), action. */
  readonly guard = new Tally()
  /** reason (`queue-full`, `write-failed`, `build-failed`, `store-stalled`). */
  readonly logDropped = new Tally()
  /** store, operation, error (`timeout`, `failure`). */
  readonly storeErrors = new Tally()
  readonly #providers = new BoundedValues(MAX_PROVIDERS)
  readonly #models: BoundedValues
  readonly #metadata: readonly BoundedValues[]
  #index: Level = new Map()

  constructor(readonly settings: BookSettings) {
    this.#models = new BoundedValues(settings.maxValues)
    this.#metadata = settings.metadataKeys.map(() => new BoundedValues(settings.maxValues))
  }

  /**
   * The series of a request, made the first time its labels are seen. `admit`: the request succeeded, so
   * its model and metadata values may take a place among the kept ones (see `BoundedValues`).
   */
  seriesOf(
    surface: Surface['kind'],
    provider: string | undefined,
    model: string | undefined,
    status: number,
    cache: CacheLabel,
    outcome: LogOutcome,
    metadata: Metadata | undefined,
    admit: boolean,
  ): RequestSeries {
    const providerId = this.#providers.of(provider, true)
    const modelId = this.#models.of(model, admit)
    let key = (modelId * (MAX_PROVIDERS + 2) + providerId) * 1000 + (status % 1000)
    key = ((key * 3 + SURFACES[surface]) * 3 + CACHES[cache]) * 8 + OUTCOMES[outcome]
    // Metadata labels are levels of their own: their values could not all fit in one number.
    const keys = this.settings.metadataKeys
    let level = this.#index
    for (let at = 0; at < keys.length; at++) {
      let next = level.get(key) as Level | undefined
      if (next === undefined) {
        next = new Map()
        level.set(key, next)
      }
      level = next
      key = this.#metadataId(at, metadata, admit)
    }
    let series = level.get(key) as RequestSeries | undefined
    if (series === undefined) {
      const labels: RequestLabels = {
        surface,
        provider: this.#providers.names[providerId]!,
        model: this.#models.names[modelId]!,
        status,
        statusClass: statusClass(status),
        cache,
        outcome,
        // Asked again (the same answers): a request whose series exists allocates no list of them.
        metadata: keys.map((_key, at) => this.#metadata[at]!.names[this.#metadataId(at, metadata, admit)]!),
      }
      series = new RequestSeries(labels, this.settings.buckets)
      level.set(key, series)
      this.series.push(series)
    }
    return series
  }

  #metadataId(at: number, metadata: Metadata | undefined, admit: boolean): number {
    const key = this.settings.metadataKeys[at]!
    // The request's own entries only: a key may be any label name, `constructor` or `toString` included,
    // which every object answers with a function of its prototype's.
    const value = metadata !== undefined && Object.hasOwn(metadata, key) ? metadata[key] : undefined
    return this.#metadata[at]!.of(value === undefined ? undefined : String(value), admit)
  }

  /** Forgets every count (prom-client's `registry.resetMetrics()`); the labels' caps keep what they hold. */
  reset(): void {
    this.series.length = 0
    this.#index = new Map()
    for (const tally of [
      this.retries,
      this.limited,
      this.errors,
      this.guard,
      this.logDropped,
      this.storeErrors,
    ]) {
      tally.clear()
    }
  }
}
