import { describe, expect, it } from 'vitest'
import { LogRecordError } from '../../src/errors.js'
import type { LogRecord } from '../../src/logs/types.js'
import { logRecordSchema, validateLogRecords } from '../../src/logs/validate.js'
import { SAMPLE_ATTEMPT, sampleRecord } from '../helpers/log-store.js'

const valid: LogRecord = sampleRecord({
  id: '0190F3C4-0000-7000-8000-00000000ABCD',
  createdAt: 1_700_000_000_000,
  durationMs: 12.5,
  ttfbMs: 3,
  tokensIn: 10,
  tokensOut: 20,
  cost: 0.0000123,
  metadata: { user: 'u1', n: 2, vip: true },
  requestSize: 100,
  responseSize: 200,
  principal: 'alice',
  requestBody: '{"a":1}',
})

const attempt = SAMPLE_ATTEMPT

const finding = {
  check: 'REQUEST',
  profileId: 'pii',
  entryId: 'ssn',
  policyIds: ['block-pii'],
  path: '/messages/0/content',
  start: 4,
  end: 15,
}
const hit = { category: 'S1', score: 0.8, classifier: 'llama-guard' }
const guard = {
  dlp: { action: 'REDACT', findings: [finding], truncated: false },
  guardrails: { action: 'FLAG', prompt: [hit], answer: [], unavailable: ['answer'] },
}

class Bag {
  readonly user = 'u1'
}

// Each variant differs from `valid` in one field; the schema is the judge of every one of them.
const variants: [string, Record<string, unknown>][] = [
  ['as it is', {}],
  ['an extra field', { extra: 1 }],
  [
    'a NUL and a lone surrogate in text',
    { path: 'a\u0000b\uD800c', requestBody: 'x\uDC00', principal: 'p\u0000' },
  ],
  ['a paired surrogate', { responseBody: '\uD83D\uDE00' }],
  ['a negative zero in metadata', { metadata: { n: -0 } }],
  ['metadata with text to clean', { metadata: { 'k\u0000': 'v\uD800' } }],
  ['metadata without a prototype', { metadata: Object.assign(Object.create(null), { a: 1 }) }],
  ['metadata as a class instance', { metadata: new Bag() }],
  ['metadata as an array', { metadata: ['a'] }],
  ['metadata holding an object', { metadata: { a: { b: 1 } } }],
  ['metadata holding NaN', { metadata: { a: Number.NaN } }],
  ['metadata holding null', { metadata: { a: null } }],
  ['not a UUID', { id: 'abc' }],
  ['a fractional count', { tokensIn: 1.5 }],
  ['a negative count', { requestSize: -1 }],
  ['an unsafe integer', { createdAt: 2 ** 60 }],
  ['a status beyond int4', { statusCode: 2 ** 31 }],
  ['a negative step', { step: -1 }],
  ['negative attempts', { attempts: -1 }],
  ['an infinite duration', { durationMs: Number.POSITIVE_INFINITY }],
  ['a negative ttfb', { ttfbMs: -1 }],
  ['a NaN cost', { cost: Number.NaN }],
  ['a negative cost', { cost: -0.5 }],
  ['a number as text', { model: 5 }],
  ['a missing path', { path: undefined }],
  ['a string boolean', { cached: 'false' }],
  ['an unknown outcome', { outcome: 'ok' }],
  ['feedback 0', { feedback: 0 }],
  ['a score of 101', { score: 101 }],
  ['a score of 50', { score: 50 }],
  ['a fractional score', { score: 50.5 }],
  ['an error code', { errorCode: 2005, outcome: 'gateway_error', success: false }],
  [
    'an attempt log',
    { attemptLog: [attempt, { ...attempt, action: 'answered', status: 200, failureClass: null }] },
  ],
  ['an attempt with an unknown action', { attemptLog: [{ ...attempt, action: 'wait' }] }],
  ['an attempt without its provider', { attemptLog: [{ ...attempt, provider: undefined }] }],
  ['an attempt log that is not a list', { attemptLog: attempt }],
  ['a guard', { guard }],
  ['a guard of DLP alone', { guard: { dlp: { action: 'BLOCK', findings: [] } } }],
  [
    'a guard finding holding its text',
    { guard: { dlp: { ...guard.dlp, findings: [{ ...finding, text: '078-05-1120' }] } } },
  ],
  [
    'a guard with text to clean',
    { guard: { guardrails: { action: 'FLAG', answer: [{ ...hit, category: 'S\u0000' }] } } },
  ],
  ['a guard of 100 findings', { guard: { dlp: { action: 'FLAG', findings: Array(100).fill(finding) } } }],
  ['a guard of 101 findings', { guard: { dlp: { action: 'FLAG', findings: Array(101).fill(finding) } } }],
  [
    'a guard id of 256 characters',
    { guard: { dlp: { action: 'FLAG', findings: [{ ...finding, entryId: 'e'.repeat(256) }] } } },
  ],
  [
    'a guard id of 257 characters',
    { guard: { dlp: { action: 'FLAG', findings: [{ ...finding, entryId: 'e'.repeat(257) }] } } },
  ],
  [
    'a guard finding ending before it starts',
    { guard: { dlp: { action: 'FLAG', findings: [{ ...finding, end: 3 }] } } },
  ],
  [
    'a guard finding at a negative offset',
    { guard: { dlp: { action: 'FLAG', findings: [{ ...finding, start: -1 }] } } },
  ],
  ['an unknown DLP action', { guard: { dlp: { ...guard.dlp, action: 'ALLOW' } } }],
  ['an unknown guardrail action', { guard: { guardrails: { ...guard.guardrails, action: 'REDACT' } } }],
  ['a guardrail score of 1', { guard: { guardrails: { action: 'BLOCK', prompt: [{ ...hit, score: 1 }] } } }],
  [
    'a guardrail score above 1',
    { guard: { guardrails: { action: 'BLOCK', prompt: [{ ...hit, score: 1.01 }] } } },
  ],
  [
    'a guardrail score of NaN',
    { guard: { guardrails: { action: 'BLOCK', prompt: [{ ...hit, score: Number.NaN }] } } },
  ],
  [
    'an unknown unavailable phase',
    { guard: { guardrails: { action: 'UNAVAILABLE', unavailable: ['stream'] } } },
  ],
  ['a guard that is not an object', { guard: 'BLOCK' }],
]

