import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { LogQueryError, LogRecordError } from '../errors.js'
import { uuidv7 } from '../ids.js'
import type {
  AnalyticsQuery,
  AnalyticsRow,
  LogFilter,
  LogGuard,
  LogListQuery,
  LogRecord,
  LogStore,
} from '../logs/types.js'

// Hour-aligned, so the fixture's first records share a minute and an hour bucket.
const T = Date.UTC(2026, 0, 15, 10)
const DAY = 86_400_000

function makeRecord(overrides: Partial<LogRecord> & { createdAt: number }): LogRecord {
  return {
    id: uuidv7(overrides.createdAt),
    provider: 'openai',
    model: 'gpt-4o-mini',
    path: '/openai/chat/completions',
    success: true,
    statusCode: 200,
    cached: false,
    durationMs: 100,
    ttfbMs: 40,
    tokensIn: 10,
    tokensOut: 20,
    cost: 0.001,
    customCost: false,
    metadata: {},
    step: null,
    eventId: null,
    attempts: 1,
    requestSize: 120,
    responseSize: 480,
    outcome: 'success',
    errorCode: null,
    principal: null,
    requestBody: '{"messages":[{"role":"user","content":"hi"}]}',
    responseBody: '{"choices":[{"message":{"content":"hello"}}]}',
    feedback: null,
    score: null,
    ...overrides,
  }
}

/** A DLP finding as a record keeps it: where the match was, never its text. */
function finding(check: 'REQUEST' | 'RESPONSE', path: string, start: number, end: number) {
  return {
    check,
    profileId: 'pii',
    entryId: 'credit-card',
    policyIds: ['block-pii', 'audit'],
    path,
    start,
    end,
  }
}

/**
 * Five records, A to E in time order, spanning every field kind, null and absent values included; A and E
 * came through dynamic routes; A, B, D and E met guardrails or DLP.
 */
function fixture() {
  const records = {
    A: makeRecord({
      createdAt: T,
      model: 'gpt-4o',
      cost: 0.5,
      eventId: 'evt-1',
      principal: 'alice',
      metadata: { team: 'red', tier: 3, beta: true },
      route: { name: 'tiered', version: 2, path: ['start', 'split', 'big'], variants: { split: '10%' } },
      guard: {
        guardrails: { action: 'FLAG', prompt: [{ category: 'S1', score: 0.72, classifier: 'llama-guard' }] },
      },
    }),
    B: makeRecord({
      createdAt: T + 1000,
      provider: 'anthropic',
      model: 'claude-3-5-sonnet',
      success: false,
      statusCode: 502,
      durationMs: 250,
      tokensIn: null,
      tokensOut: null,
      cost: null,
      outcome: 'upstream_error',
      errorCode: 2005,
      principal: 'bob',
      metadata: { team: 'blue', tier: '10' },
      attemptLog: [
        {
          provider: 'anthropic',
          model: 'claude-3-5-sonnet',
          step: 0,
          status: null,
          failureClass: 'timeout',
          errorCode: 2105,
          action: 'retry',
          durationMs: 1500,
        },
        {
          provider: 'anthropic',
          model: 'claude-3-5-sonnet',
          step: 0,
          status: 502,
          failureClass: 'server_error',
          errorCode: null,
          action: 'final',
          durationMs: 12,
        },
      ],
      guard: {
        dlp: {
          action: 'REDACT',
          findings: [finding('REQUEST', '/messages/0/content', 8, 24), finding('REQUEST', '', 0, 0)],
          truncated: true,
        },
        guardrails: {
          action: 'UNAVAILABLE',
          prompt: [],
          unavailable: ['prompt', 'answer'],
        },
      },
    }),
    C: makeRecord({
      createdAt: T + 2000,
      cached: true,
      durationMs: 3,
      tokensIn: 5,
      tokensOut: null,
      cost: 0,
      eventId: 'evt-2',
      outcome: 'cache_hit',
    }),
    D: makeRecord({
      createdAt: T + 3000,
      provider: null,
      model: null,
      success: false,
      statusCode: 429,
      durationMs: 1.5,
      tokensIn: null,
      tokensOut: null,
      cost: null,
      outcome: 'rate_limited',
      principal: 'alice',
      metadata: { team: 'red', note: 'ünïcode 🚀' },
      guard: { dlp: { action: 'BLOCK', findings: [finding('REQUEST', '/messages/1/content', 0, 19)] } },
    }),
    E: makeRecord({
      createdAt: T + 4000,
      provider: 'workers-ai',
      model: '@cf/meta/llama-3.1-8b-instruct',
      durationMs: 40,
      tokensIn: 100,
      tokensOut: 0,
      cost: 1.25,
      eventId: 'evt-3',
      principal: 'carol',
      metadata: { tier: 2.5, 'a.b': 'dotted', big: 1e21 },
      route: { name: 'chat', version: 1, path: ['start', 'model'], variants: {} },
      guard: {
        dlp: { action: 'FLAG', findings: [finding('RESPONSE', '', 3, 19)] },
        guardrails: {
          action: 'BLOCK',
          prompt: [{ category: 'S10', score: 0, classifier: 'llama-guard' }],
          answer: [
            { category: 'S2', score: 1, classifier: 'llama-guard' },
            { category: 'violence', score: 0.5, classifier: 'moderation' },
          ],
        },
      },
    }),
  }
  const nameOf = new Map(Object.entries(records).map(([name, record]) => [record.id, name]))
  return {
    records,
    all: Object.values(records),
    names: (list: LogRecord[]) => list.map((r) => nameOf.get(r.id)),
  }
}

/**
 * Six records for the route, variant, principal and metadata groups: three through route `tiered` (one
 * drawing one branch, two drawing two), one through `chat` without a percentage element, two without a
 * route. Costs such as 0.1 + 0.2 would sum to 0.30000000000000004 as floats.
 */
