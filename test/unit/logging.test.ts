import { context, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { EventEmitter as GatewayEvents } from 'eventemitter3'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { StoreTimeoutError } from '../../src/errors.js'
import type { GatewayEmitter, LogDroppedEvent, StoreErrorEvent } from '../../src/events.js'
import {
  createGateway,
  createKeyRing,
  createMemoryLogStore,
  createMemorySecretStore,
  type GatewayOptions,
  type GatewayRequest,
  type LogGuard,
  type LogRecord,
  type LogStore,
  type Step,
} from '../../src/index.js'
import { CapturedRecord, type RawBodies } from '../../src/logs/captured.js'
import { LogQueue, redact } from '../../src/logs/recorder.js'
import { createScrubber } from '../../src/secrets.js'
import { createMockProvider, type MockProvider } from '../../src/testing/index.js'
import { sampleRecord } from '../helpers/log-store.js'

let mock: MockProvider
beforeAll(async () => {
  mock = await createMockProvider()
})
afterAll(() => mock.close())

function gatewayFor(options: GatewayOptions = {}) {
  return createGateway({
    providers: { openai: { apiKey: 'sk-stored', baseURL: `${mock.url}/v1` } },
    ...options,
  })
}

function chat(text: string, headers: Record<string, string> = {}): GatewayRequest {
  return {
    method: 'POST',
    path: '/openai/chat/completions',
    search: '',
    headers: { 'content-type': 'application/json', ...headers },
    signal: new AbortController().signal,
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] }),
  }
}

/**
 * A log store whose writes wait until released, to stand for a slow or stalled database. `writing` resolves
 * when the first write has begun.
 */
function stalledStore(): LogStore & { release(): void; batches: number[]; writing: Promise<void> } {
  const inner = createMemoryLogStore()
  let release!: () => void
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  let began!: () => void
  const writing = new Promise<void>((resolve) => {
    began = resolve
  })
  const batches: number[] = []
  return {
    ...inner,
    batches,
    writing,
    release: () => release(),
    async write(records) {
      batches.push(records.length)
      began()
      await gate
      await inner.write(records)
    },
  }
}

