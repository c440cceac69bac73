import { describe, expect, it } from 'vitest'
import { GatewayOptionsError } from '../../src/errors.js'
import {
  type CompiledDlpProfiles,
  compileDlpProfiles,
  createStreamScanner,
  type DlpFinding,
  type DlpStreamOptions,
  redactText,
  scanText,
} from '../../src/guard/dlp/index.js'

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

  it('releases text while the stream goes on, holding back at most the window', () => {
    const scanner = createStreamScanner(dlp)
    const first = scanner.push(filler(1000))
    expect(first.release.length).toBeGreaterThan(1000 - 256 - 1)
    expect(scanner.push('xy').release.length).toBeGreaterThan(0)
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
