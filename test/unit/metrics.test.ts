import { createServer } from 'node:http'
import { Readable } from 'node:stream'
import { metrics as otelMetrics } from '@opentelemetry/api'
import {
  AggregationTemporality,
  DataPointType,
  type Histogram,
  InMemoryMetricExporter,
  MeterProvider,
  type MetricData,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics'
import { Counter, Registry } from 'prom-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type CacheStore,
  createGateway,
  createMemoryLogStore,
  type Gateway,
  type GatewayOptions,
  GatewayOptionsError,
  type GatewayRequest,
  type LogStore,
  serveMetrics,
} from '../../src/index.js'
import { Buckets } from '../../src/metrics/buckets.js'
import { BoundedValues } from '../../src/metrics/labels.js'
import { loadPeer } from '../../src/peers.js'
import { createMockProvider, type MockProvider } from '../../src/testing/index.js'
import { closeServer, send, serverUrl } from '../helpers/http.js'
import { samplesOf } from '../helpers/prometheus.js'
import { eventually } from '../helpers/until.js'

let mock: MockProvider
beforeAll(async () => {
  mock = await createMockProvider()
})
afterAll(() => mock.close())

function gatewayFor(options: GatewayOptions = {}): Gateway {
  return createGateway({
    providers: { openai: { apiKey: 'sk-stored', baseURL: `${mock.url}/v1` } },
    metrics: true,
    ...options,
  })
}

function chat(
  text: string,
  options: { model?: string; stream?: boolean; path?: string; headers?: Record<string, string> } = {},
): GatewayRequest {
  return {
    method: 'POST',
    path: options.path ?? '/openai/chat/completions',
    search: '',
    headers: { 'content-type': 'application/json', ...options.headers },
    signal: new AbortController().signal,
    body: JSON.stringify({
      model: options.model ?? 'gpt-4o-mini',
      ...(options.stream ? { stream: true } : {}),
      messages: [{ role: 'user', content: text }],
    }),
  }
}

/** Sends a request and reads its answer to the end, as a client would; resolves its status. */
async function call(gateway: Gateway, request: GatewayRequest): Promise<number> {
  const response = await gateway.handle(request)
  if (response?.body instanceof Readable) for await (const _chunk of response.body);
  return response!.status
}

/** The metrics once `count` requests have been counted (each is, once its answer is over). */
async function scrape(gateway: Gateway, count: number, prefix = 'aigw_') {
  const text = await eventually(async () => {
    const exposition = await gateway.metrics!.text()
    return samplesOf(exposition).sum(`${prefix}requests_total`) === count ? exposition : undefined
  })
  return samplesOf(text)
}

describe('metrics option', () => {
  it('is off by default: no `gateway.metrics`', async () => {
    const gateway = createGateway()
    expect(gateway.metrics).toBeUndefined()
    await gateway.close()
  })

  it.each<[string, GatewayOptions['metrics'], string]>([
    [
      'a metadata key that is not a label name',
      { labels: { metadata: ['user-id'] } },
      'metrics.labels.metadata.0',
    ],
    ['a metadata key the metrics use', { labels: { metadata: ['model'] } }, 'metrics.labels.metadata.0'],
    ['a reserved label name', { labels: { metadata: ['__name'] } }, 'metrics.labels.metadata.0'],
    ['a key twice', { labels: { metadata: ['team', 'team'] } }, 'metrics.labels.metadata'],
    ['buckets out of order', { buckets: [1, 0.5] }, 'metrics.buckets'],
    ['a prefix with a dot', { prefix: 'ai.gw_' }, 'metrics.prefix'],
    ['something that is not a registry', { registry: {} as never }, 'metrics.registry'],
  ])('refuses %s, naming the option', (_name, metrics, path) => {
    expect(() => createGateway({ metrics })).toThrow(GatewayOptionsError)
    expect(() => createGateway({ metrics })).toThrow(path)
  })

  it('names the package an option needs when it is not installed', () => {
    expect(() => loadPeer('no-such-package-aigw', 'metrics')).toThrow(GatewayOptionsError)
    expect(() => loadPeer('no-such-package-aigw', 'metrics')).toThrow(
      'metrics needs the no-such-package-aigw package: npm install no-such-package-aigw',
    )
  })
})

