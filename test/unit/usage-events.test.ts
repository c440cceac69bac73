import { describe, expect, it } from 'vitest'
import { dialectOf } from '../../src/providers/dialects/index.js'
import type { Dialect } from '../../src/providers/types.js'
import { UsageEvents } from '../../src/usage.js'
import * as anthropic from './dialects/fixtures/anthropic.js'
import * as gemini from './dialects/fixtures/gemini.js'

const openaiStream = [
  '{"choices":[{"delta":{"role":"assistant","content":""}}],"usage":null}',
  '{"choices":[{"delta":{"content":"Hello usage: {\\"usage\\":{}}"}}],"usage":null}',
  '{"choices":[{"delta":{},"finish_reason":"stop"}],"usage":null}',
  '{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}',
]
  .map((data) => `data: ${data}\n\n`)
  .join('')
  .concat('data: [DONE]\n\n')

const geminiStream = gemini.textStreamEvents.map((event) => `data: ${JSON.stringify(event)}\n\n`).join('')

/** The stream fed in pieces of `size` bytes, as a network would cut it. */
function kept(text: string, size: number): string | undefined {
  const events = new UsageEvents()
  const bytes = Buffer.from(text)
  for (let at = 0; at < bytes.length; at += size) events.push(bytes.subarray(at, at + size))
  return events.text()
}

describe('UsageEvents', () => {
  // Gemini's fixture is two chunks, both with running totals: both are kept.
  it.each<[string, Dialect, string, boolean]>([
    ['OpenAI, usage asked for', 'openai', openaiStream, true],
    [
      'Anthropic, input in message_start and output in message_delta',
      'anthropic',
      anthropic.textStream,
      true,
    ],
    ['Anthropic, with tool calls', 'anthropic', anthropic.toolStream, true],
    ['Gemini, running totals', 'gemini', geminiStream, false],
  ])('keeps what %s usage is read from, however the stream is cut', (_name, dialect, stream, shorter) => {
    const { usage } = dialectOf(dialect)
    const expected = usage.fromStream(stream)
    expect(expected).toBeDefined()
    for (const size of [1, 7, 64, stream.length]) {
      const text = kept(stream, size)
      expect(usage.fromStream(text!)).toEqual(expected)
      // Only a part is kept: not the text deltas in between.
      if (shorter && size < stream.length) expect(text!.length).toBeLessThan(stream.length)
    }
  })

  it('keeps a cut stream’s unfinished last event, and nothing that carries no usage object', () => {
    const text = kept('data: {"usage":null,"a":1}\n\ndata: {"choices":[],"usage":{"prompt_tokens":1', 5)
    expect(text).toBe('data: {"choices":[],"usage":{"prompt_tokens":1')
  })
})
