import { describe, expect, it } from 'vitest'
import { GatewayOptionsError } from '../../src/errors.js'
import { DETECTORS } from '../../src/guard/dlp/detectors/index.js'
import {
  type CompiledDlpProfiles,
  compileDlpProfiles,
  createStreamScanner,
  DLP_PROFILES,
  type DlpFinding,
  type DlpStreamOptions,
  redactText,
  scanText,
} from '../../src/guard/dlp/index.js'
import { loadCorpora } from '../fixtures/dlp/corpus.js'

/** Runs chunks through a fresh scanner; returns the released text and the findings, in order. */
function stream(compiled: CompiledDlpProfiles, chunks: readonly string[], options: DlpStreamOptions = {}) {
  const scanner = createStreamScanner(compiled, options)
  let released = ''
  const findings: DlpFinding[] = []
  for (const chunk of [...chunks.map((chunk) => scanner.push(chunk)), scanner.end()]) {
    released += chunk.release
    findings.push(...chunk.findings)
  }
  return { released, findings }
}

/** A deterministic pseudo-random generator, so that chunkings are varied but repeatable. */
function random(seed: number) {
  let state = seed
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31
    return state / 2 ** 31
  }
}

const chunked = (text: string, sizes: () => number) => {
  const chunks: string[] = []
  for (let at = 0; at < text.length; ) {
    const size = Math.max(1, Math.floor(sizes()))
    chunks.push(text.slice(at, at + size))
    at += size
  }
  return chunks
}

const filler = (length: number) =>
  'lorem ipsum dolor sit amet '.repeat(Math.ceil(length / 27)).slice(0, length)

