/**
 * Precision and recall of every built-in detector on its corpus (test/fixtures/dlp), and the work hostile
 * inputs take. Both are written to test-results/dlp-corpus.md. Times are measured and recorded, never
 * asserted: what is asserted is that every scan finishes and that over-long input is reported truncated.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { afterAll, describe, expect, it } from 'vitest'
import {
  compileDlpProfiles,
  createStreamScanner,
  DEFAULT_MAX_SCAN_CHARS,
  DLP_DETECTOR_IDS,
  DLP_PROFILES,
  type DlpFinding,
  scanText,
} from '../../src/guard/dlp/index.js'
import { loadCorpora } from '../fixtures/dlp/corpus.js'

const MIN_SAMPLES = 30
const MIN_PRECISION = 0.95
const MIN_RECALL = 0.95

const corpora = loadCorpora()
const corpusRows: string[] = []
const hostileRows: string[] = []
const builtInRows: string[] = []

const single = (id: string) =>
  compileDlpProfiles([{ id: 'corpus', entries: [{ id, type: 'detector', value: id }] }])
const ms = (start: number) => performance.now() - start
const fixed = (value: number, digits = 1) => value.toFixed(digits)
/** Millions of characters a second; a scan too quick for the clock reads as '-'. */
const perSecond = (chars: number, took: number) => (took > 0.05 ? fixed(chars / took / 1000, 1) : '-')

function streamFindings(compiled: ReturnType<typeof single>, text: string, size: number): DlpFinding[] {
  const scanner = createStreamScanner(compiled)
  const findings: DlpFinding[] = []
  for (let at = 0; at < text.length; at += size)
    findings.push(...scanner.push(text.slice(at, at + size)).findings)
  findings.push(...scanner.end().findings)
  return findings
}

describe('detector corpora', () => {
  it('has a corpus for every built-in detector', () => {
    expect([...corpora.keys()].sort()).toEqual([...DLP_DETECTOR_IDS].sort())
  })

  for (const id of DLP_DETECTOR_IDS) {
    it(`${id}: precision and recall of at least ${MIN_PRECISION} on ${MIN_SAMPLES}+ positives and negatives`, () => {
      const samples = corpora.get(id) ?? []
      const positives = samples.filter((sample) => sample.expected.length > 0).length
      const negatives = samples.length - positives
      expect(positives).toBeGreaterThanOrEqual(MIN_SAMPLES)
      expect(negatives).toBeGreaterThanOrEqual(MIN_SAMPLES)
      const compiled = single(id)
      let truePositives = 0
      let falsePositives = 0
      let falseNegatives = 0
      const misses: string[] = []
      for (const { text, expected } of samples) {
        const found = scanText(compiled, text).findings
        const same = (a: { start: number; end: number }, b: { start: number; end: number }) =>
          a.start === b.start && a.end === b.end
        for (const finding of found) {
          if (expected.some((span) => same(span, finding))) truePositives++
          else {
            falsePositives++
            misses.push(`false positive ${JSON.stringify(text.slice(finding.start, finding.end))}`)
          }
        }
        for (const span of expected) {
          if (!found.some((finding) => same(span, finding))) {
            falseNegatives++
            misses.push(`missed ${JSON.stringify(text.slice(span.start, span.end))}`)
          }
        }
      }
      const precision = truePositives / (truePositives + falsePositives || 1)
      const recall = truePositives / (truePositives + falseNegatives || 1)

      // The same corpus as one stream in 13-character chunks gives the whole-text findings.
      const joined = samples.map((sample) => sample.text).join('\n')
      const streamed = streamFindings(compiled, joined, 13)
      const streamSame = JSON.stringify(streamed) === JSON.stringify(scanText(compiled, joined).findings)

      corpusRows.push(
        `| ${id} | ${positives} | ${negatives} | ${truePositives} | ${falsePositives} | ${falseNegatives} | ${fixed(precision, 3)} | ${fixed(recall, 3)} | ${streamSame ? 'yes' : 'NO'} |`,
      )
      expect(precision, misses.join('; ')).toBeGreaterThanOrEqual(MIN_PRECISION)
      expect(recall, misses.join('; ')).toBeGreaterThanOrEqual(MIN_RECALL)
      expect(streamSame).toBe(true)
    })
  }
})

