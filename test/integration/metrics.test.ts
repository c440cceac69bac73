import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdmin } from '../../src/admin/index.js'
import type { LogRecord } from '../../src/index.js'
import { createMockProvider, type MockProvider } from '../../src/testing/index.js'
import { type MountedGateway, mountGateway } from '../helpers/express-gateway.js'
import {
  cutAfter,
  OPENAI_DONE,
  openaiChunk,
  openaiCompletion,
  SSE_HEADERS,
  startFaultServer,
  writeEvents,
} from '../helpers/fault-server.js'
import { send } from '../helpers/http.js'
import { samplesOf } from '../helpers/prometheus.js'
import { eventually } from '../helpers/until.js'

const CHAT = '/ai/openai/chat/completions'
const EMAIL = ['ana.silva', 'example.com'].join('@')
const SAMPLE = fileURLToPath(new URL('../../test-results/metrics-sample.txt', import.meta.url))

function chat(text: string, options: { model?: string; stream?: boolean } = {}) {
  return {
    model: options.model ?? 'gpt-4o-mini',
    ...(options.stream ? { stream: true } : {}),
    messages: [{ role: 'user', content: text }],
  }
}

let mock: MockProvider
let app: MountedGateway

beforeAll(async () => {
  mock = await createMockProvider()
  app = await mountGateway({
    providers: { openai: { apiKey: 'sk-test', baseURL: `${mock.url}/v1` } },
    retries: { maxAttempts: 2, delayMs: 0 },
    cache: { ttl: 60 },
    rateLimit: { name: 'gpt-4o', limit: 1, window: 60, filter: { model: ['gpt-4o'] } },
    dlp: { policies: [{ id: 'flag-pii', profiles: ['pii'], check: ['request'], action: 'flag' }] },
    metrics: { labels: { metadata: ['team'] } },
  })
})

afterAll(async () => {
  await app.close()
  await mock.close()
})