function routedRecords(): LogRecord[] {
  const tiered = (variants: Record<string, string>) => ({
    name: 'tiered',
    version: 2,
    path: ['start', ...Object.keys(variants), 'model'],
    variants,
  })
  return [
    makeRecord({
      createdAt: T,
      principal: 'alice',
      cost: 0.1,
      durationMs: 10,
      feedback: 1,
      score: 80,
      metadata: { team: 'red' },
      route: tiered({ split: '10%' }),
    }),
    makeRecord({
      createdAt: T + 1000,
      principal: 'bob',
      cost: 0.0000033,
      durationMs: 20,
      feedback: -1,
      score: 46,
      metadata: { team: 'blue' },
      route: tiered({ split: '90%', tone: 'formal' }),
    }),
    makeRecord({
      createdAt: T + 60_000,
      principal: 'alice',
      success: false,
      statusCode: 502,
      outcome: 'upstream_error',
      cost: 0.2,
      durationMs: 30,
      score: 100,
      metadata: { team: 'red' },
      route: tiered({ split: '10%', tone: 'casual' }),
    }),
    makeRecord({
      createdAt: T + 61_000,
      cost: null,
      durationMs: 40,
      feedback: 1,
      route: { name: 'chat', version: 1, path: ['start', 'model'], variants: {} },
    }),
    makeRecord({
      createdAt: T + 62_000,
      principal: 'carol',
      cost: 0.2,
      durationMs: 50,
      metadata: { team: 'blue' },
    }),
    makeRecord({
      createdAt: T + 120_000,
      principal: 'alice',
      cost: 0.1,
      durationMs: 60,
      feedback: -1,
      score: 0,
      metadata: { team: 'red' },
    }),
  ]
}

/** A row as [...group values, requests, errors, tokensIn, cost, thumbsUp, thumbsDown, scored, scoreAvg]. */
function summary(row: AnalyticsRow): unknown[] {
  const { requests, errors, tokensIn, cost, thumbsUp, thumbsDown, scored, scoreAvg } = row
  return [
    ...Object.values(row.group),
    requests,
    errors,
    tokensIn,
    cost,
    thumbsUp,
    thumbsDown,
    scored,
    scoreAvg,
  ]
}

type Case = [field: string, op: LogFilter['op'], value: string | number | boolean, expected: string]

const FILTER_CASES: Record<string, Case[]> = {
  text: [
    ['provider', 'eq', 'openai', 'AC'],
    ['provider', 'neq', 'openai', 'BDE'],
    ['provider', 'contains', 'a', 'ABCE'],
    ['provider', 'contains', 'Open', ''],
    ['model', 'eq', 'gpt-4o', 'A'],
    ['model', 'contains', 'gpt-4o', 'AC'],
    ['eventId', 'eq', 'evt-1', 'A'],
    ['eventId', 'neq', 'evt-1', 'BCDE'],
    ['eventId', 'contains', 'evt', 'ACE'],
    ['outcome', 'eq', 'cache_hit', 'C'],
    ['outcome', 'neq', 'success', 'BCD'],
    ['outcome', 'contains', 'error', 'B'],
    ['principal', 'eq', 'alice', 'AD'],
    ['principal', 'neq', 'alice', 'BCE'],
    ['principal', 'contains', 'o', 'BE'],
    ['route', 'eq', 'tiered', 'A'],
    ['route', 'eq', 'chat', 'E'],
    ['route', 'neq', 'tiered', 'BCDE'],
    ['route', 'contains', 't', 'AE'],
  ],
  boolean: [
    ['success', 'eq', true, 'ACE'],
    ['success', 'eq', 'false', 'BD'],
    ['success', 'neq', true, 'BD'],
    ['cached', 'eq', true, 'C'],
    ['cached', 'neq', true, 'ABDE'],
  ],
  number: [
    ['cost', 'eq', 0, 'C'],
    ['cost', 'neq', 0.5, 'BCDE'],
    ['cost', 'gt', 0.4, 'AE'],
    ['cost', 'lt', 1, 'AC'],
    ['tokens', 'gt', 10, 'AE'],
    ['tokens', 'eq', 5, 'C'],
    ['tokens', 'lt', 50, 'AC'],
    ['tokens', 'neq', 30, 'BCDE'],
    ['tokensIn', 'lt', 10, 'C'],
    ['tokensIn', 'gt', 50.5, 'E'],
    ['tokensOut', 'eq', 0, 'E'],
    ['tokensOut', 'gt', 0, 'A'],
    ['duration', 'lt', 5, 'CD'],
    ['duration', 'gt', 100, 'B'],
    ['duration', 'eq', 1.5, 'D'],
    ['statusCode', 'eq', 200, 'ACE'],
    ['statusCode', 'neq', '200', 'BD'],
    ['statusCode', 'gt', 400, 'BD'],
    ['statusCode', 'lt', 300, 'ACE'],
  ],
  action: [
    ['dlpAction', 'eq', 'BLOCK', 'D'],
    ['dlpAction', 'eq', 'REDACT', 'B'],
    ['dlpAction', 'eq', 'FLAG', 'E'],
    ['dlpAction', 'eq', 'block', 'D'],
    ['dlpAction', 'neq', 'BLOCK', 'ABCE'],
    ['guardrailAction', 'eq', 'FLAG', 'A'],
    ['guardrailAction', 'eq', 'BLOCK', 'E'],
    ['guardrailAction', 'eq', 'UNAVAILABLE', 'B'],
    ['guardrailAction', 'neq', 'FLAG', 'BCDE'],
  ],
  time: [
    ['createdAt', 'gt', T + 1000, 'CDE'],
    ['createdAt', 'lt', T + 1000, 'A'],
    ['createdAt', 'eq', T + 2000, 'C'],
    ['createdAt', 'neq', T, 'BCDE'],
  ],
  metadata: [
    ['metadata.team', 'eq', 'red', 'AD'],
    ['metadata.team', 'neq', 'red', 'BCE'],
    ['metadata.team', 'contains', 'e', 'ABD'],
    ['metadata.tier', 'eq', '3', 'A'],
    ['metadata.tier', 'eq', 3, 'A'],
    ['metadata.tier', 'neq', 3, 'BCDE'],
    ['metadata.tier', 'lt', 5, 'AE'],
    ['metadata.tier', 'gt', 5, 'B'],
    ['metadata.tier', 'gt', '2.5', 'AB'],
    ['metadata.beta', 'eq', true, 'A'],
    ['metadata.beta', 'eq', 'true', 'A'],
    ['metadata.note', 'contains', '🚀', 'D'],
    ['metadata.a.b', 'eq', 'dotted', 'E'],
    ['metadata.big', 'eq', '1000000000000000000000', 'E'],
    ['metadata.big', 'gt', 1e20, 'E'],
    ['metadata.team', 'lt', 5, ''],
    ['metadata.key', 'eq', 'team', 'ABD'],
    ['metadata.key', 'neq', 'team', 'CE'],
    ['metadata.key', 'contains', 'ti', 'ABE'],
    ['metadata.key', 'lt', 100, ''],
    ['metadata.value', 'eq', 'red', 'AD'],
    ['metadata.value', 'eq', 3, 'A'],
    ['metadata.value', 'neq', 'red', 'BCE'],
    ['metadata.value', 'contains', 'blu', 'B'],
    ['metadata.value', 'lt', 3, 'E'],
    ['metadata.value', 'gt', 5, 'BE'],
  ],
}

