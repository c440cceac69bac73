import { describe, expect, it } from 'vitest'
import { assembleStream } from '../../src/logs/assemble.js'
import { seededRandom } from '../helpers/random.js'

const sse = (...events: unknown[]) =>
  events.map((e) => `data: ${typeof e === 'string' ? e : JSON.stringify(e)}\n\n`).join('')

describe('assembleStream', () => {
  it('joins OpenAI deltas, escapes included, and keeps the last finish reason', () => {
    const text = sse(
      { choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] },
      { choices: [{ index: 0, delta: { content: 'say "hi"\n' }, finish_reason: null }] },
      { choices: [{ index: 0, delta: { content: 'and \\ bye' }, finish_reason: null }] },
      { choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
      '[DONE]',
    )
    expect(JSON.parse(assembleStream('openai', text)!)).toEqual({
      stream: true,
      content: 'say "hi"\nand \\ bye',
      finishReason: 'stop',
      events: 5,
    })
  })

  it('keeps the last finish reason with a value, past an empty one and one cut off at the end', () => {
    const text = `${sse(
      { choices: [{ index: 0, delta: {}, finish_reason: 'length' }] },
      { choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
      { choices: [{ index: 0, delta: {}, finish_reason: '' }] },
    )}data: {"choices":[{"finish_reason":"cut`
    expect(JSON.parse(assembleStream('openai', text)!)).toMatchObject({ finishReason: 'stop' })
    expect(JSON.parse(assembleStream('openai', sse('[DONE]'))!)).toMatchObject({ finishReason: null })
  })

  it('counts events, not the blank blocks between them', () => {
    const event = sse({ choices: [{ index: 0, delta: { content: 'x' }, finish_reason: null }] })
    // Blocks of spaces, a no-break space among them, are blank; an event after a space is still one.
    const text = `\n\n${event}\n\n \n\n\u00a0\t\n\n ${event}data: [DONE]`
    expect(JSON.parse(assembleStream('openai', text)!)).toMatchObject({ content: 'xx', events: 3 })
  })

  it('joins Anthropic text deltas and reads the stop reason', () => {
    const text = [
      'event: message_start\ndata: {"type":"message_start","message":{"content":[]}}\n\n',
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}\n\n',
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}\n\n',
      'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"}}\n\n',
    ].join('')
    expect(JSON.parse(assembleStream('anthropic', text)!)).toMatchObject({
      content: 'Hello',
      finishReason: 'end_turn',
    })
  })

  it('joins Gemini parts, and knows no other dialect', () => {
    const text = sse(
      { candidates: [{ content: { parts: [{ text: 'A' }] } }] },
      { candidates: [{ content: { parts: [{ text: 'B' }] }, finishReason: 'STOP' }] },
    )
    expect(JSON.parse(assembleStream('gemini', text)!)).toMatchObject({ content: 'AB', finishReason: 'STOP' })
    expect(assembleStream('native', text)).toBeUndefined()
  })
})

// The assembly as it was first written, kept as its definition: each delta's JSON string decoded, their
// text joined, and the whole record written by JSON.stringify. Written a delta at a time, the content must
// come out exactly the same.
const JSON_STRING = '("[^"\\\\]*(?:\\\\.[^"\\\\]*)*")'
const DEFINITIONS = {
  openai: [new RegExp(`"delta":\\{[^{}]*?"content":${JSON_STRING}`, 'g'), '"finish_reason":"'],
  anthropic: [new RegExp(`"type":"text_delta","text":${JSON_STRING}`, 'g'), '"stop_reason":"'],
  gemini: [new RegExp(`"text":${JSON_STRING}`, 'g'), '"finishReason":"'],
} as const

function assembledByDefinition(dialect: keyof typeof DEFINITIONS, sse: string): unknown {
  const [pattern, finishKey] = DEFINITIONS[dialect]
  let content = ''
  for (const match of sse.matchAll(pattern)) {
    const literal = match[1]!
    try {
      content += literal.includes('\\') ? (JSON.parse(literal) as string) : literal.slice(1, -1)
    } catch {}
  }
  let finishReason: string | null = null
  for (
    let at = sse.lastIndexOf(finishKey);
    at !== -1;
    at = at === 0 ? -1 : sse.lastIndexOf(finishKey, at - 1)
  ) {
    const end = sse.indexOf('"', at + finishKey.length)
    if (end > at + finishKey.length) {
      finishReason = sse.slice(at + finishKey.length, end)
      break
    }
  }
  return { stream: true, content, finishReason }
}

// Pieces of events as providers write them, and as they break: escapes, braces inside and outside the text,
// a key without its string, an escape before a line end, halves of a surrogate pair (raw and escaped).
const FRAGMENTS = [
  'data: {"choices":[{"delta":{',
  '"delta":{',
  '"content":',
  '"role":"assistant",',
  '"type":"text_delta","text":',
  '"text":',
  '"',
  '\\"',
  '\\\\',
  '\\n',
  '\\u00e9',
  '\\ud83d',
  '\\ude00',
  '\\x',
  '\\\n',
  '\\\r',
  '\\\u2028',
  '\ud83d',
  '\ude00',
  '\u0001',
  '\u2028',
  'null',
  '{',
  '}',
  '}}]}',
  ',',
  'hello',
  ' wörld',
  '😀',
  '"finish_reason":"stop"',
  '"stop_reason":"end_turn"',
  '"finishReason":"STOP"',
  '\n\n',
  '\n',
  // Whole deltas of each dialect whose text is half a pair, or breaks off at an escaped line end (of each kind
  // a pattern's `.` stops at).
  ...[
    '"\\ud83d"',
    '"\\ude00"',
    '"a\\\n"text":"b"',
    '"c\\\n"content":"d"',
    '"e\\\r"text":"f"',
    '"g\\\u2028"content":"h"',
    '"i\\\u2029"text":"j"',
  ].flatMap((text) => [
    `data: {"choices":[{"delta":{"content":${text}}}]}\n\n`,
    `data: {"delta":{"type":"text_delta","text":${text}}}\n\n`,
    `data: {"candidates":[{"content":{"parts":[{"text":${text}}]}}]}\n\n`,
  ]),
]

describe('assembleStream against its definition', () => {
  it.each(['openai', 'anthropic', 'gemini'] as const)(
    'joins the same %s text as the pattern and a parse per delta, on streams of every mix of pieces',
    (dialect) => {
      const random = seededRandom(0x5eed + dialect.length)
      for (let run = 0; run < 4000; run++) {
        let sse = ''
        for (let n = random(40); n > 0; n--) sse += FRAGMENTS[random(FRAGMENTS.length)]
        const assembled = assembleStream(dialect, sse)!
        const { events } = JSON.parse(assembled)
        expect({ sse, assembled }).toEqual({
          sse,
          assembled: JSON.stringify({ ...(assembledByDefinition(dialect, sse) as object), events }),
        })
      }
    },
  )
})