describe('a registry of the host', () => {
  it("joins the host's metrics, refuses a second gateway under the same names, and frees them on close", async () => {
    const registry = new Registry()
    const own = new Counter({ name: 'host_jobs_total', help: 'Jobs.', registers: [registry] })
    own.inc(3)
    const gateway = gatewayFor({ metrics: { registry } })
    expect(await call(gateway, chat('hello'))).toBe(200)
    const metrics = await scrape(gateway, 1)
    expect(metrics.value('host_jobs_total')).toBe(3)
    expect(gateway.metrics!.contentType).toBe(registry.contentType)

    expect(() => gatewayFor({ metrics: { registry } })).toThrow(
      'metrics: the registry already has a metric named aigw_requests_total',
    )
    // Under another prefix, both count in the one registry, each its own requests.
    const second = gatewayFor({ metrics: { registry, prefix: 'second_' } })
    await call(second, chat('hello'))
    await call(second, chat('hello again'))
    const both = await scrape(second, 2, 'second_')
    expect(both.sum('aigw_requests_total')).toBe(1)
    expect(both.value('host_jobs_total')).toBe(3)

    await gateway.close()
    await second.close()
    expect(registry.getSingleMetric('aigw_requests_total')).toBeUndefined()
    expect(registry.getSingleMetric('second_requests_total')).toBeUndefined()
    const third = gatewayFor({ metrics: { registry } })
    await third.close()
  })

  it('frees every name of an OpenMetrics registry on close, counters renamed by a scrape included', async () => {
    // prom-client's types leave out the constructor's content type.
    const OpenMetricsRegistry = Registry as new (contentType: string) => Registry
    const registry = new OpenMetricsRegistry(Registry.OPENMETRICS_CONTENT_TYPE)
    const gateway = gatewayFor({ metrics: { registry } })
    expect(await gateway.metrics!.text()).toContain('# TYPE aigw_requests counter')
    await gateway.close()
    expect(registry.getMetricsAsArray()).toEqual([])
    await gatewayFor({ metrics: { registry } }).close()
  })

  it.each<[string, GatewayOptions]>([
    [
      'host steps that throw',
      {
        steps: () => {
          throw new Error('no steps today')
        },
      },
    ],
    [
      'a route in code naming a provider there is not',
      {
        routes: {
          definitions: [
            {
              name: 'support',
              elements: [
                { id: 'start', type: 'start', outputs: { next: { elementId: 'model' } } },
                {
                  id: 'model',
                  type: 'model',
                  properties: { provider: 'no-such-provider', model: 'm' },
                  outputs: { success: { elementId: 'end' } },
                },
                { id: 'end', type: 'end', outputs: {} },
              ],
            },
          ],
        },
      },
    ],
  ])('leaves the registry as it was when the gateway is refused for %s', (_name, options) => {
    const registry = new Registry()
    expect(() => gatewayFor({ ...options, metrics: { registry } })).toThrow()
    expect(registry.getMetricsAsArray()).toEqual([])
  })

  it("forgets the counts on the registry's resetMetrics()", async () => {
    const registry = new Registry()
    const gateway = gatewayFor({ metrics: { registry } })
    await call(gateway, chat('hello'))
    await scrape(gateway, 1)
    registry.resetMetrics()
    expect(samplesOf(await gateway.metrics!.text()).sum('aigw_requests_total')).toBe(0)
    await gateway.close()
  })
})

describe('the tally', () => {
  it('counts a value in the bucket whose bound it does not pass, as `le` reads', () => {
    const buckets = new Buckets([0.1, 1])
    for (const value of [0.05, 0.1, 0.5, 1, 3]) buckets.observe(value)
    expect([...buckets.counts]).toEqual([2, 2, 1])
    expect([buckets.count, buckets.sum]).toEqual([5, 4.65])
  })

  it('keeps `none` and `other` as the labels they are, whoever sends them', () => {
    const values = new BoundedValues(1)
    expect(values.names[values.of(undefined, true)]).toBe('none')
    expect(values.names[values.of('other', true)]).toBe('other')
    expect(values.names[values.of('none', true)]).toBe('none')
    expect(values.names[values.of('kept', true)]).toBe('kept')
    expect(values.names[values.of('late', true)]).toBe('other')
    expect(values.names).toEqual(['none', 'other', 'kept'])
  })
})

