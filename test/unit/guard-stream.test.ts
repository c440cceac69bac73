/**
 * The stream guard on its own, fed byte by byte: what the network may do to an answer, made certain.
 */
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { compileDlp, dlpOption } from '../../src/guard/config.js'
import { DlpCollector } from '../../src/guard/dlp-json.js'
import { guardStream, NDJSON_FRAMING, ndjsonTerminalEvent } from '../../src/guard/stream.js'
import { OLLAMA_TEXT } from '../../src/providers/dialects/text.js'

const dlp = compileDlp(
  dlpOption.parse({ policies: [{ id: 'mask', profiles: ['pii'], check: ['response'], action: 'redact' }] }),
)

/** Runs `bytes` through a guard of Ollama's JSON lines, one byte per chunk. */
async function guardedLines(bytes: Buffer): Promise<string> {
  const source = Readable.from(
    [...bytes].map((byte) => Buffer.from([byte])),
    { objectMode: false },
  )
  const guarded = guardStream(source, undefined, {
    framing: NDJSON_FRAMING,
    text: OLLAMA_TEXT,
    terminalEvent: ndjsonTerminalEvent,
    dlp: { collector: new DlpCollector(dlp.response!, 'RESPONSE'), mask: 'label', holdBackChars: undefined },
    chunkChars: Number.POSITIVE_INFINITY,
    maxEventBytes: 1024 * 1024,
  })
  const chunks: Buffer[] = []
  for await (const chunk of guarded.body) chunks.push(chunk)
  return Buffer.concat(chunks).toString('utf8')
}

describe('guardStream', () => {
  it('reads a character cut between two chunks whole', async () => {
    const lines = [
      { message: { role: 'assistant', content: 'Café ☕ 日本, mail ana.silva@exa' }, done: false },
      { message: { role: 'assistant', content: 'mple.com 👍' }, done: false },
      { message: { role: 'assistant', content: '' }, done: true },
    ]
    const out = await guardedLines(Buffer.from(lines.map((line) => `${JSON.stringify(line)}\n`).join('')))
    const texts = out
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line).message.content)
    expect(texts.join('')).toBe('Café ☕ 日本, mail [REDACTED:email] 👍')
  })
})