describe('request logs', () => {
  it('answer without waiting for the log store, in batches of batchSize', async () => {
    const store = stalledStore()
    // Batches go out by size alone here: an interval short enough to fire during the requests would send
    // a smaller batch first whenever the machine is slow.
    const gateway = gatewayFor({ logs: { store, batchSize: 3, flushIntervalMs: 600_000 } })
    for (let i = 0; i < 7; i++) expect((await gateway.handle(chat(`n${i}`)))?.status).toBe(200)
    await store.writing
    // One batch of three is stuck in the store; the rest wait in the queue. Every response came back.
    expect(store.batches).toEqual([3])
    expect(gateway.stats().logs).toMatchObject({ queued: 4, written: 0, dropped: 0 })
    store.release()
    await gateway.flushLogs()
    expect(store.batches).toEqual([3, 3, 1])
    expect(gateway.stats().logs).toMatchObject({ queued: 0, written: 7, dropped: 0 })
    await gateway.close()
  })

  it('drop what does not fit in the queue, and count it, rather than grow', async () => {
    const store = stalledStore()
    const gateway = gatewayFor({ logs: { store, batchSize: 1, maxQueue: 2 } })
    const dropped: LogDroppedEvent[] = []
    gateway.events.on('log:dropped', (e) => dropped.push(e))
    // The first record's write begins (and stalls) before the others come, whatever the timing of the
    // queue's first flush.
    await gateway.handle(chat('n0'))
    await store.writing
    for (let i = 1; i < 6; i++) await gateway.handle(chat(`n${i}`))
    // One record is being written, two wait, three were dropped.
    expect(gateway.stats().logs).toMatchObject({ queued: 2, dropped: 3 })
    expect(dropped.at(-1)).toEqual({ count: 1, total: 3, reason: 'queue-full' })
    store.release()
    await gateway.close()
    expect(gateway.stats().logs).toMatchObject({ written: 3, dropped: 3 })
  })

  it('count a batch the store refuses as dropped, and report the failure', async () => {
    const failing: LogStore = {
      ...createMemoryLogStore(),
      write: () => Promise.reject(new Error('disk full')),
    }
    const gateway = gatewayFor({ logs: { store: failing } })
    const errors: StoreErrorEvent[] = []
    gateway.events.on('store:error', (e) => errors.push(e))
    expect((await gateway.handle(chat('x')))?.status).toBe(200)
    await gateway.flushLogs()
    expect(gateway.stats().logs).toMatchObject({ written: 0, dropped: 1 })
    expect(errors[0]).toMatchObject({ store: 'logs', operation: 'write' })
    await gateway.close()
  })

  it('give up a write the store has not finished in writeTimeoutMs, count it, and go on with the next', async () => {
    const inner = createMemoryLogStore()
    let finishFirst!: () => Promise<void>
    let writes = 0
    // The first write hangs until the test lets it finish; the others go straight through.
    const store: LogStore = {
      ...inner,
      write(records) {
        if (++writes > 1) return inner.write(records)
        return new Promise<void>((resolve) => {
          finishFirst = () => inner.write(records).then(resolve)
        })
      },
    }
    const gateway = gatewayFor({ logs: { store, batchSize: 1, writeTimeoutMs: 20 } })
    const dropped: LogDroppedEvent[] = []
    gateway.events.on('log:dropped', (e) => dropped.push(e))
    const timedOut = new Promise<StoreErrorEvent>((resolve) => gateway.events.once('store:error', resolve))
    expect((await gateway.handle(chat('n0')))?.status).toBe(200)
    const error = await timedOut
    expect(error).toMatchObject({ store: 'logs', operation: 'write' })
    expect(error.error).toBeInstanceOf(StoreTimeoutError)
    expect(dropped).toEqual([{ count: 1, total: 1, reason: 'write-failed' }])
    expect((await gateway.handle(chat('n1')))?.status).toBe(200)
    await gateway.flushLogs()
    expect(gateway.stats().logs).toMatchObject({ queued: 0, written: 1, dropped: 1 })
    // The write given up may still land in the store; the queue neither counts it again nor breaks.
    await finishFirst()
    await new Promise((resolve) => setImmediate(resolve))
    expect(gateway.stats().logs).toMatchObject({ written: 1, dropped: 1 })
    expect((await inner.list({})).records).toHaveLength(2)
    expect(dropped).toHaveLength(1)
    await gateway.close()
  })

  it('close, when the store never answers, in one writeTimeoutMs, dropping what it did not write', async () => {
    // Never released: a store that never answers.
    const store = stalledStore()
    const gateway = gatewayFor({ logs: { store, writeTimeoutMs: 20 } })
    const errors: StoreErrorEvent[] = []
    gateway.events.on('store:error', (e) => errors.push(e))
    expect((await gateway.handle(chat('x')))?.status).toBe(200)
    await gateway.close()
    expect(gateway.stats().logs).toMatchObject({ queued: 0, written: 0, dropped: 1 })
    expect(errors.map((e) => e.error)).toEqual([expect.any(StoreTimeoutError)])
  })

  describe('captured records', () => {
    let template: LogRecord
    beforeAll(async () => {
      const gateway = gatewayFor()
      await gateway.handle(chat('template'))
      await gateway.flushLogs()
      template = (await gateway.logs!.list({})).records[0]!
      await gateway.close()
    })
    const ids = [1, 2, 3].map((i) => `0190a000-0000-7000-8000-00000000000${i}`)
    let made = 0
    const captured = (id: string, text?: RawBodies['text'], smallerAsText = false) =>
      new CapturedRecord(
        { ...template, id, requestBody: null, responseBody: null },
        {
          request: Buffer.from(`asked ${id}`),
          response: Buffer.from(`answered ${id}`),
          smallerAsText,
          text:
            text ??
            ((request, response) => {
              made++
              return {
                requestBody: `${request}`,
                responseBody: `${response}`.replace('answered', 'ANSWERED'),
              }
            }),
        },
      )
    const broken = (id: string) =>
      captured(id, () => {
        throw new Error('a bug in a record')
      })
    const events = () => {
      const emitter: GatewayEmitter = new GatewayEvents()
      const seen = { errors: [] as unknown[], dropped: [] as LogDroppedEvent[] }
      emitter.on('error', (error) => seen.errors.push(error))
      emitter.on('log:dropped', (e) => seen.dropped.push(e))
      return { emitter, seen }
    }
    const settings = { batchSize: 10, flushIntervalMs: 600_000, maxQueue: 10, writeTimeoutMs: 60_000 }

    it('are built with their batch for a store that takes text; one that fails to build is reported and dropped', async () => {
      made = 0
      const memory = createMemoryLogStore()
      // The memory store's own methods but its raw write: a store of the host's, as the queue sees it.
      const store: LogStore = {
        write: (records) => memory.write(records),
        get: (id) => memory.get(id),
        list: (query) => memory.list(query),
        patch: (id, patch) => memory.patch(id, patch),
        delete: (selection) => memory.delete(selection),
        analytics: (query) => memory.analytics(query),
      }
      const { emitter, seen } = events()
      const queue = new LogQueue(store, settings, emitter)
      queue.push(captured(ids[0]!))
      queue.push(broken(ids[1]!))
      queue.push(captured(ids[2]!))
      // Nothing is built while records only wait.
      expect(made).toBe(0)
      await queue.flush()
      expect(made).toBe(2)
      expect(queue.stats).toMatchObject({ written: 2, dropped: 1 })
      expect(seen.dropped).toEqual([{ count: 1, total: 1, reason: 'build-failed' }])
      expect(seen.errors).toEqual([expect.objectContaining({ message: 'a bug in a record' })])
      expect(await store.get(ids[2]!)).toMatchObject({
        requestBody: `asked ${ids[2]}`,
        responseBody: `ANSWERED ${ids[2]}`,
      })
    })

    it('go to the memory store as bytes, made text only when a record is read with its bodies', async () => {
      made = 0
      const store = createMemoryLogStore()
      const queue = new LogQueue(store, settings, events().emitter)
      queue.push(captured(ids[0]!))
      queue.push(captured(ids[1]!))
      await queue.flush()
      expect(queue.stats).toMatchObject({ written: 2, dropped: 0 })
      expect((await store.list({})).records.map((r) => [r.requestBody, r.responseBody])).toEqual([
        [null, null],
        [null, null],
      ])
      expect(made).toBe(0)
      expect(await store.get(ids[1]!)).toMatchObject({
        requestBody: `asked ${ids[1]}`,
        responseBody: `ANSWERED ${ids[1]}`,
      })
      expect(made).toBe(1)
      const listed = (await store.list({ includeBodies: true, direction: 'asc' })).records
      expect(listed.map((r) => r.responseBody)).toEqual([`ANSWERED ${ids[0]}`, `ANSWERED ${ids[1]}`])
      expect(made).toBe(3)
    })

    it('go to the memory store as text, made with their batch, where the text is far smaller and the bytes exceed a record’s share', async () => {
      // 87 bytes of bodies each; a record's share of the bound is 80 bytes, then 90.
      const bytes = (id: string) => `asked ${id}`.length + `answered ${id}`.length
      expect(bytes(ids[0]!)).toBe(87)
      // How many texts were made by the batch's write, then by a read of the record.
      const madeOnWriteAndRead = async (maxBytes: number) => {
        made = 0
        const store = createMemoryLogStore({ maxRecords: 10, maxBytes })
        const queue = new LogQueue(store, settings, events().emitter)
        queue.push(captured(ids[0]!, undefined, true))
        await queue.flush()
        const onWrite = made
        expect(await store.get(ids[0]!)).toMatchObject({ responseBody: `ANSWERED ${ids[0]}` })
        return [onWrite, made - onWrite]
      }
      expect(await madeOnWriteAndRead(800)).toEqual([1, 0])
      expect(await madeOnWriteAndRead(900)).toEqual([0, 1])
    })

    it('go to the memory store at the next timer tick, not when the batch fills or the interval ends', async () => {
      const store = createMemoryLogStore()
      const queue = new LogQueue(store, settings, events().emitter)
      queue.push(captured(ids[0]!))
      expect(await store.get(ids[0]!)).toBeUndefined()
      // Armed after the queue's, with the same delay: Node runs it after the queue's has written.
      await new Promise((resolve) => setTimeout(resolve, 1))
      expect(queue.stats).toMatchObject({ queued: 0, written: 1 })
      expect(await store.get(ids[0]!)).toMatchObject({ id: ids[0] })
    })

    it('go to the memory store at every timer tick after that, each written before the next comes', async () => {
      const store = createMemoryLogStore()
      const queue = new LogQueue(store, settings, events().emitter)
      for (const [i, id] of ids.entries()) {
        queue.push(captured(id))
        // As above: a timer armed after the queue's, with the same delay, fires after it.
        await new Promise((resolve) => setTimeout(resolve, 1))
        expect(queue.stats).toMatchObject({ queued: 0, written: i + 1 })
      }
      expect((await store.list({})).records.map((record) => record.id).sort()).toEqual(ids)
    })
  })

  it('write the rest of a batch the store refuses for an invalid record, that one counted as dropped', async () => {
    const store = createMemoryLogStore()
    const emitter: GatewayEmitter = new GatewayEvents()
    const dropped: LogDroppedEvent[] = []
    const errors: StoreErrorEvent[] = []
    emitter.on('log:dropped', (e) => dropped.push(e))
    emitter.on('store:error', (e) => errors.push(e))
    const queue = new LogQueue(
      store,
      { batchSize: 10, flushIntervalMs: 600_000, maxQueue: 10, writeTimeoutMs: 60_000 },
      emitter,
    )
    const [first, invalid, last] = [1, 2, 3].map((i) => sampleRecord({ createdAt: i, tokensIn: i }))
    for (const record of [first!, { ...invalid!, tokensIn: 1e19 }, last!]) queue.push(record)
    await queue.flush()
    expect(queue.stats).toMatchObject({ written: 2, dropped: 1 })
    expect(dropped).toEqual([{ count: 1, total: 1, reason: 'write-failed' }])
    expect(errors).toMatchObject([
      { id: invalid!.id, error: { message: expect.stringContaining('[1].tokensIn') } },
    ])
    expect((await store.list({ orderBy: 'createdAt', direction: 'asc' })).records.map((r) => r.id)).toEqual([
      first!.id,
      last!.id,
    ])
  })

  it('count a batch whose write throws rather than rejects as dropped, report it, and write the next', async () => {
    let calls = 0
    const stored: string[] = []
    const store = {
      write(records: LogRecord[]) {
        if (++calls === 1) throw new Error('not connected')
        stored.push(...records.map((record) => record.id))
        return Promise.resolve()
      },
    } as unknown as LogStore
    const emitter: GatewayEmitter = new GatewayEvents()
    const errors: StoreErrorEvent[] = []
    emitter.on('store:error', (e) => errors.push(e))
    const queue = new LogQueue(
      store,
      { batchSize: 10, flushIntervalMs: 600_000, maxQueue: 10, writeTimeoutMs: 60_000 },
      emitter,
    )
    const id = (i: number) => `0190a000-0000-7000-8000-00000000000${i}`
    queue.push({ id: id(1) } as LogRecord)
    await queue.flush()
    expect([queue.stats, errors.map((e) => e.id)]).toEqual([{ queued: 0, written: 0, dropped: 1 }, [id(1)]])
    queue.push({ id: id(2) } as LogRecord)
    await queue.flush()
    expect([queue.stats.written, stored]).toEqual([1, [id(2)]])
  })

  it('flush writes one batch at a time and returns once every record is stored, timers firing meanwhile', async () => {
    const stored: string[] = []
    const writes: { ids: string[]; done: () => void }[] = []
    let inFlight = 0
    let mostInFlight = 0
    const store = {
      write(records: LogRecord[]) {
        inFlight++
        mostInFlight = Math.max(mostInFlight, inFlight)
        return new Promise<void>((resolve) => {
          const ids = records.map((record) => record.id)
          writes.push({
            ids,
            done: () => {
              inFlight--
              stored.push(...ids)
              resolve()
            },
          })
        })
      },
    } as unknown as LogStore
    const queue = new LogQueue(
      store,
      { batchSize: 2, flushIntervalMs: 600_000, maxQueue: 100, writeTimeoutMs: 60_000 },
      new GatewayEvents(),
    )
    const ids = Array.from({ length: 7 }, (_, i) => `0190a000-0000-7000-8000-00000000000${i}`)
    const record = (id: string) => ({ id }) as LogRecord
    // Two records arm a timer for a batch; the flush clears it and writes them.
    queue.push(record(ids[0]!))
    queue.push(record(ids[1]!))
    let flushed = false
    const flushing = queue.flush().then(() => {
      flushed = true
    })
    // Five more come while that write is on: its end arms a timer (a full batch waits) that fires while the
    // flush's next write is on.
    for (const id of ids.slice(2)) queue.push(record(id))
    const macrotask = () => new Promise((resolve) => setTimeout(resolve, 0))
    // Each write ends once the timers armed when the one before it ended have fired: two macrotasks, the
    // second set up after them.
    while (!flushed) {
      writes.find((write) => !stored.includes(write.ids[0]!))?.done()
      await macrotask()
      await macrotask()
    }
    await flushing
    expect(mostInFlight).toBe(1)
    expect(stored.sort()).toEqual(ids)
  })

  it('record what guardrails and DLP found, and nothing for a request they did not touch', async () => {
    const found: LogGuard = {
      dlp: {
        action: 'REDACT',
        findings: [
          {
            check: 'REQUEST',
            profileId: 'pii',
            entryId: 'email',
            policyIds: ['redact-pii'],
            path: '/messages/0/content',
            start: 0,
            end: 13,
          },
        ],
      },
      guardrails: { action: 'FLAG', prompt: [{ category: 'S6', score: 0.61, classifier: 'llama-guard' }] },
    }
    const guardStep: Step = async function guard(ctx, next) {
      if (ctx.request.headers['x-guarded'] === 'yes') ctx.state.guard = structuredClone(found)
      await next()
    }
    const gateway = gatewayFor({ steps: [guardStep] })
    const guarded = await gateway.handle(chat('a@example.com', { 'x-guarded': 'yes' }))
    const plain = await gateway.handle(chat('hello'))
    await gateway.flushLogs()
    expect((await gateway.logs!.get(guarded!.headers['cf-aig-log-id']!))?.guard).toEqual(found)
    expect(await gateway.logs!.get(plain!.headers['cf-aig-log-id']!)).not.toHaveProperty('guard')
    const { records } = await gateway.logs!.list({
      filters: [{ field: 'dlpAction', op: 'eq', value: 'REDACT' }],
    })
    expect(records.map((record) => record.id)).toEqual([guarded!.headers['cf-aig-log-id']])
    await gateway.close()
  })

  it('mask in a record read later the stored key its request carried, beside the configured ones', async () => {
    // A stored key of no provider's shape: only the request's own secrets can mask it, not the patterns.
    const storedKey = 'team-b-stored-credential-77c1'
    const keys = createKeyRing({ store: createMemorySecretStore(), masterKey: 'c'.repeat(64) })
    await keys.putSecret('openai', 'team-b', storedKey)
    const gateway = gatewayFor({ keys })
    const alias = { 'cf-aig-byok-alias': 'team-b' }
    const answers = [
      await gateway.handle(chat(`stored ${storedKey} configured sk-stored`, alias)),
      await gateway.handle(chat(`plain ${storedKey} configured sk-stored`)),
    ]
    expect(answers.map((answer) => answer?.status)).toEqual([200, 200])
    await gateway.flushLogs()
    const bodies = (await gateway.logs!.list({ includeBodies: true, direction: 'asc' })).records.map(
      (record) => `${record.requestBody} ${record.responseBody}`,
    )
    // The mock echoes the prompt: each record holds the text twice.
    expect(bodies[0]).not.toContain(storedKey)
    expect(bodies[0]).not.toContain('sk-stored')
    expect(bodies[0]!.match(/\[REDACTED\]/g)).toHaveLength(4)
    // The request sent with the configured key carried no stored one: the text is only text there.
    expect(bodies[1]).toContain(storedKey)
    expect(bodies[1]).not.toContain('sk-stored')
    await gateway.close()
  })

  it('write nothing with logs: false', async () => {
    const gateway = gatewayFor({ logs: false })
    await gateway.handle(chat('x'))
    expect(gateway.logs).toBeUndefined()
    expect(gateway.stats().logs).toBeUndefined()
    await gateway.close()
  })
})