describe('hostile inputs', () => {
  const everything = compileDlpProfiles(Object.keys(DLP_PROFILES))

  for (const [pattern, input] of [
    ['(a+)+$', `${'a'.repeat(100_000)}!`],
    ['(a|aa)*b', 'a'.repeat(100_000)],
    ['(a|aa)*b', `${'a'.repeat(99_999)}b`],
    ['(x+x+)+y', 'x'.repeat(100_000)],
    ['(a|a?)+c', 'a'.repeat(100_000)],
    ['(.*a){12}z', 'a'.repeat(100_000)],
    ['(\\w+\\s?)+$', `${'word '.repeat(20_000)}!`],
  ] as const) {
    it(`an RE2 pattern ${pattern} over ${input.length.toLocaleString('en')} characters finishes`, () => {
      const compiled = compileDlpProfiles([
        { id: 'h', entries: [{ id: 'p', type: 'pattern', value: pattern }] },
      ])
      const start = performance.now()
      const result = scanText(compiled, input)
      const took = ms(start)
      expect(result.truncated).toBe(false)
      hostileRows.push(
        `| \`${pattern.replaceAll('|', '\\|')}\` | ${input.length.toLocaleString('en')} | ${result.findings.length} | ${fixed(took)} | ${perSecond(input.length, took)} |`,
      )
    })
  }

  // Every built-in detector at once, on inputs made of the pieces their patterns start with.
  const cap = DEFAULT_MAX_SCAN_CHARS
  const fill = (piece: string) => piece.repeat(Math.ceil(cap / piece.length)).slice(0, cap)
  for (const [name, input] of [
    ['digits', fill('4')],
    ['card-like groups', fill('4111 ')],
    ['a@', fill('a@')],
    ["a'", fill("a'")],
    ['local-part runs', fill(`${'a'.repeat(63)} `)],
    ['colons', fill('1:')],
    ['hex and colons', fill('ab:')],
    ['plus signs', fill('+1 ')],
    ['upper-case groups', fill('GB82 ')],
    ['eyJ', fill('eyJ')],
    ['eyJ parts', fill('eyJabcdef.')],
    ['key headers', fill(`-----BEGIN ${'PRIVATE'} KEY-----`)],
    ['key header, endless body', `-----BEGIN ${'PRIVATE'} KEY-----\n${fill('A').slice(40)}`],
    ['sk-', fill('sk-')],
    ['routing words', fill('routing 021000021 ')],
    ['prose', fill('The quick brown fox jumps over the lazy dog. ')],
  ] as const) {
    it(`all built-in detectors on ${input.length.toLocaleString('en')} characters of ${name} finish`, () => {
      const start = performance.now()
      const result = scanText(everything, input)
      const took = ms(start)
      expect(result.truncated).toBe(false)
      builtInRows.push(
        `| ${name} | ${input.length.toLocaleString('en')} | ${result.findings.length} | ${fixed(took)} | ${perSecond(input.length, took)} |`,
      )
    })
  }

  it('reads at most maxScanChars of an over-long input and says so', () => {
    const input = `${'x'.repeat(cap)} ana@example.com`
    const start = performance.now()
    const result = scanText(everything, input)
    const took = ms(start)
    expect(result.truncated).toBe(true)
    expect(result.findings).toEqual([])
    builtInRows.push(
      `| over the cap (truncated) | ${input.length.toLocaleString('en')} | 0 | ${fixed(took)} | - |`,
    )
  })

  it('streams one 4 Mi-character chunk through every built-in detector', () => {
    const input = fill(`${'lorem ipsum '.repeat(80)} ana@example.com 4111 1111 1111 1111 `).repeat(4)
    const scanner = createStreamScanner(everything)
    const start = performance.now()
    const first = scanner.push(input)
    const last = scanner.end()
    const took = ms(start)
    expect(first.release.length + last.release.length).toBeGreaterThan(input.length / 2)
    const found = first.findings.length + last.findings.length
    expect(found).toBeGreaterThan(0)
    builtInRows.push(
      `| stream, one chunk | ${input.length.toLocaleString('en')} | ${found} | ${fixed(took)} | ${perSecond(input.length, took)} |`,
    )
  })
})

afterAll(() => {
  const folder = new URL('../../test-results/', import.meta.url)
  mkdirSync(folder, { recursive: true })
  const lines = [
    '# DLP detectors: corpus precision and recall, and hostile inputs',
    '',
    `Written by test/unit/dlp-corpus.test.ts on Node ${process.version}. Spans must match exactly to count as`,
    'true positives. "Stream" says whether the corpus streamed in 13-character chunks gave the whole-text findings.',
    '',
    '| detector | positives | negatives | TP | FP | FN | precision | recall | stream |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |',
    ...corpusRows.sort(),
    '',
    '## RE2 patterns on hostile input',
    '',
    'Patterns that backtrack catastrophically in a backtracking engine; times are measured, not asserted.',
    '',
    '| pattern | characters | findings | ms | M chars/s |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...hostileRows,
    '',
    '## All built-in detectors on hostile input',
    '',
    `Every built-in profile compiled together (${DLP_DETECTOR_IDS.length} detectors), one scan per input.`,
    '',
    '| input | characters | findings | ms | M chars/s |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...builtInRows,
    '',
  ]
  writeFileSync(new URL('dlp-corpus.md', folder), lines.join('\n'))
})
