/**
 * Where a dialect keeps the words of a conversation: what guardrails classify and what DLP redacts in a
 * stream. Each reader takes parsed JSON and never throws on a shape it does not know (it finds no text).
 */
import { isRecord } from '../../json.js'
import { withFields } from '../../objects.js'

export interface DialectText {
  /** The caller's words in a request body: user turns and system instructions, joined by blank lines. */
  prompt(body: unknown): string
  /** The model's words in a whole (unstreamed) answer. */
  answer(json: unknown): string
  /**
   * The answer text one stream event's data carries, or `undefined` when it carries none (or the text of
   * several answers at once: such an event is scanned whole).
   */
  eventText(data: unknown): string | undefined
  /**
   * Which answer an event belongs to (an OpenAI choice's or a Gemini candidate's index; 0 for dialects
   * with one), each answer's text a stream of its own; `undefined` for an event of none or several.
   */
  eventLane(data: unknown): number | undefined
  /**
   * Whether an event ends its answer's text (every answer's, for one of none), so that no finding is read
   * across it: a tool call, a finish, a new content block. Keep-alives, empty deltas and reasoning deltas
   * may come between two pieces of one text, and do not.
   */
  endsText(data: unknown): boolean
  /** The same event's data with its answer text replaced: a copy, the original is left as it was. */
  withEventText(data: unknown, text: string): unknown
}

const records = (value: unknown): Record<string, unknown>[] =>
  Array.isArray(value) ? value.filter(isRecord) : []

/** A content field that is a string, or a list of parts whose text (or `input_text`, `output_text`) counts. */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content
  const texts: string[] = []
  for (const part of records(content)) if (typeof part.text === 'string') texts.push(part.text)
  return texts.join('\n')
}

const joined = (texts: readonly string[]) => texts.filter((text) => text !== '').join('\n\n')

/** The one element of a list that has one; an event with several answers is read as having none. */
const single = (value: unknown): Record<string, unknown> | undefined => {
  const items = records(value)
  return items.length === 1 ? items[0] : undefined
}

const indexOf = (item: Record<string, unknown>) => (typeof item.index === 'number' ? item.index : 0)

const RESPONSES_TEXT_DELTA = 'response.output_text.delta'

/** Chat Completions and the Responses API. */
export const OPENAI_TEXT: DialectText = {
  prompt(body) {
    if (!isRecord(body)) return ''
    const texts: string[] = []
    for (const message of records(body.messages)) {
      if (message.role !== 'assistant' && message.role !== 'tool') texts.push(contentText(message.content))
    }
    if (typeof body.instructions === 'string') texts.push(body.instructions)
    if (typeof body.input === 'string') texts.push(body.input)
    for (const item of records(body.input)) {
      if (item.role !== 'assistant') texts.push(contentText(item.content))
    }
    if (typeof body.prompt === 'string') texts.push(body.prompt)
    return joined(texts)
  },
  answer(json) {
    if (!isRecord(json)) return ''
    const texts = records(json.choices).map((choice) =>
      isRecord(choice.message) ? contentText(choice.message.content) : '',
    )
    for (const item of records(json.output)) texts.push(contentText(item.content))
    return joined(texts)
  },
  eventText(data) {
    if (!isRecord(data)) return undefined
    if (data.type === RESPONSES_TEXT_DELTA) return typeof data.delta === 'string' ? data.delta : undefined
    const delta = single(data.choices)?.delta
    return isRecord(delta) && typeof delta.content === 'string' ? delta.content : undefined
  },
  eventLane(data) {
    if (!isRecord(data)) return undefined
    // The Responses API streams one answer; its parts are parted by their own `done` events.
    if (typeof data.type === 'string') return 0
    const choice = single(data.choices)
    return choice === undefined ? undefined : indexOf(choice)
  },
  endsText(data) {
    if (!isRecord(data)) return true
    if (typeof data.type === 'string') return data.type !== RESPONSES_TEXT_DELTA
    const choice = single(data.choices)
    if (choice === undefined) return true
    const delta = isRecord(choice.delta) ? choice.delta : {}
    return (
      (choice.finish_reason ?? null) !== null ||
      delta.tool_calls !== undefined ||
      delta.function_call !== undefined
    )
  },
  withEventText(data, text) {
    const event = data as Record<string, unknown>
    if (event.type === RESPONSES_TEXT_DELTA) return withFields(event, { delta: text })
    const [choice, ...others] = event.choices as Record<string, unknown>[]
    const delta = withFields(choice!.delta as object, { content: text })
    return withFields(event, { choices: [withFields(choice!, { delta }), ...others] })
  },
}

