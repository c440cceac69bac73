import { describe, expect, it } from 'vitest'
import { assembleSse, describeAnswer, prettyJson } from '../../dashboard/src/answer.js'
import { buildFilters, EMPTY_FILTERS } from '../../dashboard/src/filters.js'
import {
  formatCost,
  formatMs,
  formatNumber,
  formatPercent,
  formatUtcDate,
} from '../../dashboard/src/format.js'
import { bucketValues, groupSeries, METRICS } from '../../dashboard/src/series.js'
import { median, spendReport } from '../../dashboard/src/spend.js'
import { bucketFor, bucketStarts, resolveRange } from '../../dashboard/src/time-range.js'
import { parseLogQuery } from '../../src/logs/query.js'
import type { AnalyticsRow } from '../../src/logs/types.js'

const DAY = 86_400_000

function row(group: Record<string, string | null>, fields: Partial<AnalyticsRow> = {}): AnalyticsRow {
  return {
    group,
    requests: 1,
    errors: 0,
    cacheHits: 0,
    tokensIn: 10,
    tokensOut: 20,
    cost: 0.01,
    latencyP50: 100,
    latencyP95: 200,
    thumbsUp: 0,
    thumbsDown: 0,
    scored: 0,
    scoreAvg: null,
    ...fields,
  }
}

describe('spend per user', () => {
  it('takes the median of an odd and an even count', () => {
    expect(median([])).toBe(0)
    expect(median([5, 1, 3])).toBe(3)
    expect(median([4, 1, 3, 2])).toBe(2.5)
  })

  it('counts active users, their median, and users above twice it; anonymous requests apart', () => {
    const rows = [
      row({ principal: 'alice', 'metadata.session': null }, { cost: 1, bucketStart: 0 }),
      row({ principal: 'bob', 'metadata.session': null }, { cost: 2, bucketStart: 0 }),
      row({ principal: 'carol', 'metadata.session': null }, { cost: 9, bucketStart: 0 }),
      row({ principal: null, 'metadata.session': null }, { requests: 4, cost: 50, bucketStart: 0 }),
    ]
    const report = spendReport(rows, 'session')
    expect(report.activeUsers).toBe(3)
    expect(report.anonymousRequests).toBe(4)
    expect(report.medianSpend).toBe(2)
    expect(report.heavyUsers.map((user) => user.principal)).toEqual(['carol'])
    expect(report.users.map((user) => [user.principal, user.ratio])).toEqual([
      ['carol', 4.5],
      ['bob', 1],
      ['alice', 0.5],
    ])
    expect(report.totalCost).toBe(12)
  })

  it("makes sessions of the session key's values, across days, else of days; flags one over twice the user's usual", () => {
    const rows = [
      // alice: session s1 over two days (0.01 + 0.01), s2, s3, and a day without a session key.
      row({ principal: 'alice', 'metadata.session': 's1' }, { bucketStart: 0, cost: 0.01 }),
      row({ principal: 'alice', 'metadata.session': 's1' }, { bucketStart: DAY, cost: 0.01 }),
      row({ principal: 'alice', 'metadata.session': 's2' }, { bucketStart: DAY, cost: 0.03 }),
      row({ principal: 'alice', 'metadata.session': 's3' }, { bucketStart: 2 * DAY, cost: 0.5, requests: 9 }),
      row({ principal: 'alice', 'metadata.session': null }, { bucketStart: 2 * DAY, cost: 0.02 }),
      // bob: two sessions only, however different: too few to tell what is usual.
      row({ principal: 'bob', 'metadata.session': 'x' }, { bucketStart: 0, cost: 0.01 }),
      row({ principal: 'bob', 'metadata.session': 'y' }, { bucketStart: 0, cost: 5 }),
    ]
    const report = spendReport(rows, 'session')
    expect(report.sessions).toBe(6)
    expect(report.users.find((user) => user.principal === 'alice')?.sessions).toBe(4)
    expect(report.flaggedSessions).toEqual([
      {
        principal: 'alice',
        session: 's3',
        start: 2 * DAY,
        requests: 9,
        cost: 0.5,
        usual: 0.025,
        flagged: true,
      },
    ])
  })

  it('sums costs without float drift', () => {
    const rows = [0.1, 0.2].map((cost, i) =>
      row({ principal: 'a', 'metadata.s': null }, { cost, bucketStart: i * DAY }),
    )
    expect(spendReport(rows, 's').users[0]?.cost).toBe(0.3)
  })
})