const ORDER_CASES: [LogListQuery['orderBy'], 'asc' | 'desc', string][] = [
  ['createdAt', 'asc', 'ABCDE'],
  ['provider', 'asc', 'BACED'],
  ['provider', 'desc', 'DECAB'],
  ['model', 'asc', 'EBACD'],
  ['model', 'desc', 'DCABE'],
  ['cost', 'asc', 'CAEBD'],
  ['cost', 'desc', 'DBEAC'],
  ['duration', 'desc', 'BAECD'],
  ['duration', 'asc', 'DCEAB'],
  ['success', 'asc', 'BDACE'],
  ['success', 'desc', 'ECADB'],
  ['cached', 'desc', 'CEDBA'],
  ['cached', 'asc', 'ABDEC'],
]

async function listAll(store: LogStore, query: LogListQuery): Promise<LogRecord[]> {
  const records: LogRecord[] = []
  let cursor = query.cursor
  do {
    const page = await store.list({ ...query, cursor })
    records.push(...page.records)
    cursor = page.nextCursor
  } while (cursor !== undefined)
  return records
}

/** Thirty records with tied times and costs and null providers, for paging. */
function pagingRecords(): LogRecord[] {
  const providers = ['openai', null, 'anthropic', 'groq']
  return Array.from({ length: 30 }, (_, i) =>
    makeRecord({
      createdAt: T + Math.floor(i / 3) * 1000,
      provider: providers[i % 4] ?? null,
      cost: i % 5 === 0 ? null : (i % 7) / 10,
      success: i % 2 === 0,
      durationMs: i % 6,
    }),
  )
}

/**
 * Registers a vitest suite that pins the behaviour every `LogStore` shares: validation, filters, ordering,
 * keyset paging under concurrent writes, feedback, deletion and analytics. `makeStore` must return an
 * empty store each time; the suite closes it after each test when it has `close()`.
 *
 * @example
 * logStoreConformance('memory', async () => createMemoryLogStore())
 */