describe('label cardinality', () => {
  it('keeps 100 model names by default; later ones are `other`', async () => {
    const gateway = gatewayFor({ logs: false })
    for (let i = 0; i < 105; i++) expect(await call(gateway, chat('hi', { model: `model-${i}` }))).toBe(200)
    const metrics = await scrape(gateway, 105)
    const models = metrics.valuesOf('aigw_requests_total', 'model')
    expect(models).toHaveLength(101)
    expect(models).toContain('model-99')
    expect(models).not.toContain('model-100')
    expect(metrics.sum('aigw_requests_total', { model: 'other' })).toBe(5)
    await gateway.close()
  })

  it('gives a place only to values of requests that went through, metadata values included', async () => {
    const gateway = gatewayFor({ logs: false, metrics: { labels: { metadata: ['user'], maxValues: 2 } } })
    const as = (user: string) => ({ headers: { 'cf-aig-metadata': JSON.stringify({ user }) } })
    // A name the provider refuses takes no place from the names that work.
    mock.enqueue({ status: 404 })
    expect(await call(gateway, chat('hi', { model: 'made-up', ...as('mallory') }))).toBe(404)
    expect(await call(gateway, chat('hi', { model: 'a', ...as('ana') }))).toBe(200)
    expect(await call(gateway, chat('hi', { model: 'b', ...as('bo') }))).toBe(200)
    expect(await call(gateway, chat('hi', { model: 'c', ...as('cy') }))).toBe(200)
    expect(await call(gateway, chat('hi', { model: 'a', ...as('ana') }))).toBe(200)
    const metrics = await scrape(gateway, 5)
    expect(metrics.valuesOf('aigw_requests_total', 'model').sort()).toEqual(['a', 'b', 'other'])
    expect(metrics.valuesOf('aigw_requests_total', 'user').sort()).toEqual(['ana', 'bo', 'other'])
    expect(metrics.sum('aigw_requests_total', { model: 'a', user: 'ana' })).toBe(2)
    expect(metrics.sum('aigw_requests_total', { model: 'other', user: 'other' })).toBe(2)
    await gateway.close()
  })
})

describe('metadata labels', () => {
  it("read a key named as an object's method (`constructor`) from the request's own entries only", async () => {
    const gateway = gatewayFor({ logs: false, metrics: { labels: { metadata: ['constructor', 'team'] } } })
    const metadata = { headers: { 'cf-aig-metadata': '{"team":"search"}' } }
    expect(await call(gateway, chat('hi', metadata))).toBe(200)
    const metrics = await scrape(gateway, 1)
    expect(metrics.valuesOf('aigw_requests_total', 'constructor')).toEqual(['none'])
    expect(metrics.valuesOf('aigw_requests_total', 'team')).toEqual(['search'])
    await gateway.close()
  })
})

describe('what the events report', () => {
  it('counts fallbacks and targets skipped for an open breaker', async () => {
    const gateway = gatewayFor({
      fallbacks: { 'openai/gpt-4o-mini': ['openai/gpt-4o'] },
      breaker: { failures: 1 },
    })
    const compat = { path: '/compat/chat/completions', model: 'openai/gpt-4o-mini' }
    mock.enqueue({ status: 500 })
    expect(await call(gateway, chat('one', compat))).toBe(200)
    // The first model's breaker is open now: it is skipped.
    expect(await call(gateway, chat('two', compat))).toBe(200)
    const metrics = await scrape(gateway, 2)
    expect(metrics.value('aigw_upstream_retries_total', { provider: 'openai', action: 'fallback' })).toBe(1)
    expect(metrics.value('aigw_upstream_retries_total', { provider: 'openai', action: 'skip' })).toBe(1)
    expect(metrics.sum('aigw_requests_total', { surface: 'compat', model: 'gpt-4o' })).toBe(2)
    await gateway.close()
  })

  it('counts store failures and timeouts, and log records lost', async () => {
    const failingCache: CacheStore = {
      get: () => Promise.reject(new Error('cache down')),
      set: () => new Promise(() => {}),
      delete: () => undefined,
    }
    const failingLogs: LogStore = {
      ...createMemoryLogStore(),
      write: () => Promise.reject(new Error('disk full')),
    }
    const gateway = gatewayFor({
      cache: { ttl: 60, store: failingCache, storeTimeoutMs: 1 },
      logs: { store: failingLogs },
    })
    expect(await call(gateway, chat('hello'))).toBe(200)
    await gateway.flushLogs()
    const metrics = await eventually(async () => {
      const read = samplesOf(await gateway.metrics!.text())
      return read.sum('aigw_store_errors_total') === 3 ? read : undefined
    })
    const errors = (store: string, operation: string, error: string) =>
      metrics.value('aigw_store_errors_total', { store, operation, error })
    expect(errors('cache', 'get', 'failure')).toBe(1)
    expect(errors('cache', 'set', 'timeout')).toBe(1)
    expect(errors('logs', 'write', 'failure')).toBe(1)
    expect(metrics.value('aigw_log_dropped_total', { reason: 'write-failed' })).toBe(1)
    await gateway.close()
  })

  it('counts a guardrail block by phase, and its error code', async () => {
    const gateway = gatewayFor({
      guardrails: {
        classifiers: [{ type: 'rules', rules: [{ category: 'S6', keywords: ['dosage'] }] }],
        prompt: { S6: 'block' },
      },
    })
    expect(await call(gateway, chat('what dosage is safe'))).toBe(424)
    const metrics = await scrape(gateway, 1)
    expect(
      metrics.value('aigw_guard_verdicts_total', { kind: 'guardrail', phase: 'prompt', action: 'block' }),
    ).toBe(1)
    expect(metrics.value('aigw_gateway_errors_total', { code: '2016' })).toBe(1)
    expect(metrics.sum('aigw_rate_limited_total')).toBe(0)
    await gateway.close()
  })
})

