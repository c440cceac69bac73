import { describe, expect, it } from 'vitest'
import { withoutUsage } from '../../src/upstream/stream-usage.js'

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
  ])('%s', (_name, input, expected) => {
    expect(run(input)).toBe(expected)
  })

  it('returns the same buffer when there is nothing to take out', () => {
    const events = Buffer.from('data: {"choices":[{"delta":{"content":"hi"}}]}\n\n')
    expect(withoutUsage(events)).toBe(events)
  })
})