export function logStoreConformance(name: string, makeStore: () => Promise<LogStore>): void {
  describe(name, () => {
    let store: LogStore
    beforeEach(async () => {
      store = await makeStore()
    })
    afterEach(async () => {
      await store.close?.()
    })

    describe('write and get', () => {
      it('returns a written record whole, bodies included', async () => {
        const { records } = fixture()
        await store.write(Object.values(records))
        for (const record of Object.values(records)) expect(await store.get(record.id)).toEqual(record)
      })

      it('answers undefined for unknown and malformed ids', async () => {
        expect(await store.get(uuidv7())).toBeUndefined()
        expect(await store.get('not-a-uuid')).toBeUndefined()
        expect(await store.get("'; DROP TABLE logs; --")).toBeUndefined()
      })

      it('keeps the first write of an id, within and across batches', async () => {
        const first = makeRecord({ createdAt: T, provider: 'first' })
        await store.write([first, { ...first, provider: 'second' }])
        await store.write([{ ...first, provider: 'third' }])
        expect((await store.get(first.id))?.provider).toBe('first')
        expect((await store.list({})).records).toHaveLength(1)
      })

      it('accepts an empty batch and a batch larger than one statement', async () => {
        await store.write([])
        await store.write(Array.from({ length: 1200 }, (_, i) => makeRecord({ createdAt: T + i })))
        expect((await store.analytics({}))[0]?.requests).toBe(1200)
      })

      it('refuses a batch with an invalid record and writes none of it', async () => {
        const good = makeRecord({ createdAt: T })
        const bad = { ...makeRecord({ createdAt: T }), id: 'nope' }
        await expect(store.write([good, bad])).rejects.toThrow(LogRecordError)
        await expect(store.write([{ ...good, score: 101 }])).rejects.toThrow(LogRecordError)
        expect(await store.get(good.id)).toBeUndefined()
      })

      it('keeps ids lower-case and finds them in any case', async () => {
        const record = makeRecord({ createdAt: T })
        await store.write([{ ...record, id: record.id.toUpperCase() }])
        expect((await store.get(record.id.toUpperCase()))?.id).toBe(record.id)
      })

      it('returns text JSON escapes and numbers it writes with an exponent as they were written', async () => {
        const text = 'q"b\\s/\n\r\t\b\f\u0001\u001f\u007f é 😀 \u2028\u2029 \\u0041 {"k":[1]}'
        const record = makeRecord({
          createdAt: T,
          path: `/${text}`,
          model: text,
          requestBody: text,
          responseBody: JSON.stringify({ content: text }),
          metadata: { [text]: text, n: 1e21, small: 5e-7 },
          cost: 1.5e-9,
          durationMs: 1e-7,
        })
        await store.write([record])
        expect(await store.get(record.id)).toEqual(record)
      })

      it('stores text a database cannot hold with U+FFFD in its place', async () => {
        const record = makeRecord({
          createdAt: T,
          provider: 'a\u0000b',
          requestBody: 'x\ud800y',
          responseBody: 'z\u0000',
        })
        await store.write([record])
        const stored = await store.get(record.id)
        expect([stored?.provider, stored?.requestBody, stored?.responseBody]).toEqual([
          'a\ufffdb',
          'x\ufffdy',
          'z\ufffd',
        ])
      })

      it('returns bodies from list only with includeBodies', async () => {
        const { all } = fixture()
        await store.write(all)
        const plain = await store.list({})
        expect(plain.records.every((r) => r.requestBody === null && r.responseBody === null)).toBe(true)
        const full = await store.list({ includeBodies: true })
        expect(full.records.every((r) => r.requestBody !== null && r.responseBody !== null)).toBe(true)
        expect(full.records).toEqual([...all].reverse())
      })

      it('keeps guard exactly, and records without one have none', async () => {
        const { records, all } = fixture()
        await store.write(all)
        for (const name of ['A', 'B', 'D', 'E'] as const) {
          const record = records[name]
          expect((await store.get(record.id))?.guard, name).toStrictEqual(record.guard)
        }
        expect(await store.get(records.C.id)).not.toHaveProperty('guard')
        const plain = makeRecord({ createdAt: T + DAY })
        const routed = makeRecord({ createdAt: T + DAY, route: records.A.route })
        await store.write([plain, routed])
        expect(await store.get(plain.id)).not.toHaveProperty('guard')
        expect(await store.get(routed.id)).not.toHaveProperty('guard')
        expect((await store.list({})).records.filter((r) => r.guard !== undefined)).toHaveLength(4)
        const { records: listed } = await store.list({
          filters: [{ field: 'dlpAction', op: 'eq', value: 'REDACT' }],
        })
        expect(listed.map((r) => r.guard)).toStrictEqual([records.B.guard])
      })

      it('keeps a WebSocket session exactly, and other records have none', async () => {
        const websocket = {
          framesIn: 4,
          framesOut: 12,
          closeCode: 4429,
          closeReason: "Spend limit exceeded: rule 'daily'",
          closedBy: 'gateway',
        } as const
        const session = makeRecord({ createdAt: T + DAY, websocket })
        const plain = makeRecord({ createdAt: T + DAY })
        await store.write([session, plain])
        expect((await store.get(session.id))?.websocket).toStrictEqual(websocket)
        expect(await store.get(plain.id)).not.toHaveProperty('websocket')
        const { records: listed } = await store.list({})
        expect(listed.filter((r) => r.websocket !== undefined)).toHaveLength(1)
      })

      it('hands out copies of guard that a caller cannot change the stored record through', async () => {
        const { records, all } = fixture()
        await store.write(all)
        const got = (await store.get(records.B.id))!
        got.guard!.dlp!.findings[0]!.policyIds.push('changed')
        got.guard!.guardrails!.unavailable!.pop()
        expect((await store.get(records.B.id))?.guard).toStrictEqual(records.B.guard)
      })

      it('keeps no more of guard than its fields, and refuses one out of bounds', async () => {
        const base: LogGuard = { dlp: { action: 'FLAG', findings: [finding('REQUEST', '/a', 1, 2)] } }
        // A finding that carries the matched text, which a store must not keep.
        const leaky = { ...finding('REQUEST', '/a', 1, 2), text: '4111 1111 1111 1111' }
        const withText: LogGuard = { dlp: { action: 'FLAG', findings: [leaky] } }
        const record = makeRecord({ createdAt: T, guard: withText })
        await store.write([record])
        expect((await store.get(record.id))?.guard).toStrictEqual(base)
        const long = 'x'.repeat(257)
        const hit = { category: 'S1', score: 0.5, classifier: 'llama-guard' }
        const bad: unknown[] = [
          {
            dlp: {
              action: 'FLAG',
              findings: Array.from({ length: 101 }, () => finding('REQUEST', '/a', 1, 2)),
            },
          },
          { dlp: { action: 'ALLOW', findings: [] } },
          { dlp: { action: 'FLAG', findings: [{ ...finding('REQUEST', '/a', 1, 2), profileId: long }] } },
          { dlp: { action: 'FLAG', findings: [{ ...finding('REQUEST', '/a', 1, 2), policyIds: [long] }] } },
          { dlp: { action: 'FLAG', findings: [finding('REQUEST', '/a', 5, 2)] } },
          { dlp: { action: 'FLAG', findings: [finding('BODY' as 'REQUEST', '/a', 1, 2)] } },
          { dlp: { action: 'FLAG' } },
          { guardrails: { action: 'FLAG', prompt: [{ ...hit, score: 1.5 }] } },
          { guardrails: { action: 'FLAG', prompt: [{ ...hit, score: -0.1 }] } },
          { guardrails: { action: 'FLAG', answer: [{ ...hit, category: long }] } },
          { guardrails: { action: 'REDACT', prompt: [hit] } },
          { guardrails: { action: 'UNAVAILABLE', unavailable: ['stream'] } },
          'BLOCK',
        ]
        for (const guard of bad) {
          const refused = makeRecord({ createdAt: T + 1, guard: guard as LogGuard })
          await expect(store.write([refused]), JSON.stringify(guard).slice(0, 80)).rejects.toThrow(
            LogRecordError,
          )
          expect(await store.get(refused.id)).toBeUndefined()
        }
      })
    })

    describe('filters', () => {
      for (const [kind, cases] of Object.entries(FILTER_CASES)) {
        it(`applies every operator to ${kind} fields`, async () => {
          const { all, names } = fixture()
          await store.write(all)
          for (const [field, op, value, expected] of cases) {
            const { records } = await store.list({
              filters: [{ field, op, value } as LogFilter],
              orderBy: 'createdAt',
              direction: 'asc',
            })
            expect(names(records).join(''), `${field} ${op} ${JSON.stringify(value)}`).toBe(expected)
          }
        })
      }

      it('combines filters with AND', async () => {
        const { all, names } = fixture()
        await store.write(all)
        const filters: LogFilter[] = [
          { field: 'provider', op: 'eq', value: 'openai' },
          { field: 'cached', op: 'eq', value: false },
        ]
        expect(names((await store.list({ filters })).records)).toEqual(['A'])
      })

      it('refuses operators and values that do not fit the field', async () => {
        const bad: LogFilter[] = [
          { field: 'provider', op: 'lt', value: 'x' },
          { field: 'cost', op: 'contains', value: 1 },
          { field: 'success', op: 'gt', value: true },
          { field: 'statusCode', op: 'eq', value: 'abc' },
          { field: 'createdAt', op: 'eq', value: 1.5 },
          { field: 'metadata.team', op: 'lt', value: 'abc' },
          { field: 'colour' as LogFilter['field'], op: 'eq', value: 'red' },
          { field: 'dlpAction', op: 'contains', value: 'BLOCK' },
          { field: 'dlpAction', op: 'eq', value: 'DENY' },
          { field: 'dlpAction', op: 'eq', value: 1 },
          { field: 'guardrailAction', op: 'eq', value: 'REDACT' },
          { field: 'guardrailAction', op: 'gt', value: 'FLAG' },
        ]
        for (const filter of bad)
          await expect(store.list({ filters: [filter] })).rejects.toThrow(LogQueryError)
      })

      it('selects a time range, from inclusive and to exclusive', async () => {
        const { all, names } = fixture()
        await store.write(all)
        const list = async (from?: number, to?: number) =>
          names((await store.list({ from, to, direction: 'asc' })).records).join('')
        expect(await list(T + 1000, T + 3000)).toBe('BC')
        expect(await list(T + 4000)).toBe('E')
        expect(await list(undefined, T)).toBe('')
        await expect(store.list({ from: T + 1, to: T })).rejects.toThrow(LogQueryError)
      })
    })

    describe('order and pages', () => {
      it('orders newest first by default and by any order field either way', async () => {
        const { all, names } = fixture()
        await store.write(all)
        expect(names((await store.list({})).records).join('')).toBe('EDCBA')
        for (const [orderBy, direction, expected] of ORDER_CASES) {
          const { records } = await store.list({ orderBy, direction })
          expect(names(records).join(''), `${orderBy} ${direction}`).toBe(expected)
        }
      })

      it('orders text by code point, not by locale or UTF-16 unit', async () => {
        const providers = ['😀', 'b', 'ﬁ', 'B', 'é', 'a']
        await store.write(providers.map((provider, i) => makeRecord({ createdAt: T + i, provider })))
        const { records } = await store.list({ orderBy: 'provider', direction: 'asc' })
        expect(records.map((r) => r.provider)).toEqual(['B', 'a', 'b', 'é', 'ﬁ', '😀'])
      })

      it('pages through every order without duplicates or gaps', async () => {
        const records = pagingRecords()
        await store.write(records)
        const orders = ['createdAt', 'provider', 'cost', 'success', 'duration'] as const
        for (const orderBy of orders) {
          for (const direction of ['asc', 'desc'] as const) {
            const whole = await store.list({ orderBy, direction, limit: 1000 })
            const paged = await listAll(store, { orderBy, direction, limit: 4 })
            expect(
              paged.map((r) => r.id),
              `${orderBy} ${direction}`,
            ).toEqual(whole.records.map((r) => r.id))
            expect(new Set(paged.map((r) => r.id)).size).toBe(records.length)
          }
        }
      })

      it('keeps its place when records are written between pages', async () => {
        const records = pagingRecords()
        await store.write(records)
        const first = await store.list({ limit: 5 })
        const last = first.records.at(-1)!
        const newer = makeRecord({ createdAt: T + DAY })
        const older = makeRecord({ createdAt: T - 1000 })
        const tied = makeRecord({ createdAt: last.createdAt })
        await store.write([newer, older, tied])
        const rest = await listAll(store, { limit: 5, cursor: first.nextCursor })
        const seen = [...first.records, ...rest].map((r) => r.id)
        expect(new Set(seen).size).toBe(seen.length)
        for (const record of records) expect(seen).toContain(record.id)
        expect(seen).toContain(older.id)
        expect(seen).not.toContain(newer.id)
        // Same time as the cursor: the id decides which side of it the record falls on.
        expect(seen.includes(tied.id)).toBe(tied.id < last.id)
      })

      it('keeps its place among nulls when records are written between pages', async () => {
        await store.write(pagingRecords())
        const query = { orderBy: 'provider', direction: 'asc', limit: 4 } as const
        const first = await store.list(query)
        const before = makeRecord({ createdAt: T, provider: 'aaa' })
        const after = makeRecord({ createdAt: T, provider: 'zzz' })
        const nullProvider = makeRecord({ createdAt: T, provider: null })
        await store.write([before, after, nullProvider])
        const rest = await listAll(store, { ...query, cursor: first.nextCursor })
        const seen = [...first.records, ...rest].map((r) => r.id)
        expect(new Set(seen).size).toBe(seen.length)
        expect(seen).toHaveLength(32)
        expect(seen).not.toContain(before.id)
        expect(rest.at(-1)?.provider ?? null).toBeNull()
      })

      it('ends with a full page that has no cursor, and defaults to 50 of at most 1000', async () => {
        await store.write(Array.from({ length: 60 }, (_, i) => makeRecord({ createdAt: T + i })))
        const first = await store.list({})
        expect(first.records).toHaveLength(50)
        const second = await store.list({ cursor: first.nextCursor })
        expect(second.records).toHaveLength(10)
        expect(second.nextCursor).toBeUndefined()
        const exact = await store.list({ limit: 30, cursor: (await store.list({ limit: 30 })).nextCursor })
        expect(exact.records).toHaveLength(30)
        expect(exact.nextCursor).toBeUndefined()
        await expect(store.list({ limit: 1001 })).rejects.toThrow(LogQueryError)
        await expect(store.list({ limit: 0 })).rejects.toThrow(LogQueryError)
      })

      it('refuses a cursor from another order and one it never made', async () => {
        await store.write(pagingRecords())
        const { nextCursor } = await store.list({ limit: 2 })
        await expect(store.list({ cursor: nextCursor, orderBy: 'cost' })).rejects.toThrow(LogQueryError)
        await expect(store.list({ cursor: nextCursor, direction: 'asc' })).rejects.toThrow(LogQueryError)
        await expect(store.list({ cursor: 'garbage' })).rejects.toThrow(LogQueryError)
      })
    })

    describe('patch', () => {
      it('sets and clears feedback and score, and the filters see it', async () => {
        const { records, all, names } = fixture()
        await store.write(all)
        const patched = await store.patch(records.A.id, { feedback: 1, score: 87 })
        expect(patched).toEqual({ ...records.A, feedback: 1, score: 87 })
        expect(await store.get(records.A.id)).toEqual(patched)
        const filters: LogFilter[] = [{ field: 'feedback', op: 'eq', value: 1 }]
        expect(names((await store.list({ filters })).records)).toEqual(['A'])
        await store.patch(records.A.id, { feedback: -1 })
        expect((await store.get(records.A.id))?.feedback).toBe(-1)
        expect(await store.patch(records.A.id, { feedback: null, score: null })).toEqual(records.A)
      })

      it('replaces metadata whole', async () => {
        const { records, all, names } = fixture()
        await store.write(all)
        await store.patch(records.A.id, { metadata: { team: 'green', reviewed: true } })
        expect((await store.get(records.A.id))?.metadata).toEqual({ team: 'green', reviewed: true })
        const green = await store.list({ filters: [{ field: 'metadata.team', op: 'eq', value: 'green' }] })
        expect(names(green.records)).toEqual(['A'])
        const tier = await store.list({ filters: [{ field: 'metadata.key', op: 'eq', value: 'tier' }] })
        expect(names(tier.records).sort()).toEqual(['B', 'E'])
      })

      it('changes nothing for an empty patch and answers undefined for an unknown id', async () => {
        const { records, all } = fixture()
        await store.write(all)
        expect(await store.patch(records.B.id, {})).toEqual(records.B)
        expect(await store.patch(uuidv7(), { feedback: 1 })).toBeUndefined()
        expect(await store.patch('nope', { feedback: 1 })).toBeUndefined()
      })

      it('refuses values outside the rules and leaves the record alone', async () => {
        const { records, all } = fixture()
        await store.write(all)
        const bad = [
          { feedback: 2 },
          { feedback: 0 },
          { score: 101 },
          { score: -1 },
          { score: 1.5 },
          { metadata: { a: 1, b: 2, c: 3, d: 4, e: 5, f: 6 } },
          { metadata: { nested: { no: true } } },
          { rating: 5 },
        ]
        for (const patch of bad) {
          await expect(store.patch(records.A.id, patch as never), JSON.stringify(patch)).rejects.toThrow(
            LogQueryError,
          )
        }
        expect(await store.get(records.A.id)).toEqual(records.A)
      })
    })

    describe('delete', () => {
      it('deletes what a selection matches and says how many', async () => {
        const { all, names } = fixture()
        await store.write(all)
        expect(await store.delete({ filters: [{ field: 'provider', op: 'eq', value: 'openai' }] })).toBe(2)
        expect(await store.delete({ filters: [{ field: 'provider', op: 'eq', value: 'openai' }] })).toBe(0)
        expect(await store.delete({ from: T + 3000 })).toBe(2)
        expect(names((await store.list({})).records)).toEqual(['B'])
        expect(await store.delete({})).toBe(1)
        expect((await store.list({})).records).toEqual([])
      })
    })

    describe('analytics', () => {
      const totals = (query: AnalyticsQuery) => store.analytics(query)

      it('totals requests, errors, cache hits, tokens, cost and latency', async () => {
        await store.write(fixture().all)
        const [row, ...rest] = await totals({})
        expect(rest).toEqual([])
        expect(row).toMatchObject({
          group: {},
          requests: 5,
          errors: 2,
          cacheHits: 1,
          tokensIn: 115,
          tokensOut: 20,
          thumbsUp: 0,
          thumbsDown: 0,
          scored: 0,
          scoreAvg: null,
        })
        expect(row?.bucketStart).toBeUndefined()
        expect(row?.cost).toBeCloseTo(1.75, 12)
        expect(row?.latencyP50).toBe(40)
        expect(row?.latencyP95).toBeCloseTo(220, 9)
      })

      it('interpolates percentiles linearly, as percentile_cont does', async () => {
        await store.write(
          Array.from({ length: 100 }, (_, i) => makeRecord({ createdAt: T + i, durationMs: 100 - i })),
        )
        const [row] = await totals({})
        expect(row?.latencyP50).toBeCloseTo(50.5, 9)
        expect(row?.latencyP95).toBeCloseTo(95.05, 9)
        await store.write([makeRecord({ createdAt: T + DAY, durationMs: 7 })])
        const [single] = await totals({ from: T + DAY })
        expect([single?.latencyP50, single?.latencyP95]).toEqual([7, 7])
      })

      it('groups by provider, model, outcome and metadata keys, nulls last', async () => {
        await store.write(fixture().all)
        const groups = async (groupBy: AnalyticsQuery['groupBy']) =>
          (await totals({ groupBy })).map((row) => Object.values(row.group).join('/'))
        expect(await groups(['provider'])).toEqual(['anthropic', 'openai', 'workers-ai', ''])
        expect(await groups(['model'])).toEqual([
          '@cf/meta/llama-3.1-8b-instruct',
          'claude-3-5-sonnet',
          'gpt-4o',
          'gpt-4o-mini',
          '',
        ])
        expect(await groups(['outcome'])).toEqual(['cache_hit', 'rate_limited', 'success', 'upstream_error'])
        expect(await groups(['metadata.tier'])).toEqual(['10', '2.5', '3', ''])
        expect(await groups(['provider', 'metadata.team'])).toEqual([
          'anthropic/blue',
          'openai/red',
          'openai/',
          'workers-ai/',
          '/red',
        ])
        const [anthropic, openai, , none] = await totals({ groupBy: ['provider'] })
        expect(anthropic).toMatchObject({
          group: { provider: 'anthropic' },
          requests: 1,
          errors: 1,
          cost: null,
        })
        expect(openai).toMatchObject({
          group: { provider: 'openai' },
          requests: 2,
          cacheHits: 1,
          tokensIn: 15,
        })
        expect(openai?.cost).toBeCloseTo(0.5, 12)
        expect(openai?.latencyP50).toBeCloseTo(51.5, 9)
        expect(openai?.latencyP95).toBeCloseTo(95.15, 9)
        expect(none?.group).toEqual({ provider: null })
      })

      it('buckets by minute, hour and UTC day', async () => {
        const times = [T, T + 30_000, T + 90_000, T + 3_900_000, T + DAY]
        await store.write(times.map((createdAt) => makeRecord({ createdAt })))
        const buckets = async (bucket: AnalyticsQuery['bucket']) =>
          (await totals({ bucket })).map((row) => [row.bucketStart, row.requests])
        expect(await buckets('minute')).toEqual([
          [T, 2],
          [T + 60_000, 1],
          [T + 3_900_000, 1],
          [T + DAY, 1],
        ])
        expect(await buckets('hour')).toEqual([
          [T, 3],
          [T + 3_600_000, 1],
          [T + DAY, 1],
        ])
        const midnight = Date.UTC(2026, 0, 15)
        expect(await buckets('day')).toEqual([
          [midnight, 4],
          [midnight + DAY, 1],
        ])
      })

      it('applies filters and time range, and answers nothing over nothing', async () => {
        await store.write(fixture().all)
        expect((await totals({ filters: [{ field: 'success', op: 'eq', value: true }] }))[0]?.requests).toBe(
          3,
        )
        expect((await totals({ from: T + 1000, groupBy: ['provider'] })).map((r) => r.requests)).toEqual([
          1, 1, 1, 1,
        ])
        expect(await totals({ from: T + DAY })).toEqual([])
        expect(await totals({ from: T + DAY, groupBy: ['model'], bucket: 'hour' })).toEqual([])
      })

      it('groups by route and by principal, with feedback and exact cost sums', async () => {
        await store.write(routedRecords())
        const rows = async (query: AnalyticsQuery) => (await totals(query)).map(summary)
        expect(await rows({ groupBy: ['route'] })).toEqual([
          ['chat', 1, 0, 10, null, 1, 0, 0, null],
          ['tiered', 3, 1, 30, 0.3000033, 1, 1, 3, 226 / 3],
          [null, 2, 0, 20, 0.3, 0, 1, 1, 0],
        ])
        expect(await rows({ groupBy: ['principal'] })).toEqual([
          ['alice', 3, 1, 30, 0.4, 1, 1, 3, 60],
          ['bob', 1, 0, 10, 0.0000033, 0, 1, 1, 46],
          ['carol', 1, 0, 10, 0.2, 0, 0, 0, null],
          [null, 1, 0, 10, null, 1, 0, 0, null],
        ])
        expect(await rows({ groupBy: ['metadata.team'] })).toEqual([
          ['blue', 2, 0, 20, 0.2000033, 0, 1, 1, 46],
          ['red', 3, 1, 30, 0.4, 1, 1, 3, 60],
          [null, 1, 0, 10, null, 1, 0, 0, null],
        ])
        expect(await rows({})).toEqual([[6, 1, 60, 0.6000033, 2, 2, 4, 226 / 4]])
      })

      it('groups by variant, a record counting once in each branch it drew', async () => {
        const records = routedRecords()
        await store.write(records)
        const rows = async (query: AnalyticsQuery) => (await totals(query)).map(summary)
        const variants = await totals({ groupBy: ['variant'] })
        expect(variants.map(summary)).toEqual([
          ['tiered/split=10%', 2, 1, 20, 0.3, 1, 0, 2, 90],
          ['tiered/split=90%', 1, 0, 10, 0.0000033, 0, 1, 1, 46],
          ['tiered/tone=casual', 1, 1, 10, 0.2, 0, 0, 1, 100],
          ['tiered/tone=formal', 1, 0, 10, 0.0000033, 0, 1, 1, 46],
          [null, 3, 0, 30, 0.3, 1, 1, 1, 0],
        ])
        // Two records drew two branches each: eight group memberships for six requests.
        expect(variants.reduce((sum, row) => sum + row.requests, 0)).toBe(8)
        expect(variants[0]?.latencyP50).toBeCloseTo(20, 9)
        expect(variants[0]?.latencyP95).toBeCloseTo(29, 9)
        expect(variants[4]?.latencyP50).toBeCloseTo(50, 9)
        expect(await rows({ groupBy: ['principal', 'variant'] })).toEqual([
          ['alice', 'tiered/split=10%', 2, 1, 20, 0.3, 1, 0, 2, 90],
          ['alice', 'tiered/tone=casual', 1, 1, 10, 0.2, 0, 0, 1, 100],
          ['alice', null, 1, 0, 10, 0.1, 0, 1, 1, 0],
          ['bob', 'tiered/split=90%', 1, 0, 10, 0.0000033, 0, 1, 1, 46],
          ['bob', 'tiered/tone=formal', 1, 0, 10, 0.0000033, 0, 1, 1, 46],
          ['carol', null, 1, 0, 10, 0.2, 0, 0, 0, null],
          [null, null, 1, 0, 10, null, 1, 0, 0, null],
        ])
        const byMinute = await totals({ groupBy: ['variant'], bucket: 'minute' })
        expect(byMinute.map((row) => [row.bucketStart, row.group.variant, row.requests])).toEqual([
          [T, 'tiered/split=10%', 1],
          [T, 'tiered/split=90%', 1],
          [T, 'tiered/tone=formal', 1],
          [T + 60_000, 'tiered/split=10%', 1],
          [T + 60_000, 'tiered/tone=casual', 1],
          [T + 60_000, null, 2],
          [T + 120_000, null, 1],
        ])
        // Feedback given later counts too.
        await store.patch(records[3]!.id, { feedback: -1, score: 50 })
        expect(await rows({ groupBy: ['route', 'variant'] })).toEqual([
          ['chat', null, 1, 0, 10, null, 0, 1, 1, 50],
          ['tiered', 'tiered/split=10%', 2, 1, 20, 0.3, 1, 0, 2, 90],
          ['tiered', 'tiered/split=90%', 1, 0, 10, 0.0000033, 0, 1, 1, 46],
          ['tiered', 'tiered/tone=casual', 1, 1, 10, 0.2, 0, 0, 1, 100],
          ['tiered', 'tiered/tone=formal', 1, 0, 10, 0.0000033, 0, 1, 1, 46],
          [null, null, 2, 0, 20, 0.3, 0, 1, 1, 0],
        ])
      })

      it('filters on the route name in lists and analytics', async () => {
        const records = routedRecords()
        await store.write(records)
        const tiered: LogFilter[] = [{ field: 'route', op: 'eq', value: 'tiered' }]
        const listed = await store.list({ filters: tiered, direction: 'asc' })
        expect(listed.records.map((r) => r.id)).toEqual(records.slice(0, 3).map((r) => r.id))
        expect(listed.records[1]?.route).toEqual(records[1]?.route)
        const variants = await totals({ filters: tiered, groupBy: ['variant'] })
        expect(variants.map((row) => [row.group.variant, row.requests])).toEqual([
          ['tiered/split=10%', 2],
          ['tiered/split=90%', 1],
          ['tiered/tone=casual', 1],
          ['tiered/tone=formal', 1],
        ])
        const others = await totals({
          filters: [{ field: 'route', op: 'neq', value: 'tiered' }],
          groupBy: ['route'],
        })
        expect(others.map(summary)).toEqual([
          ['chat', 1, 0, 10, null, 1, 0, 0, null],
          [null, 2, 0, 20, 0.3, 0, 1, 1, 0],
        ])
        const split = await totals({
          filters: [{ field: 'route', op: 'contains', value: 'ier' }],
          groupBy: ['principal'],
        })
        expect(split.map((row) => [row.group.principal, row.cost])).toEqual([
          ['alice', 0.3],
          ['bob', 0.0000033],
        ])
        await expect(
          store.list({ filters: [{ field: 'route', op: 'gt', value: 1 } as LogFilter] }),
        ).rejects.toThrow(LogQueryError)
      })

      it('filters on guard actions in analytics and deletion', async () => {
        const { all, names } = fixture()
        await store.write(all)
        const blocked: LogFilter[] = [{ field: 'dlpAction', op: 'eq', value: 'BLOCK' }]
        expect((await totals({ filters: blocked, groupBy: ['principal'] })).map(summary)).toEqual([
          ['alice', 1, 1, 0, null, 0, 0, 0, null],
        ])
        const unguarded: LogFilter[] = [
          { field: 'dlpAction', op: 'neq', value: 'FLAG' },
          { field: 'guardrailAction', op: 'neq', value: 'FLAG' },
        ]
        expect((await totals({ filters: unguarded }))[0]?.requests).toBe(3)
        expect(
          await store.delete({ filters: [{ field: 'guardrailAction', op: 'eq', value: 'UNAVAILABLE' }] }),
        ).toBe(1)
        expect(names((await store.list({ direction: 'asc' })).records).join('')).toBe('ACDE')
      })

      it('refuses groups it does not know and groups named twice', async () => {
        await expect(totals({ groupBy: ['path' as 'provider'] })).rejects.toThrow(LogQueryError)
        await expect(totals({ groupBy: ['model', 'model'] })).rejects.toThrow(LogQueryError)
        await expect(totals({ groupBy: ['variant', 'variant'] })).rejects.toThrow(LogQueryError)
        await expect(totals({ groupBy: ['variants' as 'variant'] })).rejects.toThrow(LogQueryError)
        await expect(totals({ bucket: 'week' as 'day' })).rejects.toThrow(LogQueryError)
      })
    })
  })
}
