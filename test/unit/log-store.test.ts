import { describe, expect, it } from 'vitest'
import { LogQueryError } from '../../src/errors.js'
import { compareText, metadataText } from '../../src/logs/filters.js'
import { createMemoryLogStore } from '../../src/logs/memory-store.js'
import { parseAnalyticsQuery, parseLogPatch, parseLogQuery } from '../../src/logs/query.js'
import type { LogRecord } from '../../src/logs/types.js'
import { logStoreConformance } from '../../src/testing/log-store-conformance.js'
import { collectGarbage } from '../helpers/gc.js'
import { sampleRecord } from '../helpers/log-store.js'
import { seededRandom } from '../helpers/random.js'

logStoreConformance('createMemoryLogStore()', async () => createMemoryLogStore())

function record(createdAt: number, body = ''): LogRecord {
  return sampleRecord({ createdAt, requestBody: body })
}

function issueOf(run: () => unknown): { path: string; message: string } | undefined {
  try {
    run()
  } catch (error) {
    expect(error).toBeInstanceOf(LogQueryError)
    return (error as LogQueryError).issues[0]
  }
  throw new Error('expected a LogQueryError')
}

describe('createMemoryLogStore() bounds', () => {
  it('drops the oldest written beyond maxRecords', async () => {
    const store = createMemoryLogStore({ maxRecords: 3 })
    const records = [1, 2, 3, 4, 5].map((i) => record(i))
    await store.write(records)
    expect((await store.list({ direction: 'asc' })).records.map((r) => r.createdAt)).toEqual([3, 4, 5])
    expect(await store.get(records[0]!.id)).toBeUndefined()
  })

  // Bodies over 16 KiB get memory of their own; smaller ones share slabs that are used again once emptied.
  it.each([
    { bodyBytes: 20_000, writes: 1100 },
    { bodyBytes: 2_000, writes: 11_000 },
  ])('lets go of the records it drops ($bodyBytes-byte bodies)', async ({ bodyBytes, writes }) => {
    const gc = collectGarbage()
    const store = createMemoryLogStore({ maxRecords: 100 })
    const held = () => {
      const { heapUsed, arrayBuffers } = process.memoryUsage()
      return heapUsed + arrayBuffers
    }
    gc()
    const before = held()
    // Records dropped one per write, their bodies 22 MB in all; the store keeps 100 of them.
    for (let i = 0; i < writes; i++) await store.write([record(i, String(i).padEnd(bodyBytes, 'x'))])
    gc()
    expect((await store.list({ limit: 1000 })).records).toHaveLength(100)
    expect(held() - before).toBeLessThan(8 * 1024 * 1024)
  })

  it.each([2, 40])(
    'gives back every body as written, while others come and go (%i kept)',
    async (maxRecords) => {
      const random = seededRandom(7)
      // One to four UTF-8 bytes each, and the replacement character a lone surrogate is stored as.
      const pieces = ['a', 'é', '€', '😀', '\uFFFD']
      const lengths = [0, 1, 100, 2000, 16_383, 16_384, 16_385, 40_000]
      const body = (): string | null => {
        const pick = random(lengths.length + 1)
        if (pick === lengths.length) return null
        let text = ''
        for (let bytes = 0; bytes < lengths[pick]!; ) {
          const piece = pieces[random(pieces.length)]!
          text += piece
          bytes += Buffer.byteLength(piece)
        }
        return text
      }
      const store = createMemoryLogStore({ maxRecords, maxBytes: 400_000 })
      const written = new Map<string, LogRecord>()
      const bodiesOf = (r: LogRecord | undefined) =>
        r && { requestBody: r.requestBody, responseBody: r.responseBody }
      const expectKeptAsWritten = async () => {
        const kept = (await store.list({ limit: 1000, includeBodies: true })).records
        for (const got of kept) expect(bodiesOf(got)).toEqual(bodiesOf(written.get(got.id)))
        return kept
      }
      for (let i = 0; i < 300; i++) {
        const r = sampleRecord({ createdAt: i, requestBody: body(), responseBody: body() })
        written.set(r.id, { ...r })
        await store.write([r])
        // The bodies of the record just written, wherever they went, and of every record still kept.
        expect(bodiesOf(await store.get(r.id))).toEqual(bodiesOf(written.get(r.id)))
        if (i % 37 === 36) await store.delete({ from: i - 30, to: i - 20 })
        await expectKeptAsWritten()
      }
      expect((await expectKeptAsWritten()).length).toBeGreaterThan(0)
    },
  )

  it('writes around a body left alone in its slab', async () => {
    const store = createMemoryLogStore()
    const alone = record(1, 'a'.repeat(100))
    // Bodies under 16 KiB share 64 KiB slabs: these four fill the first but for 1436 bytes, then go.
    const others = [2, 3, 4, 5].map((at) => record(at, 'b'.repeat(16_000)))
    await store.write([alone, ...others])
    await store.delete({ from: 2 })
    // No room for it after the one body left: it must go elsewhere, not over that body.
    const next = record(6, 'c'.repeat(16_000))
    await store.write([next])
    expect((await store.get(alone.id))?.requestBody).toBe('a'.repeat(100))
    expect((await store.get(next.id))?.requestBody).toBe('c'.repeat(16_000))
  })

  it('bounds the memory of slabs that deletions left nearly empty', async () => {
    const gc = collectGarbage()
    const maxBytes = 1024 * 1024
    const store = createMemoryLogStore({ maxBytes })
    gc()
    const before = process.memoryUsage().arrayBuffers
    // Each round fills some sixteen slabs, then deletes all but one record in each: the bodies kept are a
    // sixtieth of the bound, the slabs they keep grow by a megabyte a round until the oldest records go.
    for (let round = 0; round < 20; round++) {
      const from = round * 1000
      for (let i = from; i < from + 1000; i++) await store.write([record(i, 'x'.repeat(1000))])
      for (let i = from; i < from + 1000; i += 64) await store.delete({ from: i + 1, to: i + 63 })
    }
    gc()
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(2 * maxBytes + 1024 * 1024)
    const kept = (await store.list({ limit: 1000, direction: 'asc', includeBodies: true })).records
    expect(kept.at(-1)?.createdAt).toBe(19_960)
    expect(kept.every((r) => r.requestBody === 'x'.repeat(1000))).toBe(true)
  })

  it('drops the oldest beyond maxBytes of bodies, and keeps a record too big alone without bodies', async () => {
    const store = createMemoryLogStore({ maxBytes: 10 })
    const [a, b, c] = [record(1, 'aaaa'), record(2, 'bbbb'), record(3, 'ccc')]
    await store.write([a!, b!, c!])
    expect((await store.list({ direction: 'asc' })).records.map((r) => r.createdAt)).toEqual([2, 3])
    const huge = record(4, 'x'.repeat(11))
    await store.write([huge])
    expect((await store.get(huge.id))?.requestBody).toBeNull()
    expect(await store.get(b!.id)).toBeDefined()
    // Multi-byte characters count in UTF-8 bytes, not UTF-16 units.
    const wide = record(5, 'éééé')
    await store.write([wide])
    expect(await store.get(b!.id)).toBeUndefined()
  })

  it('ends a page with bodies at 32 MiB of them, and pages on to the rest', async () => {
    const store = createMemoryLogStore({ maxBytes: 256 * 1024 * 1024 })
    const body = 'x'.repeat(4 * 1024 * 1024)
    const written = Array.from({ length: 5 }, (_, i) =>
      sampleRecord({ createdAt: 1000 + i, requestBody: body, responseBody: body }),
    )
    await store.write([...written, record(2000)])

    const first = await store.list({ limit: 1000, direction: 'asc', includeBodies: true })
    expect(first.records.map((r) => r.createdAt)).toEqual([1000, 1001, 1002, 1003])
    expect(first.records.every((r) => r.requestBody === body && r.responseBody === body)).toBe(true)
    const second = await store.list({
      limit: 1000,
      direction: 'asc',
      includeBodies: true,
      cursor: first.nextCursor,
    })
    expect(second.records.map((r) => [r.createdAt, r.requestBody === body])).toEqual([
      [1004, true],
      [2000, false],
    ])
    expect(second.nextCursor).toBeUndefined()
    expect((await store.list({ limit: 1000 })).records).toHaveLength(6)
  })

  it('keeps evicting in write order across thousands of writes and deletions', async () => {
    const store = createMemoryLogStore({ maxRecords: 600 })
    // The records the store should hold, oldest first: a plain model of the bound and of deletions.
    let kept: number[] = []
    const listed = async () =>
      (await store.list({ direction: 'asc', limit: 1000 })).records.map((r) => r.createdAt)
    for (let i = 1; i <= 8300; i++) {
      await store.write([record(i)])
      kept.push(i)
      if (kept.length > 600) kept.shift()
      // Writes alone at first (the oldest go one per write), then deletions among them.
      if (i < 3000) continue
      if (i % 2000 === 0) {
        await store.delete({})
        kept = []
      } else if (i % 450 === 0) {
        await store.delete({ from: i - 400, to: i - 5 })
        kept = kept.filter((at) => at < i - 400 || at >= i - 5)
        expect(await listed()).toEqual(kept)
      }
    }
    expect(await listed()).toEqual(kept)
  })

  it('frees the bytes of deleted records', async () => {
    const store = createMemoryLogStore({ maxBytes: 8 })
    const a = record(1, 'aaaa')
    await store.write([a])
    await store.delete({})
    await store.write([record(2, 'bbbb'), record(3, 'cccc')])
    expect((await store.list({})).records).toHaveLength(2)
  })

  it('refuses bounds that are not positive integers', () => {
    expect(() => createMemoryLogStore({ maxRecords: 0 })).toThrow(TypeError)
    expect(() => createMemoryLogStore({ maxBytes: 1.5 })).toThrow(TypeError)
  })

  it('hands out copies that do not change what it stores', async () => {
    const store = createMemoryLogStore()
    const original = record(1)
    await store.write([original])
    original.provider = 'changed'
    const got = await store.get(original.id)
    got!.metadata.added = true
    expect(await store.get(original.id)).toMatchObject({ provider: 'openai', metadata: {} })
  })
})