describe('time to first token', () => {
  it('is measured for streams held to their first token, and not for streams sent from their first byte', async () => {
    const held = gatewayFor()
    const sent = gatewayFor({ streams: { commit: 'first-byte' } })
    for (const gateway of [held, sent])
      expect(await call(gateway, chat('stream', { stream: true }))).toBe(200)
    expect((await scrape(held, 1)).sum('aigw_time_to_first_token_seconds_count')).toBe(1)
    expect((await scrape(sent, 1)).sum('aigw_time_to_first_token_seconds_count')).toBe(0)
    expect((await scrape(sent, 1)).sum('aigw_time_to_first_byte_seconds_count')).toBe(1)
    await held.close()
    await sent.close()
  })
})

describe('OpenTelemetry', () => {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  // Exported when the test says so (forceFlush), never by the clock.
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })
  const provider = new MeterProvider({ readers: [reader] })
  afterAll(() => provider.shutdown())

  async function collected(): Promise<Map<string, MetricData>> {
    exporter.reset()
    await reader.forceFlush()
    const metrics =
      exporter
        .getMetrics()
        .at(-1)
        ?.scopeMetrics.flatMap((scope) => scope.metrics) ?? []
    return new Map(metrics.map((metric) => [metric.descriptor.name, metric]))
  }

  it('records the GenAI histograms and the same counts as Prometheus', async () => {
    const gateway = gatewayFor({
      metrics: { otel: { meter: provider.getMeter('test') } },
      rateLimit: { limit: 2, window: 60 },
    })
    expect(await call(gateway, chat('hello there'))).toBe(200)
    expect(await call(gateway, chat('stream this', { stream: true }))).toBe(200)
    expect(await call(gateway, chat('one too many'))).toBe(429)
    const prometheus = await scrape(gateway, 3)
    const otel = await collected()

    const duration = otel.get('gen_ai.client.operation.duration')!
    expect(duration.dataPointType).toBe(DataPointType.HISTOGRAM)
    expect(duration.descriptor.unit).toBe('s')
    const points = duration.dataPoints.map((point) => ({
      attributes: point.attributes,
      count: (point.value as Histogram).count,
    }))
    expect(points).toEqual(
      expect.arrayContaining([
        {
          attributes: {
            'gen_ai.operation.name': 'chat',
            'gen_ai.provider.name': 'openai',
            'gen_ai.request.model': 'gpt-4o-mini',
            'http.response.status_code': 200,
            'aigw.cache': 'none',
          },
          count: 2,
        },
        {
          attributes: {
            'gen_ai.operation.name': 'chat',
            'gen_ai.provider.name': 'openai',
            'gen_ai.request.model': 'gpt-4o-mini',
            'http.response.status_code': 429,
            'aigw.cache': 'none',
            'error.type': 'rate_limited',
          },
          count: 1,
        },
      ]),
    )
    expect(points).toHaveLength(2)

    const tokens = otel.get('gen_ai.client.token.usage')!
    const sumOf = (type: string) =>
      tokens.dataPoints
        .filter((point) => point.attributes['gen_ai.token.type'] === type)
        .reduce((sum, point) => sum + (point.value as Histogram).sum!, 0)
    expect(sumOf('input')).toBe(prometheus.sum('aigw_tokens_total', { direction: 'input' }))
    expect(sumOf('output')).toBe(prometheus.sum('aigw_tokens_total', { direction: 'output' }))
    const firstChunk = otel.get('gen_ai.client.operation.time_to_first_chunk')!
    expect(firstChunk.dataPoints.map((point) => (point.value as Histogram).count)).toEqual([1])

    // The counters are read from the same tally as Prometheus's.
    const requests = otel.get('aigw.requests')!
    expect(requests.dataPointType).toBe(DataPointType.SUM)
    expect(
      requests.dataPoints.map((point) => [point.attributes['aigw.outcome'], point.value]).sort(),
    ).toEqual([
      ['rate_limited', prometheus.sum('aigw_requests_total', { outcome: 'rate_limited' })],
      ['success', prometheus.sum('aigw_requests_total', { outcome: 'success' })],
    ])
    expect(requests.dataPoints[0]!.attributes).toMatchObject({
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      'aigw.surface': 'provider',
    })
    const limited = otel.get('aigw.rate_limited')!
    expect(limited.dataPoints.map((point) => [point.attributes['error.type'], point.value])).toEqual([
      ['2003', 1],
    ])
    expect(otel.get('aigw.cost')!.dataPoints[0]!.value).toBeCloseTo(prometheus.sum('aigw_cost_usd_total'), 12)
    expect(otel.get('aigw.log.queue.depth')!.dataPointType).toBe(DataPointType.SUM)

    await gateway.close()
  })

  it("keeps a metadata label's key as its attribute, even one named as a label of the gateway's", async () => {
    const gateway = gatewayFor({
      metrics: {
        otel: { meter: provider.getMeter('metadata') },
        labels: { metadata: ['code', 'operation'] },
      },
    })
    const metadata = { 'cf-aig-metadata': '{"code":"A-7","operation":"nightly"}' }
    expect(await call(gateway, chat('hello', { headers: metadata }))).toBe(200)
    await scrape(gateway, 1)
    const requests = (await collected()).get('aigw.requests')!
    expect(requests.dataPoints.map((point) => point.attributes)).toEqual([
      {
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'gpt-4o-mini',
        'aigw.surface': 'provider',
        'aigw.status_class': '2xx',
        'aigw.cache': 'none',
        'aigw.outcome': 'success',
        code: 'A-7',
        operation: 'nightly',
      },
    ])
    await gateway.close()
  })

  it('adds up the counts of two gateways on one meter, and keeps the other one after a close', async () => {
    const meter = provider.getMeter('two-gateways')
    const first = gatewayFor({ metrics: { otel: { meter } } })
    const second = gatewayFor({ metrics: { otel: { meter } } })
    expect(await call(first, chat('one'))).toBe(200)
    expect(await call(first, chat('two'))).toBe(200)
    expect(await call(second, chat('three'))).toBe(200)
    await scrape(first, 2)
    await scrape(second, 1)
    const requests = async () =>
      (await collected()).get('aigw.requests')?.dataPoints.map((point) => point.value)
    expect(await requests()).toEqual([3])
    await first.close()
    expect(await call(second, chat('four'))).toBe(200)
    await scrape(second, 2)
    expect(await requests()).toEqual([2])
    await second.close()
  })

  it('with `otel: true`, uses the global MeterProvider', async () => {
    otelMetrics.setGlobalMeterProvider(provider)
    try {
      const gateway = gatewayFor({ metrics: { otel: true, prefix: 'global_' } })
      expect(await call(gateway, chat('hello'))).toBe(200)
      await scrape(gateway, 1, 'global_')
      const otel = await collected()
      expect(otel.get('global.requests')!.dataPoints.map((point) => point.value)).toEqual([1])
      await gateway.close()
    } finally {
      otelMetrics.disable()
    }
  })
})

describe('serveMetrics', () => {
  it('answers GET and HEAD with the exposition, and other methods with 405', async () => {
    const gateway = gatewayFor()
    await call(gateway, chat('hello'))
    await scrape(gateway, 1)
    const server = createServer(serveMetrics(gateway.metrics!))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const url = `${serverUrl(server)}/metrics`
    const got = await send(url)
    expect(got.status).toBe(200)
    expect(got.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8')
    expect(samplesOf(got.text).sum('aigw_requests_total')).toBe(1)
    const head = await send(url, { method: 'HEAD' })
    expect([head.status, head.text]).toEqual([200, ''])
    const post = await send(url, { method: 'POST', body: '' })
    expect([post.status, post.headers.allow]).toEqual([405, 'GET, HEAD'])
    await closeServer(server)
    await gateway.close()
  })
})