describe('metrics of a gateway mounted in Express', () => {
  it('count JSON, SSE, a cache hit, a rate-limited request, a retry and a DLP flag exactly', async () => {
    const { url, gateway } = app
    const team = { 'cf-aig-metadata': '{"team":"search"}' }
    expect((await send(`${url}${CHAT}`, { body: chat('hello there'), headers: team })).status).toBe(200)
    const hit = await send(`${url}${CHAT}`, { body: chat('hello there'), headers: team })
    expect(hit.headers['cf-aig-cache-status']).toBe('HIT')
    const streamed = await send(`${url}${CHAT}`, { body: chat('stream this', { stream: true }) })
    expect(streamed.text).toContain('data: [DONE]')
    expect((await send(`${url}${CHAT}`, { body: chat('first', { model: 'gpt-4o' }) })).status).toBe(200)
    const limited = await send(`${url}${CHAT}`, { body: chat('second', { model: 'gpt-4o' }) })
    expect(limited.status).toBe(429)
    mock.enqueue({ status: 503 })
    expect((await send(`${url}${CHAT}`, { body: chat('retry me') })).status).toBe(200)
    const flagged = await send(`${url}${CHAT}`, { body: chat(`mail me at ${EMAIL}`) })
    expect(flagged.headers['cf-aig-dlp']).toContain('FLAG')

    // Each request is counted once its response is over and its usage read: wait for all seven.
    const text = await eventually(async () => {
      const exposition = await gateway.metrics!.text()
      return samplesOf(exposition).sum('aigw_requests_total') === 7 ? exposition : undefined
    })
    mkdirSync(fileURLToPath(new URL('.', `file://${SAMPLE}`)), { recursive: true })
    writeFileSync(SAMPLE, text)
    const metrics = samplesOf(text)

    const requests = (labels: Record<string, string>) =>
      metrics.value('aigw_requests_total', { provider: 'openai', surface: 'provider', ...labels })
    const mini = { model: 'gpt-4o-mini', status_class: '2xx' }
    expect(requests({ ...mini, cache: 'miss', outcome: 'success', team: 'search' })).toBe(1)
    expect(requests({ ...mini, cache: 'hit', outcome: 'cache_hit', team: 'search' })).toBe(1)
    // The stream, the retried request and the flagged one carried no metadata.
    expect(requests({ ...mini, cache: 'miss', outcome: 'success', team: 'none' })).toBe(3)
    expect(
      requests({ model: 'gpt-4o', status_class: '2xx', cache: 'miss', outcome: 'success', team: 'none' }),
    ).toBe(1)
    expect(
      requests({
        model: 'gpt-4o',
        status_class: '4xx',
        cache: 'miss',
        outcome: 'rate_limited',
        team: 'none',
      }),
    ).toBe(1)

    const duration = (model: string, outcome: string) => ({ provider: 'openai', model, outcome })
    expect(metrics.value('aigw_request_duration_seconds_count', duration('gpt-4o-mini', 'success'))).toBe(4)
    expect(metrics.value('aigw_request_duration_seconds_count', duration('gpt-4o-mini', 'cache_hit'))).toBe(1)
    expect(metrics.value('aigw_request_duration_seconds_count', duration('gpt-4o', 'rate_limited'))).toBe(1)
    expect(
      metrics.value('aigw_request_duration_seconds_bucket', {
        ...duration('gpt-4o-mini', 'success'),
        le: '+Inf',
      }),
    ).toBe(4)
    expect(metrics.sum('aigw_time_to_first_byte_seconds_count')).toBe(7)
    // Only the stream was read up to its first token.
    expect(
      metrics.value('aigw_time_to_first_token_seconds_count', { provider: 'openai', model: 'gpt-4o-mini' }),
    ).toBe(1)
    expect(metrics.sum('aigw_time_to_first_token_seconds_count')).toBe(1)

    expect(metrics.value('aigw_upstream_retries_total', { provider: 'openai', action: 'retry' })).toBe(1)
    expect(metrics.value('aigw_rate_limited_total', { code: '2003' })).toBe(1)
    expect(metrics.value('aigw_gateway_errors_total', { code: '2003' })).toBe(1)
    expect(metrics.sum('aigw_gateway_errors_total')).toBe(1)
    expect(metrics.value('aigw_guard_verdicts_total', { kind: 'dlp', phase: 'prompt', action: 'flag' })).toBe(
      1,
    )
    expect(metrics.sum('aigw_guard_verdicts_total')).toBe(1)

    // Tokens and cost are the log records' own figures, summed.
    await gateway.flushLogs()
    const { records } = await gateway.logs!.list({ limit: 100 })
    expect(records).toHaveLength(7)
    const total = (field: 'tokensIn' | 'tokensOut' | 'cost', model: string) =>
      records
        .filter((record: LogRecord) => record.model === model)
        .reduce((sum, record) => sum + (record[field] ?? 0), 0)
    for (const model of ['gpt-4o-mini', 'gpt-4o']) {
      const tokens = (direction: string) =>
        metrics.sum('aigw_tokens_total', { provider: 'openai', model, direction })
      expect(tokens('input')).toBe(total('tokensIn', model))
      expect(tokens('output')).toBe(total('tokensOut', model))
      expect(tokens('output')).toBeGreaterThan(0)
      expect(metrics.sum('aigw_cost_usd_total', { provider: 'openai', model })).toBeCloseTo(
        total('cost', model),
        12,
      )
    }
    const afterFlush = samplesOf(await gateway.metrics!.text())
    expect(afterFlush.value('aigw_log_written_total')).toBe(7)
    expect(afterFlush.value('aigw_log_queue_depth')).toBe(0)
  })
})

describe('metrics served by the admin API', () => {
  it('GET /metrics answers the exposition to a scraper with the admin token, and 401 without it', async () => {
    const token = 'metrics-scraper-token-0123456789'
    const admin = createAdmin({ metrics: app.gateway.metrics!, token })
    const get = (headers: Record<string, string>) =>
      admin.handle({
        method: 'GET',
        path: '/metrics',
        search: '',
        headers,
        signal: new AbortController().signal,
      })
    const scraped = await get({ authorization: `Bearer ${token}` })
    expect(scraped?.status).toBe(200)
    expect(scraped?.headers['content-type']).toBe(app.gateway.metrics!.contentType)
    expect(samplesOf(String(scraped?.body)).sum('aigw_requests_total')).toBe(7)
    expect((await get({}))?.status).toBe(401)
    const without = await createAdmin({ token }).handle({
      method: 'GET',
      path: '/metrics',
      search: '',
      headers: { authorization: `Bearer ${token}` },
      signal: new AbortController().signal,
    })
    expect(without?.status).toBe(404)
  })
})

