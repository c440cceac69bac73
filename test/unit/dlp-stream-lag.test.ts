/**
 * How much text the stream scanner holds back, before and after it released text as soon as no finding
 * can start in it. A 20,000-character answer is streamed 7 characters at a time; after every push the
 * held-back characters (seen minus released) are recorded. "Before" is the previous release rule, run here
 * as a model: walks stopped at the first candidate with less than its reach of text after it (or at
 * `seen - reach + 1`), and a step ran only once more than `holdBackChars` characters were pending. Figures
 * and times go to test-results/dlp-stream-lag.md; times are recorded, never asserted.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { afterAll, describe, expect, it } from 'vitest'
import { DETECTORS, type Detector } from '../../src/guard/dlp/detectors/index.js'
import {
  type CompiledDlpProfiles,
  compileDlpProfiles,
  createStreamScanner,
  DEFAULT_HOLD_BACK_CHARS,
  DLP_PROFILES,
  type DlpFinding,
  scanText,
} from '../../src/guard/dlp/index.js'
import { loadCorpora } from '../fixtures/dlp/corpus.js'

const CHUNK = 7
const LENGTH = 20_000
/** Each run is timed this many times; the median is reported. */
const TIMINGS = 5
const rows: string[] = []

/** Held-back characters after each push, the findings, and how long the pushes took. */
interface Run {
  readonly held: number[]
  readonly findings: DlpFinding[]
  readonly ms: number
}

function chunks(text: string): string[] {
  const out: string[] = []
  for (let at = 0; at < text.length; at += CHUNK) out.push(text.slice(at, at + CHUNK))
  return out
}

/** The scanner as it is, in detect mode (as the gateway's guard step runs it). */
function current(compiled: CompiledDlpProfiles, text: string): Run {
  const scanner = createStreamScanner(compiled, { action: 'detect' })
  const held: number[] = []
  const findings: DlpFinding[] = []
  let seen = 0
  let released = 0
  const start = performance.now()
  for (const chunk of chunks(text)) {
    const out = scanner.push(chunk)
    seen += chunk.length
    released += out.release.length
    held.push(seen - released)
    findings.push(...out.findings)
  }
  findings.push(...scanner.end().findings)
  return { held, findings, ms: performance.now() - start }
}

/** One detector's walk under the previous rule: a candidate with less than its reach after it stops it. */
function previousWalk(detector: Detector, text: string, from: number, final: boolean) {
  const spans: { start: number; end: number }[] = []
  let position = from
  for (;;) {
    detector.pattern.lastIndex = position
    const match = position <= text.length ? detector.pattern.exec(text) : null
    if (match === null) {
      const cursor = final ? text.length : text.length - detector.reach + 1
      return { spans, cursor: Math.max(position, cursor) }
    }
    if (!final && match.index + detector.reach > text.length) return { spans, cursor: match.index }
    const span = detector.validate(match, text)
    if (span !== undefined && span.end > span.start) {
      spans.push(span)
      position = span.end
    } else {
      position = match.index + 1
    }
  }
}

/** The previous scanner, detect mode, for profiles made of built-in detectors only. */
function previous(profiles: readonly string[], text: string): Run {
  const detectors = [
    ...new Set(profiles.flatMap((id) => DLP_PROFILES[id as keyof typeof DLP_PROFILES].entries)),
  ].map((entry) => DETECTORS.get(entry.value)!)
  const unique = [...new Set(detectors)]
  const holdBack = Math.max(DEFAULT_HOLD_BACK_CHARS, ...unique.map((detector) => detector.reach))
  const cursors = unique.map(() => 0)
  const held: number[] = []
  const spans: { start: number; end: number; id: string }[] = []
  let buffer = ''
  let bufferStart = 0
  let seen = 0
  let released = 0
  const step = (final: boolean) => {
    for (const [index, detector] of unique.entries()) {
      const walk = previousWalk(detector, buffer, cursors[index]! - bufferStart, final)
      for (const span of walk.spans) {
        spans.push({ start: span.start + bufferStart, end: span.end + bufferStart, id: detector.id })
      }
      cursors[index] = walk.cursor + bufferStart
    }
    const cut = final ? seen : Math.min(seen, ...cursors)
    if (cut <= released) return
    released = cut
    const keepFrom = Math.max(bufferStart, released - 64)
    buffer = buffer.slice(keepFrom - bufferStart)
    bufferStart = keepFrom
  }
  const start = performance.now()
  for (const chunk of chunks(text)) {
    buffer += chunk
    seen += chunk.length
    if (seen - released > holdBack) step(false)
    held.push(seen - released)
  }
  step(true)
  const ms = performance.now() - start
  spans.sort((a, b) => a.start - b.start || a.end - b.end)
  return {
    held,
    findings: spans.map(({ start, end, id }) => ({ profileId: '', entryId: id, start, end })),
    ms,
  }
}

/** A deterministic pseudo-random generator. */
function random(seed: number) {
  let state = seed
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31
    return state / 2 ** 31
  }
}

const WORDS = (
  'the a of to and in that is for it as was with be by on not he this are or his from at which but have an ' +
  'they you were her she there been one all we their has would when if so no will more what up out into ' +
  'model answer gateway request streaming latency provider tokens window characters release client ' +
  'through between because however although therefore example detail question reason result'
).split(' ')