describe('validateLogRecords', () => {
  it.each(variants)('agrees with the schema: %s', (_name, change) => {
    const record = { ...valid, ...change } as LogRecord
    const judged = logRecordSchema.safeParse(record)
    if (judged.success) {
      const [stored] = validateLogRecords([record])
      expect(stored).toStrictEqual(judged.data)
    } else {
      expect(() => validateLogRecords([record])).toThrow(LogRecordError)
    }
  })

  it('keeps clean text as the same string and cleans what a store cannot hold', () => {
    const [stored] = validateLogRecords([{ ...valid, requestBody: 'a\u0000b', responseBody: 'ok' }])
    expect(stored!.requestBody).toBe('a\uFFFDb')
    expect(stored!.responseBody).toBe('ok')
    expect(stored!.id).toBe(valid.id.toLowerCase())
  })

  it('keeps guard whole and never the matched text a finding carries', () => {
    const leaky = { ...finding, text: '078-05-1120' }
    const [stored] = validateLogRecords([
      { ...valid, guard: { ...guard, dlp: { ...guard.dlp, findings: [leaky] } } } as LogRecord,
    ])
    expect(stored!.guard).toStrictEqual(guard)
    const too = (change: Record<string, unknown>) => () =>
      validateLogRecords([
        { ...valid, guard: { dlp: { action: 'FLAG', findings: [{ ...finding, ...change }] } } } as LogRecord,
      ])
    expect(too({ path: '/'.repeat(257) })).toThrow(LogRecordError)
    expect(too({ policyIds: Array(101).fill('p') })).toThrow(LogRecordError)
  })

  it('names the record and field that failed', () => {
    const error = (() => {
      try {
        validateLogRecords([valid, { ...valid, statusCode: 'x' as unknown as number }])
      } catch (caught) {
        return caught as LogRecordError
      }
    })()
    expect(error).toBeInstanceOf(LogRecordError)
    expect(JSON.stringify(error)).toContain('[1].statusCode')
  })
})