describe('createMemoryLogStore() cost sums', () => {
  it('sums costs exactly and rounds the sum once to 10 places', async () => {
    const store = createMemoryLogStore()
    const priced = (createdAt: number, provider: string, cost: number) => ({
      ...record(createdAt),
      provider,
      cost,
    })
    // 1000 requests of 22 gpt-4o-mini prompt tokens: floats would sum them to 0.003299999999999948.
    await store.write(Array.from({ length: 1000 }, (_, i) => priced(1000 + i, 'openai', 0.0000033)))
    await store.write([
      priced(5000, 'x', 0.1),
      priced(5001, 'x', 0.2),
      // Host-written costs finer than 10 places: exact until the one rounding, halves away from zero.
      priced(5002, 'y', 0.00000000004),
      priced(5003, 'y', 0.00000000001),
    ])
    const rows = await store.analytics({ groupBy: ['provider'] })
    expect(rows.map((row) => [row.group.provider, row.cost])).toEqual([
      ['openai', 0.0033],
      ['x', 0.3],
      ['y', 0.0000000001],
    ])
  })
})

describe('parseLogQuery()', () => {
  it('reads a URL query: filters as JSON text, numbers and booleans as strings', () => {
    const query = parseLogQuery({
      filters: JSON.stringify([
        { field: 'cost', op: 'gt', value: '0.01' },
        { field: 'cached', op: 'eq', value: 'true' },
        { field: 'metadata.tier', op: 'eq', value: 3 },
      ]),
      from: '1700000000000',
      limit: '20',
      includeBodies: 'true',
    })
    expect(query).toEqual({
      filters: [
        { field: 'cost', op: 'gt', value: 0.01 },
        { field: 'cached', op: 'eq', value: true },
        { field: 'metadata.tier', op: 'eq', value: '3' },
      ],
      from: 1_700_000_000_000,
      orderBy: 'createdAt',
      direction: 'desc',
      limit: 20,
      includeBodies: true,
    })
  })

  it('fills the defaults', () => {
    expect(parseLogQuery(undefined)).toEqual({
      filters: [],
      orderBy: 'createdAt',
      direction: 'desc',
      limit: 50,
      includeBodies: false,
    })
  })

  it('names the bad field in its issues and message', () => {
    const op = issueOf(() => parseLogQuery({ filters: [{ field: 'cost', op: 'contains', value: 1 }] }))
    expect(op?.path).toBe('filters.0.op')
    expect(op?.message).toMatch(/'contains' does not apply to 'cost'/)
    expect(issueOf(() => parseLogQuery({ filters: [{ field: 'colour', op: 'eq', value: 1 }] }))?.path).toBe(
      'filters.0.field',
    )
    expect(issueOf(() => parseLogQuery({ limit: 5000 }))?.path).toBe('limit')
    expect(issueOf(() => parseLogQuery({ orderBy: 'path' }))?.path).toBe('orderBy')
    expect(issueOf(() => parseLogQuery({ order_by: 'model' }))?.message).toMatch(/order_by/)
    expect(issueOf(() => parseLogQuery({ filters: '[{"field":' }))?.path).toBe('filters')
    expect(issueOf(() => parseLogQuery({ cursor: 'abc' }))?.path).toBe('cursor')
    expect(() => parseLogQuery({ limit: 5000 })).toThrow(/Invalid log query: limit: /)
  })
  it('takes only true and false for a boolean field, so that no store reads yes, 1 or f its own way', () => {
    for (const value of ['yes', '1', 'f', 'maybe', 1, ['true']]) {
      const issue = issueOf(() => parseLogQuery({ filters: [{ field: 'success', op: 'eq', value }] }))
      expect(issue, JSON.stringify(value)).toMatchObject({ path: 'filters.0.value' })
    }
    expect(parseLogQuery({ filters: [{ field: 'success', op: 'eq', value: 'false' }] }).filters).toEqual([
      { field: 'success', op: 'eq', value: false },
    ])
  })
})

