import { isRecord } from '../json.js'
import type { Dialect } from '../providers/types.js'
import { SSEParser } from '../upstream/sse.js'

/**
 * What a streamed answer said, put back together for the log: the text of its deltas joined, the finish
 * reason, and how many events carried it. A log reader wants the answer, not hundreds of framing events;
 * `undefined` when the stream is not one of the chat dialects this knows.
 *
 * @example
 * assembleStream('openai', 'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: [DONE]\n\n')
 * // '{"stream":true,"content":"Hi","finishReason":null,"events":2}'
 */
export function assembleStream(dialect: Dialect, sse: string): string | undefined {
  const read = READERS[dialect]
  if (read === undefined) return undefined
  const parser = new SSEParser()
  let events: { data: string }[]
  try {
    events = [...parser.push(sse), ...parser.end()]
  } catch {
    return undefined
  }
  const answer = { content: '', finishReason: null as string | null }
  for (const event of events) {
    if (event.data === '[DONE]') continue
    try {
      read(JSON.parse(event.data), answer)
    } catch {
      // A malformed event adds nothing; the rest still assembles.
    }
  }
  return JSON.stringify({ stream: true, ...answer, events: events.length })
}

type Answer = { content: string; finishReason: string | null }

const READERS: Partial<Record<Dialect, (event: unknown, answer: Answer) => void>> = {
  openai(event, answer) {
    const choice = isRecord(event) && Array.isArray(event.choices) ? event.choices[0] : undefined
    if (!isRecord(choice)) return
    if (isRecord(choice.delta) && typeof choice.delta.content === 'string')
      answer.content += choice.delta.content
    if (typeof choice.finish_reason === 'string') answer.finishReason = choice.finish_reason
  },
  anthropic(event, answer) {
    if (!isRecord(event)) return
    if (isRecord(event.delta) && typeof event.delta.text === 'string') answer.content += event.delta.text
    if (isRecord(event.delta) && typeof event.delta.stop_reason === 'string')
      answer.finishReason = event.delta.stop_reason
  },
  gemini(event, answer) {
    const candidate = isRecord(event) && Array.isArray(event.candidates) ? event.candidates[0] : undefined
    if (!isRecord(candidate)) return
    const parts =
      isRecord(candidate.content) && Array.isArray(candidate.content.parts) ? candidate.content.parts : []
    for (const part of parts) if (isRecord(part) && typeof part.text === 'string') answer.content += part.text
    if (typeof candidate.finishReason === 'string') answer.finishReason = candidate.finishReason
  },
}