describe('log filters', () => {
  it('builds nothing from an empty form', () => {
    expect(buildFilters(EMPTY_FILTERS)).toEqual([])
  })

  it('builds filters the API accepts, from every field', () => {
    const filters = buildFilters({
      ...EMPTY_FILTERS,
      provider: ' openai ',
      model: 'gpt-4o',
      status: '200',
      success: 'false',
      cached: 'true',
      costOp: 'gt',
      cost: '0.01',
      tokensOp: 'lt',
      tokens: '500',
      durationOp: 'gt',
      duration: '1000',
      metadataKey: 'team',
      metadataValue: 'search',
      feedback: '-1',
      principal: 'alice',
    })
    expect(filters).toEqual([
      { field: 'provider', op: 'eq', value: 'openai' },
      { field: 'model', op: 'contains', value: 'gpt-4o' },
      { field: 'statusCode', op: 'eq', value: 200 },
      { field: 'success', op: 'eq', value: false },
      { field: 'cached', op: 'eq', value: true },
      { field: 'cost', op: 'gt', value: 0.01 },
      { field: 'tokens', op: 'lt', value: 500 },
      { field: 'duration', op: 'gt', value: 1000 },
      { field: 'metadata.team', op: 'eq', value: 'search' },
      { field: 'feedback', op: 'eq', value: -1 },
      { field: 'principal', op: 'eq', value: 'alice' },
    ])
    expect(parseLogQuery({ filters: JSON.stringify(filters) }).filters).toHaveLength(11)
  })

  it('leaves out a number that is not one, and metadata without a value', () => {
    expect(buildFilters({ ...EMPTY_FILTERS, cost: 'abc', metadataKey: 'team' })).toEqual([])
  })
})

describe('answers', () => {
  it('shows an assembled stream as its text', () => {
    const view = describeAnswer('{"stream":true,"content":"Hello there","finishReason":"stop","events":7}')
    expect(view).toMatchObject({ kind: 'stream', text: 'Hello there', finishReason: 'stop', events: 7 })
  })

  it('finds the text of OpenAI, Anthropic and Gemini answers', () => {
    expect(describeAnswer('{"choices":[{"message":{"content":"A"}}]}').text).toBe('A')
    expect(describeAnswer('{"content":[{"type":"text","text":"B"},{"type":"text","text":"C"}]}').text).toBe(
      'BC',
    )
    expect(describeAnswer('{"candidates":[{"content":{"parts":[{"text":"D"}]}}]}').text).toBe('D')
    expect(describeAnswer('{"data":[{"embedding":[0.1]}]}')).toMatchObject({ kind: 'json', text: null })
  })

  it('puts raw SSE back together', () => {
    const sse =
      'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n' +
      'event: content_block_delta\ndata: {"delta":{"type":"text_delta","text":"lo"}}\n\n' +
      'data: {"response":"!"}\n\ndata: [DONE]\n\n'
    expect(assembleSse(sse)).toEqual({ text: 'Hello!', events: 4 })
    expect(describeAnswer(sse)).toMatchObject({ kind: 'sse', text: 'Hello!', events: 4 })
  })

  it('keeps anything else as text, and nothing as nothing', () => {
    expect(describeAnswer('plain words')).toMatchObject({ kind: 'text', raw: 'plain words' })
    expect(describeAnswer(null).kind).toBe('none')
    expect(prettyJson('{"a":[1]}')).toBe('{\n  "a": [\n    1\n  ]\n}')
    expect(prettyJson('not json')).toBe('not json')
  })
})

describe('chart series', () => {
  const starts = [0, 60_000, 120_000]
  it('fills buckets without records', () => {
    const rows = [row({}, { bucketStart: 60_000, requests: 3, cacheHits: 1 })]
    expect(bucketValues(rows, starts, METRICS.requests, 0)).toEqual([0, 3, 0])
    expect(bucketValues(rows, starts, METRICS.cacheHitRate, null)).toEqual([null, 1 / 3, null])
  })

  it('keeps the largest groups and sums the rest as other', () => {
    const rows = [
      row({ provider: 'a' }, { bucketStart: 0, requests: 5 }),
      row({ provider: 'b' }, { bucketStart: 0, requests: 3 }),
      row({ provider: 'c' }, { bucketStart: 60_000, requests: 2 }),
      row({ provider: null }, { bucketStart: 120_000, requests: 1 }),
    ]
    expect(groupSeries(rows, 'provider', starts, METRICS.requests, 2)).toEqual([
      { label: 'a', values: [5, 0, 0] },
      { label: 'b', values: [3, 0, 0] },
      { label: 'other', values: [0, 2, 1] },
    ])
    expect(() => groupSeries(rows, 'provider', starts, METRICS.latencyP95)).toThrow(/additive/)
  })
})

describe('time ranges and formats', () => {
  it('resolves presets and custom ranges, and picks a bucket for the span', () => {
    expect(resolveRange({ preset: '1h' }, 10_000_000)).toEqual({ from: 6_400_000, to: 10_000_000 })
    expect(resolveRange({ preset: 'custom', from: 5, to: 9 }, 100)).toEqual({ from: 5, to: 9 })
    expect([bucketFor(3_600_000), bucketFor(DAY), bucketFor(30 * DAY)]).toEqual(['minute', 'hour', 'day'])
    expect(bucketStarts(90_000, 200_000, 'minute')).toEqual([60_000, 120_000, 180_000])
  })

  it('writes money exactly, and unknowns as a dash', () => {
    expect(formatCost(0.0000033)).toBe('$0.0000033')
    expect(formatCost(0.0125)).toBe('$0.0125')
    expect(formatCost(12.5)).toBe('$12.50')
    expect(formatCost(0)).toBe('$0')
    expect(formatCost(null)).toBe('—')
    expect([formatMs(840), formatMs(1520), formatNumber(12345), formatPercent(0.125)]).toEqual([
      '840 ms',
      '1.52 s',
      '12,345',
      '12.5%',
    ])
    expect(formatUtcDate(Date.UTC(2025, 0, 2))).toBe('2025-01-02')
  })
})