describe('parseLogPatch()', () => {
  it('accepts feedback, score and metadata, and clears with null', () => {
    expect(parseLogPatch({ feedback: -1, score: 0, metadata: { team: 'red' } })).toEqual({
      feedback: -1,
      score: 0,
      metadata: { team: 'red' },
    })
    expect(parseLogPatch({ feedback: null, score: null })).toEqual({ feedback: null, score: null })
  })

  it('names each bad field', () => {
    expect(issueOf(() => parseLogPatch({ feedback: 0 }))?.path).toBe('feedback')
    expect(issueOf(() => parseLogPatch({ score: 100.5 }))?.path).toBe('score')
    expect(
      issueOf(() => parseLogPatch({ metadata: { a: 1, b: 1, c: 1, d: 1, e: 1, f: 1 } }))?.message,
    ).toMatch(/at most 5/)
    expect(issueOf(() => parseLogPatch({ metadata: { a: [1] } }))?.path).toBe('metadata.a')
  })

  it('keeps a metadata entry named __proto__, as a written record keeps it', () => {
    const patch = parseLogPatch(JSON.parse('{"metadata":{"__proto__":"x","a":1}}'))
    expect(Object.entries(patch.metadata!)).toEqual([
      ['__proto__', 'x'],
      ['a', 1],
    ])
  })
})

