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
  /** The answer text one stream event's data carries, or `undefined` when it carries none. */
  eventText(data: unknown): string | undefined
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
    if (data.type === 'response.output_text.delta')
      return typeof data.delta === 'string' ? data.delta : undefined
    const choice = records(data.choices)[0]
    const delta = choice?.delta
    return isRecord(delta) && typeof delta.content === 'string' ? delta.content : undefined
  },
  withEventText(data, text) {
    const event = data as Record<string, unknown>
    if (event.type === 'response.output_text.delta') return withFields(event, { delta: text })
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
    return isRecord(json)
      ? joined(records(json.candidates).map((candidate) => partsText(candidate.content)))
      : ''
  },
  eventText(data) {
    if (!isRecord(data)) return undefined
    const content = records(data.candidates)[0]?.content
    if (!isRecord(content) || !records(content.parts).some((part) => typeof part.text === 'string'))
      return undefined
    return records(content.parts)
      .map((part) => (typeof part.text === 'string' ? part.text : ''))
      .join('')
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

/** A dialect whose words the gateway does not know where to find. */
export const NO_TEXT: DialectText = {
  prompt: () => '',
  answer: () => '',
  eventText: () => undefined,
  withEventText: (data) => data,
}
