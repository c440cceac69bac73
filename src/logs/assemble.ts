import type { Dialect } from '../providers/types.js'

// A JSON string literal, escapes included; decoded with JSON.parse once matched. Written as runs of plain
// characters between escapes: an alternation repeated once per character would recurse once per
// character too, and overflow the stack on a long delta.
const STRING = '("[^"\\\\]*(?:\\\\.[^"\\\\]*)*")'

/** Where each dialect puts a streamed text delta and the reason the answer stopped. */
const PATTERNS: Partial<Record<Dialect, { text: RegExp; finish: RegExp }>> = {
  openai: {
    text: new RegExp(`"delta":\\{[^{}]*?"content":${STRING}`, 'g'),
    finish: /"finish_reason":"([^"]+)"/g,
  },
  anthropic: {
    text: new RegExp(`"type":"text_delta","text":${STRING}`, 'g'),
    finish: /"stop_reason":"([^"]+)"/g,
  },
  gemini: {
    text: new RegExp(`"text":${STRING}`, 'g'),
    finish: /"finishReason":"([^"]+)"/g,
  },
}

/**
 * What a streamed answer said, put back together for the log: the text of its deltas joined, the finish
 * reason, and how many events carried it. A log reader wants the answer, not hundreds of framing events.
 * The deltas are found by pattern in one pass over the stream rather than by parsing every event, since
 * this runs for every logged stream; `undefined` for dialects it does not know.
 *
 * @example
 * assembleStream('openai', 'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: [DONE]\n\n')
 * // '{"stream":true,"content":"Hi","finishReason":null,"events":2}'
 */
export function assembleStream(dialect: Dialect, sse: string): string | undefined {
  const patterns = PATTERNS[dialect]
  if (patterns === undefined) return undefined
  let content = ''
  for (const match of sse.matchAll(patterns.text)) content += decode(match[1]!)
  let finishReason: string | null = null
  for (const match of sse.matchAll(patterns.finish)) finishReason = match[1]!
  const events = sse.split('\n\n').filter((event) => event.trim() !== '').length
  return JSON.stringify({ stream: true, content, finishReason, events })
}

function decode(literal: string): string {
  try {
    return JSON.parse(literal) as string
  } catch {
    return ''
  }
}