describe('telemetry', () => {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const tracer = provider.getTracer('test')

  it('makes one span per request with GenAI attributes, metadata and the trace named by the cf-aig-otel headers', async () => {
    exporter.reset()
    const gateway = gatewayFor({ telemetry: { tracer } })
    // The optional API is imported once, at construction, and requests before it has loaded get no span.
    await vi.dynamicImportSettled()
    const traceId = '0af7651916cd43dd8448eb211c80319c'
    const spanId = 'b7ad6b7169203331'
    const response = await gateway.handle(
      chat('traced', {
        'cf-aig-otel-trace-id': traceId,
        'cf-aig-otel-parent-span-id': spanId,
        'cf-aig-metadata': '{"team":"red"}',
      }),
    )
    await gateway.flushLogs()
    const [span] = exporter.getFinishedSpans()
    expect(span?.name).toBe('chat gpt-4o-mini')
    expect(span?.spanContext().traceId).toBe(traceId)
    expect(span?.parentSpanContext?.spanId).toBe(spanId)
    const record = (await gateway.logs!.get(response!.headers['cf-aig-log-id']!)) as LogRecord
    expect(span?.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.usage.input_tokens': record.tokensIn,
      'gen_ai.usage.output_tokens': record.tokensOut,
      'gen_ai.usage.cost': record.cost,
      'http.response.status_code': 200,
      'ai_gateway.metadata.team': 'red',
    })
    await gateway.close()
  })

  it('puts metadata under its own namespace, where no key can pass for an attribute the gateway sets', async () => {
    exporter.reset()
    const gateway = gatewayFor({ telemetry: { tracer } })
    await vi.dynamicImportSettled()
    const forged = { 'error.type': 'forged', 'server.address': 'evil.example', 'ai_gateway.outcome': 'x' }
    await gateway.handle(chat('traced', { 'cf-aig-metadata': JSON.stringify(forged) }))
    await gateway.flushLogs()
    const [span] = exporter.getFinishedSpans()
    expect(span?.attributes).toMatchObject({
      'ai_gateway.outcome': 'success',
      'ai_gateway.metadata.error.type': 'forged',
      'ai_gateway.metadata.server.address': 'evil.example',
      'ai_gateway.metadata.ai_gateway.outcome': 'x',
    })
    expect(span?.attributes).not.toHaveProperty(['error.type'])
    expect(span?.attributes).not.toHaveProperty(['server.address'])
    await gateway.close()
  })

  it('joins the context active when the request arrived, and marks failures', async () => {
    // As a host with tracing set up has it: a context manager that carries the active span across awaits.
    const manager = new AsyncLocalStorageContextManager().enable()
    context.setGlobalContextManager(manager)
    exporter.reset()
    const gateway = gatewayFor({ telemetry: { tracer } })
    await vi.dynamicImportSettled()
    const parent = tracer.startSpan('host request')
    mock.enqueue({ status: 500 })
    await context.with(trace.setSpan(context.active(), parent), () => gateway.handle(chat('fails')))
    parent.end()
    await gateway.flushLogs()
    const span = exporter.getFinishedSpans().find((s) => s.name.startsWith('chat'))
    expect(span?.spanContext().traceId).toBe(parent.spanContext().traceId)
    expect(span?.status.code).toBe(2)
    context.disable()
    await gateway.close()
  })

  it('keeps the first 256 characters of a model name far longer than any, in its name and attribute', async () => {
    exporter.reset()
    const gateway = gatewayFor({ telemetry: { tracer } })
    await vi.dynamicImportSettled()
    const request = chat('made-up model')
    const model = `${'m'.repeat(255)}😀${'m'.repeat(1_000_000)}`
    const body = JSON.stringify({ ...JSON.parse(request.body as string), model })
    mock.enqueue({ status: 404 })
    expect((await gateway.handle({ ...request, body }))?.status).toBe(404)
    await gateway.flushLogs()
    const [span] = exporter.getFinishedSpans()
    // The emoji's pair would be cut in two at 256: the name stops before it.
    const kept = `${'m'.repeat(255)}…`
    expect(span?.name).toBe(`chat ${kept}`)
    expect(span?.attributes['gen_ai.request.model']).toBe(kept)
    await gateway.close()
  })

  it('refuses malformed trace headers with a 400', async () => {
    const gateway = gatewayFor({ telemetry: true })
    const response = await gateway.handle(
      chat('x', { 'cf-aig-otel-trace-id': 'xyz', 'cf-aig-otel-parent-span-id': '1' }),
    )
    expect(response?.status).toBe(400)
    await gateway.close()
  })
})

