import { describe, expect, it } from 'vitest'
import { GatewayOptionsError } from '../../src/errors.js'
import {
  abaValid,
  base64UrlDecode,
  cardScheme,
  ibanValid,
  luhn,
  ssnValid,
} from '../../src/guard/dlp/checks.js'
import { ipv6Valid } from '../../src/guard/dlp/detectors/personal.js'
import {
  compileDlpProfiles,
  DEFAULT_MAX_SCAN_CHARS,
  DLP_DETECTOR_IDS,
  DLP_PROFILES,
  type DlpProfile,
  redactText,
  scanText,
} from '../../src/guard/dlp/index.js'

const profile = (id: string, entries: DlpProfile['entries']): DlpProfile => ({ id, entries })
const texts = (text: string, findings: readonly { start: number; end: number }[]) =>
  findings.map(({ start, end }) => text.slice(start, end))

describe('checks', () => {
  it('luhn accepts valid card numbers and refuses one-digit changes', () => {
    expect(luhn('4111111111111111')).toBe(true)
    expect(luhn('378282246310005')).toBe(true)
    expect(luhn('4111111111111112')).toBe(false)
    expect(luhn('')).toBe(false)
    expect(luhn('41x1')).toBe(false)
  })

  it('cardScheme needs a known prefix at a length that scheme issues', () => {
    expect(cardScheme('4111111111111111')).toBe('visa')
    expect(cardScheme('411111111111111')).toBeUndefined()
    expect(cardScheme('5555555555554444')).toBe('mastercard')
    expect(cardScheme('2223003122003222')).toBe('mastercard')
    expect(cardScheme('378282246310005')).toBe('amex')
    expect(cardScheme('6011111111111117')).toBe('discover')
    expect(cardScheme('3530111333300000')).toBe('jcb')
    expect(cardScheme('30569309025904')).toBe('diners')
    expect(cardScheme('9111111111111111')).toBeUndefined()
    expect(cardScheme('1700000000000')).toBeUndefined()
  })

  it('ibanValid checks the country length and mod 97', () => {
    expect(ibanValid('GB82WEST12345698765432')).toBe(true)
    expect(ibanValid('NO9386011117947')).toBe(true)
    expect(ibanValid('GB82WEST12345698765433')).toBe(false)
    expect(ibanValid('GB82WEST1234569876543')).toBe(false)
    expect(ibanValid('US82WEST12345698765432')).toBe(false)
  })

  it('ssnValid follows the SSA rules and refuses advertised numbers', () => {
    expect(ssnValid('536225489')).toBe(true)
    for (const refused of ['000225489', '666225489', '900225489', '536005489', '536220000', '078051120']) {
      expect(ssnValid(refused), refused).toBe(false)
    }
  })

  it('abaValid checks the prefix ranges and the 3-7-1 checksum', () => {
    expect(abaValid('021000021')).toBe(true)
    expect(abaValid('256074974')).toBe(true)
    expect(abaValid('021000022')).toBe(false)
    // Checksum right, prefix 13 unassigned.
    expect(abaValid('130000005')).toBe(false)
    expect(abaValid('000000000')).toBe(false)
  })

  it('ipv6Valid refuses times, MAC addresses and code', () => {
    expect(ipv6Valid('2001:db8::1')).toBe(true)
    expect(ipv6Valid('::ffff:192.0.2.1')).toBe(true)
    expect(ipv6Valid('::1')).toBe(true)
    expect(ipv6Valid('10:30:45')).toBe(false)
    expect(ipv6Valid('00:1a:2b:3c:4d:5e:6f:70')).toBe(false)
    expect(ipv6Valid('dead::beef')).toBe(false)
    expect(ipv6Valid('1::2::3')).toBe(false)
  })

  it('base64UrlDecode decodes base64url and refuses anything else', () => {
    expect(base64UrlDecode('eyJhbGciOiJIUzI1NiJ9')).toBe('{"alg":"HS256"}')
    expect(base64UrlDecode('a+b/')).toBeUndefined()
  })
})

