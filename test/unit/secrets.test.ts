import { describe, expect, it } from 'vitest'
import { createScrubber, MIN_SECRET_FRAGMENT } from '../../src/secrets.js'

const KEY = 'sk-stored-0123456789abcdefghijklmnop'

function scrub(text: string, secrets: string[] = [KEY]): string {
  return createScrubber(secrets)!.scrub(Buffer.from(text)).toString()
}

describe('secret scrubber', () => {
  it('replaces a secret whole, wherever it stands', () => {
    expect(scrub(`Incorrect API key provided: ${KEY}.`)).toBe('Incorrect API key provided: [REDACTED].')
    expect(scrub(`${KEY}${KEY} and "${KEY}"`)).toBe('[REDACTED] and "[REDACTED]"')
  })

  it('replaces masked forms that keep a long beginning or end of the secret', () => {
    const head = KEY.slice(0, MIN_SECRET_FRAGMENT + 3)
    const tail = KEY.slice(-MIN_SECRET_FRAGMENT)
    expect(scrub(`key ${head}****************`)).toBe('key [REDACTED]****************')
    expect(scrub(`key ****************${tail}.`)).toBe('key ****************[REDACTED].')
    expect(scrub(`key ${head}…${tail}`)).toBe('key [REDACTED]…[REDACTED]')
  })

  it('scrubs text as it scrubs bytes', () => {
    const scrubber = createScrubber([KEY])!
    const text = `héllo ${KEY.slice(0, 14)}…${KEY.slice(-13)} and ${KEY}`
    expect(scrubber.scrubText(text)).toBe(scrubber.scrub(Buffer.from(text)).toString())
    expect(scrubber.scrubText(text)).toBe('héllo [REDACTED]…[REDACTED] and [REDACTED]')
  })

  it('leaves short pieces and other text alone, and returns the same buffer when clean', () => {
    const scrubber = createScrubber([KEY])!
    const clean = Buffer.from(`sk-stored-0…mnop ${KEY.slice(0, MIN_SECRET_FRAGMENT - 1)}`)
    expect(scrubber.scrub(clean)).toBe(clean)
    expect(scrubber.scrubText('nothing here')).toBe('nothing here')
  })

  it('ignores secrets too short to tell from text, and has nothing to do without secrets', () => {
    expect(createScrubber(['short', undefined])).toBeUndefined()
    expect(createScrubber([])).toBeUndefined()
  })

  it('finds a secret split across stream chunks at every possible cut', () => {
    const text = `{"error":{"message":"Incorrect API key provided: ${KEY}. Or ${KEY.slice(0, 20)}***"}}`
    const expected = scrub(text)
    for (let cut = 1; cut < text.length; cut++) {
      const stream = createScrubber([KEY])!.stream()
      const bytes = Buffer.from(text)
      const out = Buffer.concat([
        stream.push(bytes.subarray(0, cut)),
        stream.push(bytes.subarray(cut)),
        stream.end(),
      ]).toString()
      expect(out, `cut at ${cut}`).toBe(expected)
    }
  })

  it('streams clean text through with at most one secret length held back', () => {
    const stream = createScrubber([KEY])!.stream()
    const chunk = Buffer.from('x'.repeat(1000))
    expect(stream.push(chunk).length).toBe(1000 - KEY.length)
    expect(stream.end().length).toBe(KEY.length)
  })
})