describe('parseAnalyticsQuery()', () => {
  it('reads groupBy as an array, a JSON array or a comma-separated list', () => {
    const expected = ['provider', 'metadata.team']
    expect(parseAnalyticsQuery({ groupBy: expected }).groupBy).toEqual(expected)
    expect(parseAnalyticsQuery({ groupBy: JSON.stringify(expected) }).groupBy).toEqual(expected)
    expect(parseAnalyticsQuery({ groupBy: 'provider,metadata.team', bucket: 'day' })).toEqual({
      filters: [],
      groupBy: expected,
      bucket: 'day',
    })
  })

  it('accepts the principal, route and variant groups and a route filter', () => {
    const query = parseAnalyticsQuery({
      groupBy: 'principal,route,variant',
      filters: '[{"field":"route","op":"eq","value":"tiered"}]',
    })
    expect(query).toEqual({
      filters: [{ field: 'route', op: 'eq', value: 'tiered' }],
      groupBy: ['principal', 'route', 'variant'],
    })
  })

  it('names the bad field', () => {
    expect(issueOf(() => parseAnalyticsQuery({ groupBy: ['path'] }))?.path).toBe('groupBy.0')
    expect(issueOf(() => parseAnalyticsQuery({ groupBy: ['path'] }))?.message).toMatch(
      /principal, route, variant or metadata/,
    )
    expect(
      issueOf(() => parseAnalyticsQuery({ filters: [{ field: 'route', op: 'lt', value: 1 }] }))?.path,
    ).toBe('filters.0.op')
    expect(issueOf(() => parseAnalyticsQuery({ bucket: 'week' }))?.path).toBe('bucket')
    expect(issueOf(() => parseAnalyticsQuery({ from: 5, to: 4 }))?.path).toBe('to')
  })
})

describe('log filter semantics', () => {
  it('prints metadata numbers as Postgres prints jsonb numbers', () => {
    expect([1e21, 1.5e-7, -2.5e-7, 0.1, 12, true, 'x'].map(metadataText)).toEqual([
      '1000000000000000000000',
      '0.00000015',
      '-0.00000025',
      '0.1',
      '12',
      'true',
      'x',
    ])
  })

  it('compares text by code point', () => {
    expect(['😀', 'ﬁ', 'a', 'B'].sort(compareText)).toEqual(['B', 'a', 'ﬁ', '😀'])
  })
})