/** Prose: sentences of common words, commas and full stops, paragraphs; no digits, no `@`, no dashes. */
function prose(length: number, seed: number): string {
  const next = random(seed)
  let text = ''
  let sentence = 0
  while (text.length < length) {
    const words = 6 + Math.floor(next() * 14)
    const parts: string[] = []
    for (let n = 0; n < words; n++) parts.push(WORDS[Math.floor(next() * WORDS.length)]!)
    parts[0] = parts[0]!.charAt(0).toUpperCase() + parts[0]!.slice(1)
    if (words > 10) parts[Math.floor(words / 2)] += ','
    text += `${parts.join(' ')}.${++sentence % 5 === 0 ? '\n\n' : ' '}`
  }
  return text.slice(0, length)
}

/** Prose with one finding of each kind used here placed in it, taken from the corpora's positives. */
function proseWithFindings(length: number): string {
  const corpora = loadCorpora()
  const pick = (id: string) => {
    const sample = corpora.get(id)!.find((candidate) => candidate.expected.length > 0)!
    const span = sample.expected[0]!
    return sample.text.slice(span.start, span.end)
  }
  const inserts = [
    `write to ${pick('email')}`,
    `call ${pick('phone')}`,
    `the card ${pick('credit_card')} expires soon`,
    `pay to ${pick('iban')}`,
    `the token ${pick('github_token')} leaked`,
    `send ${pick('jwt')} as the bearer`,
    `the key:\n${pick('private_key_block')}\nends here`,
  ]
  const base = prose(length, 3)
  const step = Math.floor(base.length / (inserts.length + 1))
  let text = ''
  for (const [index, insert] of inserts.entries()) {
    text += `${base.slice(index * step, (index + 1) * step)} ${insert}. `
  }
  text += base.slice(inserts.length * step)
  return text.slice(0, length)
}

const times = (count: number, run: () => number) => Array.from({ length: count }, run)
const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!
const max = (values: readonly number[]) => values.reduce((a, b) => Math.max(a, b), 0)
const mean = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / values.length
/** The characters seen when the first text was released. */
const firstRelease = (held: readonly number[]) => {
  const index = held.findIndex((value, at) => value < (at + 1) * CHUNK)
  return index === -1 ? 'end' : String(Math.min((index + 1) * CHUNK, LENGTH))
}

describe('stream lag, 20,000 characters in 7-character pushes', () => {
  const cases = [
    ['prose', prose(LENGTH, 1)],
    ['prose with findings', proseWithFindings(LENGTH)],
  ] as const
  const profileSets = [['pii'], ['financial'], ['secrets'], ['secrets', 'pii', 'financial']] as const

  for (const [name, text] of cases) {
    for (const profiles of profileSets) {
      it(`${name}, ${profiles.join(' + ')}`, () => {
        expect(text).toHaveLength(LENGTH)
        const compiled = compileDlpProfiles(profiles)
        const before = previous(profiles, text)
        const after = current(compiled, text)
        const beforeMs = median([before.ms, ...times(TIMINGS - 1, () => previous(profiles, text).ms)])
        const afterMs = median([after.ms, ...times(TIMINGS - 1, () => current(compiled, text).ms)])
        const whole = scanText(compiled, text).findings
        // Both find what a whole-text scan finds (the model by detector id, one entry per detector).
        expect(after.findings).toEqual(whole)
        const key = (f: DlpFinding) => `${f.entryId}:${f.start}:${f.end}`
        expect(before.findings.map(key)).toEqual([...new Set(whole.map(key))])
        if (name === 'prose') expect(max(after.held)).toBeLessThanOrEqual(64)
        rows.push(
          `| ${name} | ${profiles.join(' + ')} | ${max(before.held)} | ${mean(before.held).toFixed(1)} | ${firstRelease(before.held)} | ${max(after.held)} | ${mean(after.held).toFixed(1)} | ${firstRelease(after.held)} | ${beforeMs.toFixed(1)} | ${afterMs.toFixed(1)} |`,
        )
      })
    }
  }
})

afterAll(() => {
  const folder = new URL('../../test-results/', import.meta.url)
  mkdirSync(folder, { recursive: true })
  const lines = [
    '# DLP stream scanner: characters held back',
    '',
    `Written by test/unit/dlp-stream-lag.test.ts on Node ${process.version}. A ${LENGTH.toLocaleString('en')}-character`,
    `answer streamed ${CHUNK} characters a push in detect mode; "held" is the characters seen but not yet released`,
    'after each push (largest and mean over the pushes), "first" the characters seen when text was first',
    'released. "Before" is the previous rule (release only once more than `holdBackChars` are pending, up to',
    'the longest reach before the end), modelled in the test; "after" is `createStreamScanner`. Times are for',
    `all pushes and \`end()\`, the median of ${TIMINGS} runs, measured, not asserted. "Prose with findings" holds an email address, a phone`,
    'number, a card number, an IBAN, a GitHub token, a JWT and a private key block.',
    '',
    '| text | profiles | before: max held | before: mean | before: first | after: max held | after: mean | after: first | before ms | after ms |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
  ]
  writeFileSync(new URL('dlp-stream-lag.md', folder), lines.join('\n'))
})
