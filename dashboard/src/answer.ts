/**
 * A logged answer made readable. What the record holds: a JSON body as the provider sent it; a stream the
 * gateway could assemble, as `{ "stream": true, "content", "finishReason", "events" }` (the deltas' text
 * joined); or, for dialects it cannot assemble, the stream's raw SSE text, which is put together here as
 * well as can be from the usual delta shapes.
 */

export interface AnswerView {
  readonly kind: 'stream' | 'sse' | 'json' | 'text' | 'none'
  /** The answer's text, when one could be found. */
  readonly text: string | null
  readonly finishReason: string | null
  /** Events in the stream. */
  readonly events: number | null
  /** The body as stored, indented when it is JSON. */
  readonly raw: string | null
}

/**
 * JSON text indented by two spaces, or the text as it is when it is not JSON.
 *
 * @example
 * prettyJson('{"a":1}') // '{\n  "a": 1\n}'
 */
export function prettyJson(text: string | null): string | null {
  if (text === null) return null
  try {
    return JSON.stringify(JSON.parse(text), null, 2)
  } catch {
    return text
  }
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

function texts(values: unknown[], read: (value: Record<string, unknown>) => unknown): string[] {
  return values.flatMap((value) => {
    if (!isObject(value)) return []
    const text = read(value)
    return typeof text === 'string' ? [text] : []
  })
}

/**
 * The assistant's text in a non-streamed answer of the OpenAI, Anthropic or Gemini shape, else null.
 *
 * @example
 * answerText({ choices: [{ message: { content: 'Hi' } }] }) // 'Hi'
 */
export function answerText(body: unknown): string | null {
  if (!isObject(body)) return null
  if (Array.isArray(body.choices)) {
    const found = texts(body.choices, (choice) =>
      isObject(choice.message) ? choice.message.content : choice.text,
    )
    return found.length > 0 ? found.join('\n') : null
  }
  if (Array.isArray(body.content)) {
    const found = texts(body.content, (block) => block.text)
    return found.length > 0 ? found.join('') : null
  }
  if (Array.isArray(body.candidates)) {
    const parts = body.candidates.flatMap((candidate) =>
      isObject(candidate) && isObject(candidate.content) && Array.isArray(candidate.content.parts)
        ? candidate.content.parts
        : [],
    )
    const found = texts(parts, (part) => part.text)
    return found.length > 0 ? found.join('') : null
  }
  if (typeof body.response === 'string') return body.response
  return null
}

// Where the usual stream shapes put a delta's text: OpenAI, Anthropic, Gemini, Workers AI.
function deltaText(event: unknown): string {
  if (!isObject(event)) return ''
  if (Array.isArray(event.choices)) {
    return texts(event.choices, (choice) =>
      isObject(choice.delta) ? choice.delta.content : choice.text,
    ).join('')
  }
  if (isObject(event.delta) && typeof event.delta.text === 'string') return event.delta.text
  if (typeof event.response === 'string') return event.response
  return answerText(event) ?? ''
}

/**
 * Puts raw SSE text back together: the deltas' text joined, and how many `data:` events there were.
 *
 * @example
 * assembleSse('data: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: [DONE]\n\n') // { text: 'Hi', events: 2 }
 */
export function assembleSse(sse: string): { text: string; events: number } {
  let text = ''
  let events = 0
  for (const line of sse.split(/\r?\n/)) {
    if (!line.startsWith('data:')) continue
    events++
    const data = line.slice(5).trim()
    if (data !== '[DONE]') text += deltaText(parse(data))
  }
  return { text, events }
}

/**
 * What the record's `responseBody` says, in the form the detail page shows.
 *
 * @example
 * describeAnswer('{"stream":true,"content":"Hi","finishReason":"stop","events":3}')
 * // { kind: 'stream', text: 'Hi', finishReason: 'stop', events: 3, raw: … }
 */
export function describeAnswer(body: string | null): AnswerView {
  if (body === null || body === '')
    return { kind: 'none', text: null, finishReason: null, events: null, raw: null }
  const json = parse(body)
  if (isObject(json) && json.stream === true && typeof json.content === 'string') {
    return {
      kind: 'stream',
      text: json.content,
      finishReason: typeof json.finishReason === 'string' ? json.finishReason : null,
      events: typeof json.events === 'number' ? json.events : null,
      raw: prettyJson(body),
    }
  }
  if (json !== undefined) {
    return { kind: 'json', text: answerText(json), finishReason: null, events: null, raw: prettyJson(body) }
  }
  if (/^(?:data|event|id|retry):/m.test(body)) {
    const { text, events } = assembleSse(body)
    return { kind: 'sse', text: text === '' ? null : text, finishReason: null, events, raw: body }
  }
  return { kind: 'text', text: null, finishReason: null, events: null, raw: body }
}