describe('createStreamScanner', () => {
  const dlp = compileDlpProfiles([
    'pii',
    'financial',
    'government_ids',
    { id: 'custom', entries: [{ id: 'codename', type: 'keyword', value: 'blue harbor' }] },
  ])
  // Longer than the 256-character window, so that text is released while the stream goes on.
  const text = [
    filler(200),
    'mail ana.silva@example.com or call +1 (415) 555-2671;',
    filler(150),
    'card 4111 1111 1111 1111, ssn 536-22-5489, iban GB82 WEST 1234 5698 7654 32,',
    filler(300),
    'routing number 021000021 via 2001:db8::1 and 192.168.1.1 for Blue Harbor.',
    filler(90),
  ].join(' ')
  const whole = scanText(dlp, text)
  const redacted = redactText(text, whole.findings)

  it('uses a 256-character window for short detectors, and the longest reach otherwise', () => {
    expect(dlp.maxFindingChars).toBeLessThanOrEqual(256)
    expect(compileDlpProfiles(['secrets']).maxFindingChars).toBe(8192)
  })

  it('catches and redacts PII split at every possible chunk boundary, as a whole-text scan does', () => {
    expect(whole.findings.map((f) => f.entryId)).toEqual([
      'email',
      'phone',
      'credit_card',
      'us_ssn',
      'iban',
      'us_routing_number',
      'ipv6',
      'ipv4',
      'codename',
    ])
    for (let cut = 0; cut <= text.length; cut++) {
      const out = stream(dlp, [text.slice(0, cut), text.slice(cut)])
      if (out.released !== redacted) expect.fail(`cut at ${cut}: ${out.released}`)
      expect(out.findings).toEqual(whole.findings)
    }
  })

  it('gives the same output for one-character chunks and for random chunk sizes', () => {
    expect(stream(dlp, [...text])).toEqual({ released: redacted, findings: whole.findings })
    for (const seed of [1, 2, 3, 4, 5]) {
      const next = random(seed)
      const chunks = chunked(text, () => 1 + next() * 40)
      expect(stream(dlp, chunks)).toEqual({ released: redacted, findings: whole.findings })
    }
  })

  it('never releases a finding before it is whole: released text so far has no unmasked PII', () => {
    const scanner = createStreamScanner(dlp)
    let released = ''
    for (const char of text) {
      released += scanner.push(char).release
      // Everything released so far is a prefix of the final redacted text.
      if (!redacted.startsWith(released)) expect.fail(`released text diverged: ${released.slice(-80)}`)
    }
    released += scanner.end().release
    expect(released).toBe(redacted)
  })

  it('releases text while the stream goes on, holding back only an unfinished word', () => {
    const scanner = createStreamScanner(dlp)
    // filler(1000) ends with the first letter of 'lorem': an email address may begin there.
    const first = scanner.push(filler(1000))
    expect(first.release).toBe(filler(999))
    expect(scanner.push(' and more').release).toBe('l and ')
  })

  it('in detect mode releases the text unchanged, with the same findings', () => {
    const next = random(9)
    const out = stream(
      dlp,
      chunked(text, () => 1 + next() * 30),
      { action: 'detect' },
    )
    expect(out).toEqual({ released: text, findings: whole.findings })
  })

  it('masks with a fill character in redact mode', () => {
    const out = stream(
      dlp,
      chunked(text, () => 7),
      { mask: { fill: '*' } },
    )
    expect(out.released).toBe(redactText(text, whole.findings, { fill: '*' }))
    expect(out.released).toHaveLength(text.length)
  })

  it('reports offsets into the whole stream', () => {
    const out = stream(dlp, [filler(5000), ' ana@example.com ', filler(5000)])
    expect(out.findings).toEqual([{ profileId: 'pii', entryId: 'email', start: 5001, end: 5016 }])
  })

  it('scans one huge chunk in place, slice by slice, finding what a whole scan finds', () => {
    const big = Array.from({ length: 2500 }, (_, n) => `${filler(1000)} user${n}@example.com `).join('')
    expect(big.length).toBeGreaterThan(2_000_000)
    const compiled = compileDlpProfiles(['pii'], { maxScanChars: big.length })
    const whole = scanText(compiled, big)
    const out = stream(compiled, [big])
    expect(out.findings).toHaveLength(2500)
    expect(out.findings).toEqual(whole.findings)
    expect(out.released).toBe(redactText(big, whole.findings))
  })

  it('catches secrets across chunks with the longer default window of the secrets profile', () => {
    const secrets = compileDlpProfiles(['secrets'])
    const key = `-----BEGIN ${'PRIVATE'} KEY-----\n${'FAKEKEYMATERIAL0'.repeat(4)}\n${'NOTREAL+/'.repeat(7)}\n-----END PRIVATE KEY-----`
    const token = `gh${'p'}_${'FAKE'.repeat(9)}`
    const body = `${filler(9000)} here: ${key} and ${token}. ${filler(9000)}`
    const whole = scanText(secrets, body)
    expect(whole.findings.map((f) => f.entryId)).toEqual(['private_key_block', 'github_token'])
    const next = random(4)
    expect(
      stream(
        secrets,
        chunked(body, () => 1 + next() * 500),
      ),
    ).toEqual({
      released: redactText(body, whole.findings),
      findings: whole.findings,
    })
  })

  it('masks a run of overlapping findings longer than twice the window in pieces, leaking nothing', () => {
    const chain = compileDlpProfiles([
      {
        id: 'chain',
        entries: [
          { id: 'x', type: 'pattern', value: 'ab' },
          { id: 'y', type: 'pattern', value: 'ba' },
        ],
      },
    ])
    const out = stream(chain, [...'ab'.repeat(2000)], { holdBackChars: 64 })
    expect(out.released.replace(/\[REDACTED:[xy,]+\]/g, '')).toBe('')
    expect(out.released.match(/\[REDACTED/g)!.length).toBeGreaterThan(1)
  })

  it('refuses a window shorter than the longest finding, and bad options', () => {
    expect(() => createStreamScanner(compileDlpProfiles(['secrets']), { holdBackChars: 256 })).toThrow(
      /holdBackChars must be an integer from 8192, the longest reach of a finding of detector:private_key_block/,
    )
    expect(() => createStreamScanner(dlp, { holdBackChars: 1.5 })).toThrow(GatewayOptionsError)
    expect(() => createStreamScanner(dlp, { action: 'block' as 'detect' })).toThrow(GatewayOptionsError)
    expect(() => createStreamScanner(dlp, { mask: { fill: '' } })).toThrow(GatewayOptionsError)
  })

  it('finds patterns within the window across chunks', () => {
    const compiled = compileDlpProfiles([
      { id: 'p', entries: [{ id: 'ticket', type: 'pattern', value: 'PRJX-[0-9]{4,6}' }] },
    ])
    const body = `${filler(700)} PRJX-123456 ${filler(700)}`
    const out = stream(
      compiled,
      chunked(body, () => 3),
    )
    expect(out.findings).toEqual(scanText(compiled, body).findings)
    expect(out.released).toContain('[REDACTED:ticket]')
  })

  it('throws when used after end()', () => {
    const scanner = createStreamScanner(dlp)
    scanner.push('abc')
    expect(scanner.end().release).toBe('abc')
    expect(() => scanner.push('x')).toThrow(/after end/)
    expect(() => scanner.end()).toThrow(/twice/)
  })
})

/** Every built-in profile, and keywords (one with a run of spaces, one with a non-ASCII letter). */
const everything = compileDlpProfiles([
  ...Object.keys(DLP_PROFILES),
  {
    id: 'words',
    entries: [
      { id: 'codename', type: 'keyword', value: 'blue harbor' },
      { id: 'accented', type: 'keyword', value: 'sécret' },
    ],
  },
])

/** The whole-text results a stream must give: the redacted text and the findings. */
function wholeOf(compiled: CompiledDlpProfiles, text: string) {
  const { findings } = scanText(compiled, text)
  return { released: redactText(text, findings), findings }
}

/** Fails with the chunking named unless streaming `chunks` gives the whole-text results, in both modes. */
function expectSameAsWhole(compiled: CompiledDlpProfiles, chunks: readonly string[], name: string) {
  const text = chunks.join('')
  const whole = wholeOf(compiled, text)
  const redacted = stream(compiled, chunks)
  if (redacted.released !== whole.released || !sameFindings(redacted.findings, whole.findings)) {
    expect.fail(`${name}: ${JSON.stringify(chunks)}\nreleased ${JSON.stringify(redacted.released)}`)
  }
  const detected = stream(compiled, chunks, { action: 'detect' })
  if (detected.released !== text || !sameFindings(detected.findings, whole.findings)) {
    expect.fail(`${name} (detect): ${JSON.stringify(chunks)}`)
  }
}

const sameFindings = (a: readonly DlpFinding[], b: readonly DlpFinding[]) =>
  JSON.stringify(a) === JSON.stringify(b)

/** Every way of cutting `text` in two, and one-character chunks. */
function cuts(text: string): [string, string[]][] {
  const out: [string, string[]][] = [['one-character chunks', [...text]]]
  for (let cut = 1; cut < text.length; cut++)
    out.push([`cut at ${cut}`, [text.slice(0, cut), text.slice(cut)]])
  return out
}

const corpora = loadCorpora()
/** The text a corpus sample marks as a finding of `id`, the `n`th of them. */
const positive = (id: string, n = 0) => {
  const sample = corpora.get(id)!.filter((candidate) => candidate.expected.length > 0)[n]!
  const span = sample.expected[0]!
  return sample.text.slice(span.start, span.end)
}

describe('createStreamScanner: the same results as a whole-text scan, however the text is cut', () => {
  it("stops every detector's walk at a match's start while the text ends inside the match", () => {
    // Wherever a detector's pattern matches in the corpora (validated or not), a text that ends inside
    // that match must leave its start open: `opening` covers it, or the shorter match there is unsettled.
    const text = [...corpora.values()]
      .flat()
      .map((sample) => sample.text)
      .join('\n')
    for (const [id, detector] of DETECTORS) {
      const [matcher] = compileDlpProfiles([
        { id: 'one', entries: [{ id, type: 'detector', value: id }] },
      ]).matchers
      const sticky = new RegExp(detector.pattern.source, `${detector.pattern.flags.replace('g', '')}y`)
      for (let start = 0; start < text.length; start++) {
        sticky.lastIndex = start
        const match = sticky.exec(text)
        if (match === null) continue
        for (let end = start + 1; end < start + match[0].length; end++) {
          const { cursor } = matcher!.walk(text.slice(0, end), start, false, 256)
          if (cursor !== start) {
            expect.fail(`${id}: ${JSON.stringify(text.slice(start, end))} of ${JSON.stringify(match[0])}`)
          }
        }
      }
    }
  })

  it('on every corpus sample, cut at every boundary and in one-character chunks', () => {
    for (const [id, samples] of corpora) {
      for (const { text } of samples) {
        for (const [name, chunks] of cuts(text)) expectSameAsWhole(everything, chunks, `${id}, ${name}`)
      }
    }
  })

  it('on each whole corpus as one stream, in one-character and random chunks', () => {
    for (const [id, samples] of corpora) {
      const text = samples.map((sample) => sample.text).join('\n')
      expectSameAsWhole(everything, [...text], `${id}, one-character chunks`)
      for (const seed of [1, 2, 3]) {
        const next = random(seed)
        expectSameAsWhole(
          everything,
          chunked(text, () => 1 + next() * 24),
          `${id}, seed ${seed}`,
        )
      }
    }
  })

  it('on private key blocks, JWTs and card numbers split anywhere', () => {
    const texts = [
      `here: ${positive('private_key_block', 0)} and then some words`,
      `json {"key": "${positive('private_key_block', 4)}"}, done`,
      `${positive('private_key_block', 1)}\n${positive('private_key_block', 2)}`,
      `Bearer ${positive('jwt', 0)}. Next ${positive('jwt', 1)}.${positive('jwt', 2)} end`,
      'pay 4111 1111 1111 1111 or 4111-1111-1111-1111 or 4111111111111111, not 4111 1111 1111 1111 1111.',
      'amex 378282246310005 and 3782 822463 10005; order 12345678901234567890 and 5555555555554444.',
    ]
    for (const text of texts) {
      for (const [name, chunks] of cuts(text)) expectSameAsWhole(everything, chunks, name)
      const next = random(text.length)
      for (let round = 0; round < 20; round++) {
        expectSameAsWhole(
          everything,
          chunked(text, () => 1 + next() * 16),
          `random ${round}`,
        )
      }
    }
  })

  it('on random mixes of pieces of candidates, separators and prose', () => {
    const lines = [...corpora.values()].flat().map((sample) => sample.text)
    const joins = [
      '',
      ' ',
      '\n',
      '-',
      '.',
      '@',
      ':',
      '(',
      '+1 (',
      '-----',
      '----',
      ' 4111 ',
      'eyJ',
      '-----BEGIN ',
    ]
    const next = random(42)
    const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!
    for (let round = 0; round < 600; round++) {
      let text = ''
      for (let part = 0, parts = 1 + Math.floor(next() * 5); part < parts; part++) {
        const line = pick(lines)
        const from = Math.floor(next() * line.length)
        const to = from + Math.floor(next() * (line.length - from + 1))
        text += (next() < 0.5 ? line : line.slice(from, to)) + pick(joins)
      }
      expectSameAsWhole(everything, [...text], `round ${round}, one-character chunks`)
      expectSameAsWhole(
        everything,
        chunked(text, () => 1 + next() * 12),
        `round ${round}`,
      )
    }
  })

  it('finds what a whole scan finds when a character is split between two pushes', () => {
    const compiled = compileDlpProfiles([
      {
        id: 'emoji',
        entries: [
          { id: 'smile', type: 'keyword', value: 'ab\u{1F600}' },
          { id: 'lead', type: 'keyword', value: '\u{1F600}x' },
        ],
      },
    ])
    const text = 'say ab\u{1F600} and \u{1F600}x, not ab\u{1F600}c'
    for (const [name, chunks] of cuts(text)) expectSameAsWhole(compiled, chunks, name)
  })

  it('keeps an RE2 match that starts before a later, shorter one', () => {
    const compiled = compileDlpProfiles([
      { id: 'p', entries: [{ id: 'span', type: 'pattern', value: 'Q[^.]*Z|W' }] },
    ])
    // While 'Z' has not arrived, 'W' is the first match; the match from 'Q' must still be found.
    const text = `${filler(300)} Q then W and Z. ${filler(300)}`
    for (const [name, chunks] of cuts(text)) expectSameAsWhole(compiled, chunks, name)
  })
})

/** Held-back characters after each push: seen minus released. */
function heldAfterEach(compiled: CompiledDlpProfiles, chunks: readonly string[]) {
  const scanner = createStreamScanner(compiled, { action: 'detect' })
  let seen = ''
  let released = 0
  return chunks.map((chunk) => {
    seen += chunk
    released += scanner.push(chunk).release.length
    return { seen, held: seen.length - released }
  })
}

/** Prose: words, spaces, commas, full stops and paragraphs; no digits, `@` or dashes. */
const PROSE = Array.from(
  { length: 40 },
  (_, n) =>
    `${['The', 'However', 'Although', 'Meanwhile'][n % 4]} answer streams through the gateway, and ` +
    `every client sees ${['its', 'their', 'each', 'the'][n % 4]} words as they arrive.${n % 5 === 4 ? '\n\n' : ' '}`,
).join('')

describe('createStreamScanner: what it holds back', () => {
  /**
   * On prose, a push holds back at most the last word and the white space after it: an email address or
   * a keyword may begin at any word (and an Azure key name at a word starting with `a`). Bound asserted:
   * 64 characters, for every built-in profile and for `secrets`, `pii` and `financial` together.
   */
  const profileSets = [...Object.keys(DLP_PROFILES).map((id) => [id]), ['secrets', 'pii', 'financial']]
  for (const profiles of profileSets) {
    it(`holds back at most the last word of prose (${profiles.join(' + ')})`, () => {
      const compiled = compileDlpProfiles(profiles)
      for (const size of [1, 7]) {
        for (const { seen, held } of heldAfterEach(
          compiled,
          chunked(PROSE, () => size),
        )) {
          const lastWord = /\S*\s*$/.exec(seen)![0].length
          if (held > Math.min(64, lastWord)) {
            expect.fail(`held ${held} after ${JSON.stringify(seen.slice(-80))}`)
          }
        }
      }
    })
  }

  it('bounds what text with no candidate in it can hold, per profile (the longest beginning)', () => {
    const longest = (ids: string[]) =>
      Math.max(...compileDlpProfiles(ids).matchers.map((matcher) => matcher.startReach ?? 0))
    expect(longest(['financial'])).toBe(64)
    expect(longest(['pii'])).toBe(66)
    expect(longest(['government_ids'])).toBe(11)
    expect(longest(['credentials'])).toBe(3514)
    expect(longest(['secrets'])).toBe(3514)
    const secrets = compileDlpProfiles(['secrets'])
    const withoutJwt = secrets.matchers.filter((matcher) => matcher.key !== 'detector:jwt')
    expect(Math.max(...withoutJwt.map((matcher) => matcher.startReach ?? 0))).toBe(241)
  })

  it('holds a private key block from its BEGIN line until its END line is whole', () => {
    const secrets = compileDlpProfiles(['secrets'])
    const key = positive('private_key_block', 0)
    const footerAt = key.lastIndexOf('-----END')
    const before = 'Here is the key you asked for:\n'
    const scanner = createStreamScanner(secrets)
    let released = scanner.push(before).release
    expect(released).toBe(before)
    for (const piece of chunked(key.slice(0, footerAt + 12), () => 9)) {
      released += scanner.push(piece).release
      expect(released).toBe(before)
    }
    released += scanner.push(`${key.slice(footerAt + 12)}\nKeep it safe.`).release
    // With `secrets` alone, nothing can begin in 'Keep it safe.', so all of it goes out at once.
    expect(released).toBe(`${before}[REDACTED:private_key_block]\nKeep it safe.`)
    expect(scanner.end().release).toBe('')
  })

  it('holds a card number until its digit run ends, and a JWT until the token ends', () => {
    const scanner = createStreamScanner(everything)
    expect(scanner.push('pay 4111 1111 11').release).toBe('pay ')
    expect(scanner.push('11 1111').release).toBe('')
    expect(scanner.push(' now, then ').release).toBe('[REDACTED:credit_card] now, then ')
    const jwt = positive('jwt', 0)
    expect(scanner.push(`send ${jwt.slice(0, 30)}`).release).toBe('send ')
    expect(scanner.push(jwt.slice(30)).release).toBe('')
    expect(scanner.push(' as the bearer').release).toBe('[REDACTED:jwt] as the ')
  })

  it('holds back the window less one for a profile with an RE2 pattern', () => {
    const compiled = compileDlpProfiles([
      'pii',
      { id: 'p', entries: [{ id: 'ticket', type: 'pattern', value: 'PRJX-[0-9]{4,6}' }] },
    ])
    for (const { seen, held } of heldAfterEach(
      compiled,
      chunked(PROSE, () => 7),
    )) {
      expect(held).toBe(Math.min(seen.length, 255))
    }
  })

  it('never holds back more than holdBackChars, even for a candidate that never ends', () => {
    const secrets = compileDlpProfiles(['secrets'])
    const endless = `-----BEGIN ${'PRIVATE'} KEY-----\n${'QUJD'.repeat(5000)}`
    let most = 0
    for (const { held } of heldAfterEach(
      secrets,
      chunked(endless, () => 100),
    ))
      most = Math.max(most, held)
    expect(most).toBeLessThan(8192)
    expect(most).toBeGreaterThan(8000)
  })
})