/** Anthropic's Messages API. */
export const ANTHROPIC_TEXT: DialectText = {
  prompt(body) {
    if (!isRecord(body)) return ''
    const texts = [contentText(body.system)]
    for (const message of records(body.messages)) {
      if (message.role === 'user') texts.push(contentText(message.content))
    }
    return joined(texts)
  },
  answer(json) {
    return isRecord(json) ? contentText(json.content) : ''
  },
  eventText(data) {
    if (!isRecord(data) || data.type !== 'content_block_delta' || !isRecord(data.delta)) return undefined
    return data.delta.type === 'text_delta' && typeof data.delta.text === 'string'
      ? data.delta.text
      : undefined
  },
  eventLane: () => 0,
  endsText(data) {
    if (!isRecord(data)) return true
    // A ping carries nothing; an empty text delta is still the same text.
    const textDelta =
      data.type === 'content_block_delta' && isRecord(data.delta) && data.delta.type === 'text_delta'
    return data.type !== 'ping' && !textDelta
  },
  withEventText(data, text) {
    const event = data as Record<string, unknown>
    return withFields(event, { delta: withFields(event.delta as object, { text }) })
  },
}

const partsText = (content: unknown) => (isRecord(content) ? contentText(content.parts) : '')

/** Gemini's `generateContent`: an event's text is its first candidate's text parts, as one. */
export const GEMINI_TEXT: DialectText = {
  prompt(body) {
    if (!isRecord(body)) return ''
    const texts = [partsText(body.systemInstruction)]
    for (const content of records(body.contents)) if (content.role !== 'model') texts.push(partsText(content))
    return joined(texts)
  },
  answer(json) {
    // `streamGenerateContent` without `alt=sse` answers the stream's chunks as one JSON array.
    const chunks = Array.isArray(json) ? json : [json]
    const texts = new Map<unknown, string>()
    for (const chunk of chunks) {
      if (!isRecord(chunk)) continue
      records(chunk.candidates).forEach((candidate, position) => {
        // A candidate's text runs on from chunk to chunk; candidates stay apart.
        const index = candidate.index ?? position
        texts.set(index, (texts.get(index) ?? '') + partsText(candidate.content))
      })
    }
    return joined([...texts.values()])
  },
  eventText(data) {
    if (!isRecord(data)) return undefined
    const content = single(data.candidates)?.content
    if (!isRecord(content) || !records(content.parts).some((part) => typeof part.text === 'string'))
      return undefined
    return records(content.parts)
      .map((part) => (typeof part.text === 'string' ? part.text : ''))
      .join('')
  },
  eventLane(data) {
    const candidate = isRecord(data) ? single(data.candidates) : undefined
    return candidate === undefined ? undefined : indexOf(candidate)
  },
  endsText(data) {
    const candidate = isRecord(data) ? single(data.candidates) : undefined
    if (candidate === undefined || candidate.finishReason !== undefined) return true
    // A part that is not text (a function call, code) ends the text before it.
    const content = candidate.content
    return isRecord(content) && records(content.parts).some((part) => typeof part.text !== 'string')
  },
  withEventText(data, text) {
    const event = data as Record<string, unknown>
    const [candidate, ...others] = event.candidates as Record<string, unknown>[]
    const content = candidate!.content as Record<string, unknown>
    // The text goes to the first text part; the others keep their place with none, so no word is repeated.
    let placed = false
    const parts = records(content.parts).map((part) => {
      if (typeof part.text !== 'string') return part
      if (placed) return withFields(part, { text: '' })
      placed = true
      return withFields(part, { text })
    })
    const placedContent = withFields(content, { parts })
    return withFields(event, { candidates: [withFields(candidate!, { content: placedContent }), ...others] })
  },
}

/**
 * Ollama's own API (`/api/chat`, `/api/generate`), whose streams are JSON lines: a chat line's text is its
 * `message.content`, a generation's its `response`; the line with `done: true`, or one with tool calls,
 * ends the text.
 */
export const OLLAMA_TEXT: DialectText = {
  prompt(body) {
    if (!isRecord(body)) return ''
    const texts: string[] = []
    for (const message of records(body.messages)) {
      if (message.role !== 'assistant' && message.role !== 'tool') texts.push(contentText(message.content))
    }
    if (typeof body.system === 'string') texts.push(body.system)
    if (typeof body.prompt === 'string') texts.push(body.prompt)
    return joined(texts)
  },
  answer(json) {
    return OLLAMA_TEXT.eventText(json) ?? ''
  },
  eventText(data) {
    if (!isRecord(data)) return undefined
    if (isRecord(data.message)) {
      return typeof data.message.content === 'string' ? data.message.content : undefined
    }
    return typeof data.response === 'string' ? data.response : undefined
  },
  eventLane: (data) => (isRecord(data) ? 0 : undefined),
  endsText(data) {
    if (!isRecord(data) || data.done === true) return true
    return isRecord(data.message) && data.message.tool_calls !== undefined
  },
  withEventText(data, text) {
    const line = data as Record<string, unknown>
    if (isRecord(line.message))
      return withFields(line, { message: withFields(line.message, { content: text }) })
    return withFields(line, { response: text })
  },
}

/** A dialect whose words the gateway does not know where to find. */
export const NO_TEXT: DialectText = {
  prompt: () => '',
  answer: () => '',
  eventText: () => undefined,
  eventLane: () => undefined,
  endsText: () => true,
  withEventText: (data) => data,
}