describe('an answer reporting more tokens than any answer has', () => {
  it('is logged and counted as one without usage: tokens and cost null, none in the metrics', async () => {
    const upstream = await startFaultServer((_, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(openaiCompletion('hi').replace('"prompt_tokens":3', '"prompt_tokens":10000000000000000000'))
    })
    const mounted = await mountGateway({
      providers: { openai: { apiKey: 'sk-test', baseURL: `${upstream.url}/v1` } },
      metrics: true,
    })
    try {
      expect((await send(`${mounted.url}${CHAT}`, { body: chat('count me') })).status).toBe(200)
      const metrics = await eventually(async () => {
        const samples = samplesOf(await mounted.gateway.metrics!.text())
        return samples.sum('aigw_requests_total') === 1 ? samples : undefined
      })
      expect(metrics.sum('aigw_tokens_total')).toBe(0)
      expect(metrics.sum('aigw_cost_usd_total')).toBe(0)
      // The record is queued as the request is counted.
      await mounted.gateway.flushLogs()
      const { records } = await mounted.gateway.logs!.list({})
      expect(records).toMatchObject([{ tokensIn: null, tokensOut: null, cost: null }])
    } finally {
      await mounted.close()
      await upstream.close()
    }
  })
})

describe('a stream the provider cuts after its first event', () => {
  it('counts its error code among the gateway errors, as its log record has it', async () => {
    const upstream = await startFaultServer((_, res) => {
      res.writeHead(200, SSE_HEADERS)
      return cutAfter(res, [openaiChunk('half an answ')])
    })
    const mounted = await mountGateway({
      providers: { openai: { apiKey: 'sk-test', baseURL: `${upstream.url}/v1` } },
      metrics: true,
    })
    try {
      const cut = await send(`${mounted.url}${CHAT}`, { body: chat('cut me', { stream: true }) })
      expect(cut.status).toBe(200)
      const metrics = await eventually(async () => {
        const samples = samplesOf(await mounted.gateway.metrics!.text())
        return samples.sum('aigw_requests_total') === 1 ? samples : undefined
      })
      await mounted.gateway.flushLogs()
      const { records } = await mounted.gateway.logs!.list({})
      expect(records).toMatchObject([{ statusCode: 200, errorCode: 2108 }])
      expect(metrics.value('aigw_gateway_errors_total', { code: '2108' })).toBe(1)
    } finally {
      await mounted.close()
      await upstream.close()
    }
  })
})

describe('a stream DLP blocks on its answer', () => {
  it("is the gateway's error, not the provider's: outcome gateway_error in the record and the metrics", async () => {
    const upstream = await startFaultServer((_, res) =>
      writeEvents(res, [openaiChunk('sure, '), openaiChunk(`mail me at ${EMAIL}`, 'stop'), OPENAI_DONE]),
    )
    const mounted = await mountGateway({
      providers: { openai: { apiKey: 'sk-test', baseURL: `${upstream.url}/v1` } },
      dlp: { policies: [{ id: 'no-pii', profiles: ['pii'], check: ['response'], action: 'block' }] },
      metrics: true,
    })
    try {
      const blocked = await send(`${mounted.url}${CHAT}`, { body: chat('write to me', { stream: true }) })
      expect(blocked.status).toBe(200)
      expect(blocked.text).toContain('blocked due to DLP')
      const metrics = await eventually(async () => {
        const samples = samplesOf(await mounted.gateway.metrics!.text())
        return samples.sum('aigw_requests_total') === 1 ? samples : undefined
      })
      await mounted.gateway.flushLogs()
      const { records } = await mounted.gateway.logs!.list({})
      expect(records).toMatchObject([{ statusCode: 200, errorCode: 2030, outcome: 'gateway_error' }])
      expect(metrics.sum('aigw_requests_total', { outcome: 'gateway_error' })).toBe(1)
    } finally {
      await mounted.close()
      await upstream.close()
    }
  })
})
