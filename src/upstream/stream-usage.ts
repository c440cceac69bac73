import { isRecord } from '../json.js'
import { withFields } from '../objects.js'
import type { UpstreamTarget } from '../target.js'
import { splitQuery } from '../url.js'

const EVENT_END = '\n\n'
const STREAM_OPTIONS_FIELD = Buffer.from(',"stream_options":{"include_usage":true}')

/**
 * The client's bytes with one more field before the object's closing brace: what it sent stays as it
 * sent it, and the body is not parsed and written out again.
 */
function withFieldAppended(body: Buffer, field: Buffer): Buffer {
  const end = body.lastIndexOf(0x7d)
  return Buffer.concat([body.subarray(0, end), field, body.subarray(end)])
}

/**
 * An OpenAI-dialect streamed chat completion carries usage only when the client asked for it
 * (`stream_options.include_usage`). To cost and count every stream, the gateway asks for it anyway, and
 * `hideStreamUsage` then takes out of the client's stream exactly what that option added. Other targets
 * come back unchanged.
 */
export function askForStreamUsage(target: UpstreamTarget, json: unknown): UpstreamTarget {
  // Cheapest first: most requests are not streams, and end here.
  if (!isRecord(json) || json.stream !== true) return target
  if (!target.provider.spec.streamUsageOnRequest || target.translation !== undefined) return target
  if (target.method !== 'POST' || !splitQuery(target.path).path.endsWith('/chat/completions')) return target
  const options = isRecord(json.stream_options) ? json.stream_options : undefined
  if (options?.include_usage === true) return withFields(target, { streamUsage: 'asked' as const })
  const body =
    json.stream_options === undefined
      ? withFieldAppended(target.body!, STREAM_OPTIONS_FIELD)
      : Buffer.from(JSON.stringify({ ...json, stream_options: { ...options, include_usage: true } }))
  const headers = { ...target.headers }
  if (headers['content-length'] !== undefined) headers['content-length'] = String(body.length)
  return withFields(target, { body, headers, streamUsage: 'hidden' as const })
}

const USAGE_KEY = '"usage":'
const COMMA = 0x2c
const EMPTY_CHOICES = '"choices":[],'

/**
 * The client's view of whole events from a stream the gateway asked usage for: without the final
 * usage-only chunk and without the `"usage":null` every other chunk then carries (with the comma that
 * joined it to its neighbour). Inside JSON strings quotes are escaped, so the literal can only be that
 * field. `text` is the bytes as a latin1 string (`UpstreamBody` makes it once per batch of events, for
 * all its searches), so its offsets are the bytes'; the usage-only chunk (one per stream, near its end) is
 * cut out whole.
 */
export function withoutUsage(events: Buffer, text: string = events.toString('latin1')): Buffer {
  let at = text.indexOf(USAGE_KEY)
  if (at === -1) return events
  // The kept parts are cut from the text and turned back into bytes once: slices of a string are cheap
  // where each Buffer view and concatenation is a native call.
  let out = ''
  let from = 0
  while (at !== -1) {
    const value = at + USAGE_KEY.length
    let next = value
    if (text.startsWith('null', value)) {
      next = value + 4
      if (at > 0 && text.charCodeAt(at - 1) === COMMA) {
        out += text.slice(from, at - 1)
        from = next
      } else if (text.charCodeAt(next) === COMMA) {
        out += text.slice(from, at)
        from = ++next
      }
    } else if (text.charCodeAt(value) === 0x7b && text.endsWith(EMPTY_CHOICES, at)) {
      const start = text.lastIndexOf(EVENT_END, at)
      const end = text.indexOf(EVENT_END, at)
      out += text.slice(from, Math.max(from, start === -1 ? 0 : start + EVENT_END.length))
      from = next = end === -1 ? text.length : end + EVENT_END.length
    }
    at = text.indexOf(USAGE_KEY, next)
  }
  if (from === 0) return events
  return Buffer.from(out + text.slice(from), 'latin1')
}

/**
 * Whether events carry a usage object: `"usage"` or `"usageMetadata"`, then `:` and `{` (spaces allowed).
 * OpenAI's `"usage":null` on every chunk of a stream asked for usage does not count.
 */
const USAGE_OBJECT = /"usage(?:Metadata)?" *: *\{/

/**
 * What an event stream's usage is read from, kept as the stream passes: the first and the last batch of
 * whole events that carry a usage object. That is all any dialect's reader needs (Anthropic:
 * `message_start` and the last `message_delta`; OpenAI: its one usage chunk; Gemini: running totals, the
 * last of which counts), so a long stream is not held twice (the log keeps the client's copy) for the few
 * bytes its usage is. `UpstreamBody` feeds it the batches it frames anyway, with their latin1 text.
 */
export class UsageEvents {
  #first: Buffer | undefined
  #last: Buffer | undefined

  push(events: Buffer, text: string = events.toString('latin1')): void {
    if (!USAGE_OBJECT.test(text)) return
    if (this.#first === undefined) this.#first = events
    else this.#last = events
  }

  /** The kept events as text. */
  text(): string {
    const kept = [this.#first, this.#last].filter((part) => part !== undefined)
    return Buffer.concat(kept).toString('utf8')
  }
}
