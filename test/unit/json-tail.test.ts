import { describe, expect, it } from 'vitest'
import { parseJsonTail, parseJsonTailOfBytes } from '../../src/json.js'

describe('parseJsonTail', () => {
  it.each([
    ['usage last', '{"a":1,"usage":{"t":3}}', { usage: { t: 3 } }],
    [
      'fields after usage',
      '{"usage":{"t":3},"tier":"x","n":[1,{"b":2}]}',
      { usage: { t: 3 }, tier: 'x', n: [1, { b: 2 }] },
    ],
    ['white space around', ' {"usage" : {"t":3} }\n', { usage: { t: 3 } }],
    [
      'a nested usage after the top-level one',
      '{"usage":{"t":1},"x":{"usage":{"t":2}}}',
      { usage: { t: 1 }, x: { usage: { t: 2 } } },
    ],
    ['a string value "usage"', '{"usage":{"t":1},"k":"usage"}', { usage: { t: 1 }, k: 'usage' }],
    [
      'quotes and braces in strings',
      '{"usage":{"t":1},"s":"a\\"}{\\"usage\\":2,\\\\"}',
      { usage: { t: 1 }, s: 'a"}{"usage":2,\\' },
    ],
    ['the last of two', '{"usage":{"t":1},"usage":{"t":2}}', { usage: { t: 2 } }],
    [
      '"usage" last in an array',
      '{"usage":{"t":1},"k":["a","usage"]}',
      { usage: { t: 1 }, k: ['a', 'usage'] },
    ],
    [
      'a key ending in an escaped "usage"',
      '{"usage":{"t":1},"x\\"usage":{"t":2}}',
      { usage: { t: 1 }, 'x"usage': { t: 2 } },
    ],
    ['a nested usage last, no top-level one', '{"a":1,"x":{"usage":{"t":2}}}', undefined],
  ])('%s', (_name, text, expected) => {
    expect(parseJsonTail(text, 'usage')).toStrictEqual(expected)
  })

  it.each([
    ['no such field', '{"a":{"usage":1}}'],
    ['only nested', '{"a":[{"usage":1}],"b":2}'],
    ['an array', '[{"usage":1}]'],
    ['not JSON after the field', '{"usage":{t:1}}'],
    ['cut', '{"usage":{"t":1}'],
    ['a field with the name as a prefix', '{"usage_x":1}'],
    ['empty', ''],
  ])('undefined for %s', (_name, text) => {
    expect(parseJsonTail(text, 'usage')).toBeUndefined()
  })

  describe('of bytes', () => {
    const usage = { prompt_tokens: 1, completion_tokens: 2 }
    it.each([
      ['after 20 KB of two-byte text', { text: 'wörd '.repeat(4000), usage }],
      ['with fields after it', { text: 'x', usage, tier: 'default', n: [1, { b: 2 }] }],
    ])('reads the tail %s, as parseJsonTail does', (_name, answer) => {
      const json = JSON.stringify(answer)
      expect(parseJsonTailOfBytes(Buffer.from(json), 'usage')).toStrictEqual(parseJsonTail(json, 'usage'))
      expect(parseJsonTailOfBytes(Buffer.from(json), 'usage')?.usage).toStrictEqual(usage)
    })

    it('reads the tail after two-byte characters and after white space of any length', () => {
      // Decoded from the key's quote: the character just before it is not cut.
      const after = Buffer.from(JSON.stringify({ text: `a${'é'.repeat(40)}`, usage }))
      expect(parseJsonTailOfBytes(after, 'usage')).toStrictEqual({ usage })
      // Pretty-printed: the comma is read back over the line break and indentation, however long.
      const spaced = Buffer.from(`{"text":"x",\n${' '.repeat(200)}"usage" : {"t":1} \n}\n`)
      expect(parseJsonTailOfBytes(spaced, 'usage')).toStrictEqual({ usage: { t: 1 } })
    })

    it.each([
      // The last occurrence is a nested key: its tail does not parse, and the text must be walked.
      ['a nested usage after the top-level one', '{"usage":{"t":1},"x":{"usage":{"t":2}}}'],
      ['no such field', '{"a":1}'],
      ['the name as a value', '{"a":"usage"}'],
      ['the name in an array', '{"a":["x","usage"]}'],
      // Not JSON, though the tail alone would parse: no comma before the key.
      ['a key after a value and no comma', '{"a":"x" "usage":{"t":1}}'],
      ['not an object', '[{"usage":1}]'],
      ['cut', '{"usage":{"t":1}'],
    ])('leaves to the whole text an answer with %s', (_name, text) => {
      expect(parseJsonTailOfBytes(Buffer.from(text), 'usage')).toBeUndefined()
    })
  })

  it('agrees with JSON.parse on generated answers with hostile strings', () => {
    let seed = 7
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    const pieces = ['"', '\\', '\\"', '{', '}', '[', ']', ':', ',', 'usage', '"usage":', 'é', '\n', 'x']
    const text = () =>
      Array.from(
        { length: Math.floor(random() * 12) },
        () => pieces[Math.floor(random() * pieces.length)],
      ).join('')
    for (let i = 0; i < 500; i++) {
      const answer: Record<string, unknown> = {
        id: text(),
        choices: [{ message: { content: text(), usage: text() } }],
      }
      if (random() < 0.8) answer.usage = { prompt_tokens: i, completion_tokens: text().length }
      if (random() < 0.5) answer[text()] = text()
      const json = JSON.stringify(answer)
      const tail = parseJsonTail(json, 'usage')
      // Of bytes, the tail is the same, or left to the whole text.
      const ofBytes = parseJsonTailOfBytes(Buffer.from(json), 'usage')
      if (ofBytes !== undefined) expect(ofBytes).toStrictEqual(tail)
      const whole = JSON.parse(json) as Record<string, unknown>
      if (Object.hasOwn(whole, 'usage')) expect(tail?.usage).toStrictEqual(whole.usage)
      else expect(tail).toBeUndefined()
    }
  })
})
