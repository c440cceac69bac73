import { describe, expect, it } from 'vitest'
import {
  BLANK_LINES,
  eventEnd,
  lastEventEnd,
  UsageEvents,
  withoutUsage,
} from '../../src/upstream/stream-usage.js'
import { seededRandom } from '../helpers/random.js'

const run = (text: string) => withoutUsage(Buffer.from(text)).toString()

describe('withoutUsage', () => {
  it.each([
    ['no usage at all', 'data: {"choices":[{"delta":{}}]}\n\n', 'data: {"choices":[{"delta":{}}]}\n\n'],
    ['a null after a comma', 'data: {"a":1,"usage":null}\n\n', 'data: {"a":1}\n\n'],
    [
      'text in several scripts, byte for byte',
      'data: {"a":"héllo — 日本 🙂","usage":null}\n\n',
      'data: {"a":"héllo — 日本 🙂"}\n\n',
    ],
    ['a null before a comma', 'data: {"usage":null,"a":1}\n\n', 'data: {"a":1}\n\n'],
    [
      'several events',
      'data: {"a":1,"usage":null}\n\ndata: {"b":2,"usage":null}\n\n',
      'data: {"a":1}\n\ndata: {"b":2}\n\n',
    ],
    [
      'the usage-only chunk between others',
      'data: {"a":1,"usage":null}\n\ndata: {"id":"x","choices":[],"usage":{"prompt_tokens":1}}\n\ndata: [DONE]\n\n',
      'data: {"a":1}\n\ndata: [DONE]\n\n',
    ],
    [
      'the usage-only chunk between others, lines ending in CRLF',
      'data: {"a":1,"usage":null}\r\n\r\ndata: {"id":"x","choices":[],"usage":{"prompt_tokens":1}}\r\n\r\ndata: [DONE]\r\n\r\n',
      'data: {"a":1}\r\n\r\ndata: [DONE]\r\n\r\n',
    ],
    [
      'the usage-only chunk between others, lines ending in CR',
      'data: {"a":1,"usage":null}\r\rdata: {"id":"x","choices":[],"usage":{"prompt_tokens":1}}\r\rdata: [DONE]\r\r',
      'data: {"a":1}\r\rdata: [DONE]\r\r',
    ],
    [
      'the usage-only chunk first',
      'data: {"choices":[],"usage":{"t":1}}\n\ndata: [DONE]\n\n',
      'data: [DONE]\n\n',
    ],
    [
      'the usage-only chunk cut short',
      'data: {"a":1}\n\ndata: {"choices":[],"usage":{"t":1',
      'data: {"a":1}\n\n',
    ],
    [
      'a usage the client asked for itself',
      'data: {"choices":[{}],"usage":{"t":1}}\n\n',
      'data: {"choices":[{}],"usage":{"t":1}}\n\n',
    ],
    [
      'a key that only ends in usage',
      'data: {"a":1,"total_usage":null,"usage":null}\n\n',
      'data: {"a":1,"total_usage":null}\n\n',
    ],
    ['text that mentions usage', 'data: {"c":"\\"usage\\":null"}\n\n', 'data: {"c":"\\"usage\\":null"}\n\n'],
    [
      'a value that is the word usage, before the key',
      'data: {"c":"usage","usage":null}\n\n',
      'data: {"c":"usage"}\n\n',
    ],
  ])('%s', (_name, input, expected) => {
    expect(run(input)).toBe(expected)
  })

  it('returns the same buffer when there is nothing to take out', () => {
    const events = Buffer.from('data: {"choices":[{"delta":{"content":"hi"}}]}\n\n')
    expect(withoutUsage(events)).toBe(events)
  })

  it.each([
    [
      'a spaced usage object and a usageMetadata one, found and left in',
      'data: {"choices":[],"usage" : {"t":1}}\n\ndata: {"choices":[],"usageMetadata":{"t":2}}\n\n',
    ],
    ['a spaced null, left in', 'data: {"a":1,"usage": null}\n\n'],
  ])('cuts only the compact forms OpenAI writes: %s', (_name, input) => {
    expect(run(input)).toBe(input)
  })

  // The usage events a hidden stream keeps are found here, not by the markers' pass: they must be the
  // events `UsageEvents.push` finds, whatever the batch holds, and the cut the same as without keeping them.
  it('keeps the events UsageEvents.push keeps, on random batches, and cuts the same', () => {
    const pieces = [
      'data: {"a":1',
      ',"usage":null',
      '"usage":null,',
      ',"choices":[],"usage":{"prompt_tokens":3}}',
      '"choices":[],',
      '"usage":{"t":1}',
      '"usageMetadata": {"totalTokenCount":4}',
      '"usage" :  {',
      '"usage": null',
      '\\"usage\\":{',
      '"usages":{',
      '"total_usage":{',
      'usage',
      '"text":"héllo 🙂"',
      '}',
      '\n\n',
      '\r\n\r\n',
      '\r\r',
      'data: [DONE]\n\n',
    ]
    const random = seededRandom(1812433253)
    let keptSome = 0
    for (let round = 0; round < 5000; round++) {
      const input = Array.from({ length: 1 + random(10) }, () => pieces[random(pieces.length)]).join('')
      const text = Buffer.from(input).toString('latin1')
      const expected = new UsageEvents()
      expected.push(text)
      const usage = new UsageEvents()
      const out = withoutUsage(Buffer.from(input), text, usage).toString()
      expect(usage.text(), input).toBe(expected.text())
      expect(out, input).toBe(run(input))
      if (expected.text() !== '') keptSome++
    }
    expect(keptSome).toBeGreaterThan(1000)
  })
})

