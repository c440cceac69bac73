import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { GatewayError } from '../../src/errors.js'
import { dialectOf } from '../../src/providers/dialects/index.js'
import type { StreamGrammar } from '../../src/providers/dialects/types.js'
import type { Dialect } from '../../src/providers/types.js'
import type { UpstreamTarget } from '../../src/target.js'
import { UpstreamBody } from '../../src/upstream/body.js'
import { watchUsage } from '../../src/usage.js'
import { trickle } from '../helpers/gc.js'
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

/**
 * What an upstream body keeps for the usage of a stream fed in pieces of `size` bytes, as a network would
 * cut it; `cut` ends the source with an error instead of its end.
 */
async function kept(
  text: string,
  size: number,
  cut = false,
  grammar: StreamGrammar | undefined = undefined,
): Promise<string | undefined> {
  const source = new PassThrough()
  const body = new UpstreamBody(
    source,
    { chunks: [], size: 0, ended: false },
    {
      events: true,
      terminalDialect: undefined,
      grammar,
      judgesEnd: false,
      usageExpected: false,
      hideUsage: false,
      keepUsage: true,
      scrubber: undefined,
      maxBytes: 1024 * 1024,
      maxEventBytes: 64 * 1024,
      writeStallMs: 30_000,
    },
    { cancel: () => {}, explain: () => new GatewayError('UPSTREAM_INTERRUPTED') },
  )
  body.on('error', () => {})
  body.resume()
  const bytes = Buffer.from(text)
  for (let at = 0; at < bytes.length; at += size) source.write(bytes.subarray(at, at + size))
  if (cut) {
    // A reset drops what the source still buffers: cut it only once the body has read every byte.
    while (source.readableLength > 0) await new Promise((resolve) => setImmediate(resolve))
    source.destroy(new Error('reset'))
  } else source.end()
  await new Promise((resolve) => body.once('close', resolve))
  return body.usageText()
}

describe('the usage an upstream body keeps', () => {
  // Gemini's fixture is two chunks, both with running totals: both are kept.
  it.each<[string, Dialect, string, boolean, string]>([
    ['OpenAI, usage asked for', 'openai', openaiStream, true, '/v1/chat/completions'],
    [
      'Anthropic, input in message_start and output in message_delta',
      'anthropic',
      anthropic.textStream,
      true,
      '/v1/messages',
    ],
    ['Anthropic, with tool calls', 'anthropic', anthropic.toolStream, true, '/v1/messages'],
    ['Gemini, running totals', 'gemini', geminiStream, false, '/v1beta/models/g:streamGenerateContent'],
  ])(
    'keeps what %s usage is read from, however the stream is cut, with its grammar and without',
    async (_name, dialect, stream, shorter, path) => {
      const { usage } = dialectOf(dialect)
      const grammar = dialectOf(dialect).stream(path)
      expect(grammar).toBeDefined()
      const expected = usage.fromStream(stream)
      expect(expected).toBeDefined()
      // With its grammar, the markers' search finds the usage events; without, the events' own search.
      for (const read of [grammar, undefined]) {
        for (const size of [1, 7, 64, stream.length]) {
          const text = await kept(stream, size, false, read)
          expect(usage.fromStream(text!)).toEqual(expected)
          // Only a part is kept: not the text deltas in between.
          if (shorter && size < stream.length) expect(text!.length).toBeLessThan(stream.length)
        }
      }
    },
  )

  it('keeps a cut stream’s unfinished last event, and nothing that carries no usage object', async () => {
    const text = await kept(
      'data: {"usage":null,"a":1}\n\ndata: {"choices":[],"usage":{"prompt_tokens":1',
      5,
      true,
    )
    expect(text).toBe('data: {"choices":[],"usage":{"prompt_tokens":1')
  })
})

describe('the usage read from a JSON answer', () => {
  it('keeps an answer read a byte at a time in a few Buffers, and reads its usage', async () => {
    const source = new PassThrough()
    const body = new UpstreamBody(
      source,
      { chunks: [], size: 0, ended: false },
      {
        events: false,
        terminalDialect: undefined,
        grammar: undefined,
        judgesEnd: true,
        usageExpected: false,
        hideUsage: false,
        keepUsage: false,
        scrubber: undefined,
        maxBytes: 1024 * 1024,
        maxEventBytes: 64 * 1024,
        writeStallMs: 30_000,
      },
      { cancel: () => {}, explain: () => new GatewayError('UPSTREAM_INTERRUPTED') },
    )
    const target = { provider: { spec: { dialect: 'openai' } } } as unknown as UpstreamTarget
    const headers = { 'content-type': 'application/json' }
    const usage = watchUsage(target, { status: 200, headers, body })
    body.resume()
    const answer = JSON.stringify({
      choices: [{ message: { role: 'assistant', content: 'x'.repeat(10_000) } }],
      usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 },
    })
    const { kept } = trickle(source, answer)
    expect(await kept()).toBeLessThan(100)
    source.end()
    expect(await usage).toMatchObject({ inputTokens: 9, outputTokens: 3 })
  })
})