describe('redact', () => {
  // Keys nobody configured are still masked by their shape; text that only looks close is left alone.
  it.each([
    ['an OpenAI project key', 'key sk-proj-AbCdEf0123456789xyz here', 'key [REDACTED] here'],
    ['an Anthropic key', '"sk-ant-api03-AbCdEf0123456789"', '"[REDACTED]"'],
    ['a Google key', 'AIzaSyA0123456789abcdefghijklmnopqrstu', '[REDACTED]'],
    ['a Groq key', 'gsk_0123456789abcdefghijABCD', '[REDACTED]'],
    ['an xAI key', 'xai-0123456789abcdefghijABCD', '[REDACTED]'],
    ['a bearer token', 'Authorization: Bearer abcdefghijklmnop.qrs', 'Authorization: Bearer [REDACTED]'],
    ['a short sk- word', 'ask-me and sk-short', 'ask-me and sk-short'],
    ['a lower-case bearer', 'bearer abcdefghijklmnopqrs', 'bearer abcdefghijklmnopqrs'],
    ['plain text', 'Hello, world', 'Hello, world'],
  ])('%s', (_name, text, expected) => {
    expect(redact(text, undefined)).toBe(expected)
  })

  it('masks configured secrets whole and by a recognisable piece', () => {
    const scrubber = createScrubber(['my-own-secret-value-123'])
    expect(redact('a my-own-secret-value-123 b my-own-secre…', scrubber)).toBe('a [REDACTED] b [REDACTED]…')
  })
})