describe('UsageEvents', () => {
  const latin1 = (text: string) => Buffer.from(text).toString('latin1')
  const kept = (...batches: string[]) => {
    const events = new UsageEvents()
    for (const batch of batches) events.push(latin1(batch))
    return events.text()
  }
  const start = 'event: message_start\ndata: {"message":{"usage":{"input_tokens":9}}}\n\n'
  const delta = (n: number) => `event: message_delta\ndata: {"usage":{"output_tokens":${n}}}\n\n`
  const text = 'event: content_block_delta\ndata: {"delta":{"text":"héllo 🙂"}}\n\n'

  it('keeps the first and the last event with a usage object, and nothing between or around them', () => {
    expect(kept(start + text + delta(1) + text)).toBe(start + delta(1))
    expect(kept(start, text, delta(1), text, delta(2), text)).toBe(start + delta(2))
    expect(kept(text + start + text, text + delta(1) + delta(2))).toBe(start + delta(2))
  })

  it('keeps one event once when it is the only one', () => {
    const usage = 'data: {"choices":[],"usage":{"prompt_tokens":3}}\n\n'
    expect(kept(`data: {"usage":null}\n\n${usage}data: [DONE]\n\n`)).toBe(usage)
  })

  it('finds the events in text whose lines end in CR LF or CR, and an unfinished last event', () => {
    const crlf = (event: string) => event.replaceAll('\n', '\r\n')
    const cr = (event: string) => event.replaceAll('\n', '\r')
    expect(kept(crlf(text + start + text))).toBe(crlf(start))
    expect(kept(cr(text + delta(3) + text))).toBe(cr(delta(3)))
    expect(kept(text, 'data: {"usageMetadata": {"totalTokenCount":4}}')).toBe(
      'data: {"usageMetadata": {"totalTokenCount":4}}',
    )
  })
})

describe('eventEnd', () => {
  // The definition: the nearest end of any of the three blank lines, or the text's end.
  const nearestEnd = (text: string, at: number) =>
    Math.min(
      text.length,
      ...BLANK_LINES.map((blank) => {
        const found = text.indexOf(blank, at)
        return found === -1 ? text.length : found + blank.length
      }),
    )

  it('agrees with the nearest of the three blank lines on texts of every mix of line ends', () => {
    const pieces = ['a', 'data: x', '\n', '\r', '\r\n', '\n\n', '\r\r', '\r\n\r\n']
    const random = seededRandom(88172645)
    let checked = 0
    for (let i = 0; i < 3000; i++) {
      const text = Array.from({ length: 1 + random(12) }, () => pieces[random(pieces.length)]).join('')
      for (let at = 0; at <= text.length; at++) {
        expect(eventEnd(text, at), JSON.stringify({ text, at })).toBe(nearestEnd(text, at))
        checked++
      }
    }
    expect(checked).toBeGreaterThan(30_000)
  })
})

describe('lastEventEnd', () => {
  // The definition: the latest end of any of the three blank lines, or -1.
  const latestEnd = (text: string) =>
    Math.max(
      -1,
      ...BLANK_LINES.map((blank) => {
        const found = text.lastIndexOf(blank)
        return found === -1 ? -1 : found + blank.length
      }),
    )

  it('agrees with the latest of the three blank lines on texts of every mix of line ends', () => {
    const pieces = ['a', 'data: x', '\n', '\r', '\r\n', '\n\n', '\r\r', '\r\n\r\n']
    const random = seededRandom(2463534242)
    let found = 0
    for (let i = 0; i < 20_000; i++) {
      const text = Array.from({ length: random(12) }, () => pieces[random(pieces.length)]).join('')
      const end = latestEnd(text)
      expect(lastEventEnd(text), JSON.stringify(text)).toBe(end)
      if (end !== -1) found++
    }
    expect(found).toBeGreaterThan(10_000)
  })

  it('agrees with it on long texts, whose last blank line lies far back, and from any index', () => {
    const pieces = ['data: {"a":1}', 'x', '\n', '\r', '\r\n', '\n\n', '\r\r', '\r\n\r\n']
    const random = seededRandom(521288629)
    let far = 0
    for (let i = 0; i < 3000; i++) {
      // Mostly text, so that blank lines are far apart.
      const text = Array.from({ length: random(60) }, () =>
        random(4) === 0 ? pieces[random(pieces.length)] : pieces[random(2)],
      ).join('')
      const before = random(text.length + 1)
      const end = latestEnd(text.slice(0, before))
      expect(lastEventEnd(text, before), JSON.stringify({ text, before })).toBe(end)
      if (end !== -1 && before - end > 8) far++
    }
    expect(far).toBeGreaterThan(1000)
  })
})