describe('compileDlpProfiles', () => {
  it('compiles built-in profiles by id and has one detector per built-in entry', () => {
    const compiled = compileDlpProfiles(Object.keys(DLP_PROFILES))
    expect(compiled.profileIds).toEqual(['financial', 'pii', 'government_ids', 'credentials', 'secrets'])
    expect(compiled.maxScanChars).toBe(DEFAULT_MAX_SCAN_CHARS)
    // credentials and secrets share their detectors: one matcher each.
    expect(compiled.matchers).toHaveLength(DLP_DETECTOR_IDS.length)
    expect(compiled.hasPatterns).toBe(false)
    for (const id of DLP_DETECTOR_IDS) {
      expect(
        Object.values(DLP_PROFILES).some((p) => p.entries.some((e) => e.value === id)),
        id,
      ).toBe(true)
    }
  })

  it('names the profile and entry of an invalid pattern, with the RE2 message', () => {
    const make = () =>
      compileDlpProfiles([
        profile('hr', [
          { id: 'ok', type: 'pattern', value: 'EMP-[0-9]{6}' },
          { id: 'salary', type: 'pattern', value: '(a' },
          { id: 'lookahead', type: 'pattern', value: 'a(?=b)' },
          { id: 'backref', type: 'pattern', value: '(a)\\1' },
        ]),
      ])
    expect(make).toThrow(GatewayOptionsError)
    expect(make).toThrow(/profile 'hr' \(#0\): entry 'salary': invalid pattern: .*missing closing \)/)
    expect(make).toThrow(/entry 'lookahead': invalid pattern/)
    expect(make).toThrow(/entry 'backref': invalid pattern/)
    expect(make).not.toThrow(/entry 'ok'/)
  })

  it('lists every problem: unknown ids, duplicates, bad entries, bad options', () => {
    let message = ''
    try {
      compileDlpProfiles([
        'nope',
        'pii',
        'pii',
        profile('x', [
          { id: 'a', type: 'detector', value: 'passport' },
          { id: 'a', type: 'keyword', value: 'secret' },
          { id: 'k', type: 'keyword', value: '   ' },
        ]),
        { id: 'y', entries: [] },
        { id: 'z', entries: [{ id: 'e', type: 'regex', value: 'a' }] } as unknown as DlpProfile,
      ])
    } catch (error) {
      expect(error).toBeInstanceOf(GatewayOptionsError)
      message = (error as Error).message
    }
    expect(message).toMatch(/profile 'nope' \(#0\): no built-in profile has this id/)
    expect(message).toMatch(/profile 'pii' \(#2\): id: another profile has the same id/)
    expect(message).toMatch(/no built-in detector 'passport'/)
    expect(message).toMatch(/entry 'a': another entry has the same id/)
    expect(message).toMatch(/entry 'k': a keyword must have/)
    expect(message).toMatch(/profile 'y' \(#4\): entries: must have at least one entry/)
    expect(message).toMatch(/profile 'z' \(#5\): entries.0.type/)
    expect(() => compileDlpProfiles(['pii'], { maxScanChars: 0 })).toThrow(
      /Invalid DLP options: maxScanChars/,
    )
    expect(() => compileDlpProfiles('pii' as unknown as string[])).toThrow(/expected a list/)
  })

  it('refuses patterns whose RE2 program is too large', () => {
    expect(() =>
      compileDlpProfiles([profile('big', [{ id: 'p', type: 'pattern', value: '[a-z]{1000}'.repeat(11) }])]),
    ).toThrow(/entry 'p': pattern too large/)
  })
})

describe('scanText', () => {
  const dlp = compileDlpProfiles([
    'pii',
    'financial',
    profile('custom', [
      { id: 'codename', type: 'keyword', value: 'Blue Harbor' },
      { id: 'secret', type: 'keyword', value: 'secret' },
      { id: 'ticket', type: 'pattern', value: '(?i)PRJX-[0-9]{4,6}' },
      { id: 'cards', type: 'detector', value: 'credit_card' },
    ]),
  ])

  it('reports profile, entry and UTF-16 offsets, never the matched text', () => {
    const text = '😀 mail ana@example.com, card 4111 1111 1111 1111'
    const { findings, truncated } = scanText(dlp, text)
    expect(truncated).toBe(false)
    expect(findings).toEqual([
      { profileId: 'pii', entryId: 'email', start: 8, end: 23 },
      { profileId: 'financial', entryId: 'credit_card', start: 30, end: 49 },
      { profileId: 'custom', entryId: 'cards', start: 30, end: 49 },
    ])
    for (const finding of findings)
      expect(Object.keys(finding).sort()).toEqual(['end', 'entryId', 'profileId', 'start'])
  })

  it('matches keywords case-insensitively and only as whole words', () => {
    const text = 'The SECRET is out; secretary, secrets and top_secret are not. BLUE\n  harbor is.'
    const findings = scanText(dlp, text).findings
    expect(texts(text, findings)).toEqual(['SECRET', 'BLUE\n  harbor'])
  })

  it('keywords are literal text, never pattern syntax', () => {
    const compiled = compileDlpProfiles([profile('k', [{ id: 'k', type: 'keyword', value: 'a.b (c)+' }])])
    expect(texts('axb cc a.b (c)+ end', scanText(compiled, 'axb cc a.b (c)+ end').findings)).toEqual([
      'a.b (c)+',
    ])
  })

  it('runs RE2 patterns with their inline flags', () => {
    const text = 'see prjx-12345 and PRJX-99'
    expect(texts(text, scanText(dlp, text).findings)).toEqual(['prjx-12345'])
  })

  it('reads at most maxScanChars and says the text was truncated', () => {
    const small = compileDlpProfiles(['pii'], { maxScanChars: 40 })
    const text = `${'x'.repeat(20)} ana@example.com ${'y'.repeat(20)} bob@example.com`
    const result = scanText(small, text)
    expect(result.truncated).toBe(true)
    expect(texts(text, result.findings)).toEqual(['ana@example.com'])
    expect(scanText(small, 'x'.repeat(40)).truncated).toBe(false)
  })
})

describe('redactText', () => {
  const dlp = compileDlpProfiles(['pii', 'financial'])
  const text = 'card 4111 1111 1111 1111, mail ana@example.com'

  it('masks each finding with a label by default', () => {
    expect(redactText(text, scanText(dlp, text).findings)).toBe(
      'card [REDACTED:credit_card], mail [REDACTED:email]',
    )
  })

  it('masks with a fill character keeping the length', () => {
    const redacted = redactText(text, scanText(dlp, text).findings, { fill: '#' })
    expect(redacted).toBe('card ###################, mail ###############')
    expect(redacted).toHaveLength(text.length)
  })

  it('merges overlapping findings into one mask naming every entry; touching ones stay apart', () => {
    const findings = [
      { profileId: 'p', entryId: 'b', start: 4, end: 9 },
      { profileId: 'p', entryId: 'a', start: 2, end: 6 },
      { profileId: 'q', entryId: 'a', start: 3, end: 5 },
      { profileId: 'p', entryId: 'c', start: 9, end: 11 },
    ]
    expect(redactText('0123456789abc', findings)).toBe('01[REDACTED:a,b][REDACTED:c]bc')
    expect(redactText('0123456789abc', findings, { fill: '*' })).toBe('01*********bc')
  })

  it('clamps findings to the text and refuses a bad mask', () => {
    expect(redactText('abc', [{ entryId: 'x', start: 1, end: 99 }], { fill: '-' })).toBe('a--')
    expect(() => redactText('abc', [], { fill: '**' })).toThrow(GatewayOptionsError)
  })
})