describe('a log queue whose store never answers', () => {
  it('drops what is still queued once a flush meets a write past its time, rather than wait batch by batch', async () => {
    const emitter: GatewayEmitter = new GatewayEvents()
    const dropped: LogDroppedEvent[] = []
    const errors: StoreErrorEvent[] = []
    emitter.on('log:dropped', (e) => dropped.push(e))
    emitter.on('store:error', (e) => errors.push(e))
    // Never released: a store that never answers.
    const store = stalledStore()
    const settings = { batchSize: 2, flushIntervalMs: 600_000, maxQueue: 100, writeTimeoutMs: 20 }
    const queue = new LogQueue(store, settings, emitter)
    // Queued in one go, before the queue's timer can fire: the flush writes the first batch of two.
    for (let i = 0; i < 5; i++) queue.push({ id: `0190a000-0000-7000-8000-00000000000${i}` } as LogRecord)
    await queue.flush()
    expect(queue.stats).toEqual({ queued: 0, written: 0, dropped: 5 })
    expect(dropped).toEqual([
      { count: 2, total: 2, reason: 'write-failed' },
      { count: 3, total: 5, reason: 'store-stalled' },
    ])
    expect(errors).toEqual([expect.objectContaining({ store: 'logs', error: expect.any(StoreTimeoutError) })])
  })
})
