import { isRecord } from '../json.js'
import type { UpstreamTarget } from '../target.js'

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
  if (target.method !== 'POST' || !target.path.split('?', 1)[0]!.endsWith('/chat/completions')) return target
  const options = isRecord(json.stream_options) ? json.stream_options : undefined
  if (options?.include_usage === true) return { ...target, streamUsage: 'asked' }
  const body =
    json.stream_options === undefined
      ? withFieldAppended(target.body!, STREAM_OPTIONS_FIELD)
      : Buffer.from(JSON.stringify({ ...json, stream_options: { ...options, include_usage: true } }))
  const headers = { ...target.headers }
  if (headers['content-length'] !== undefined) headers['content-length'] = String(body.length)
  return { ...target, body, headers, streamUsage: 'hidden' }
}

const USAGE_KEY = Buffer.from('"usage":')
const COMMA = 0x2c
const EMPTY_CHOICES = Buffer.from('"choices":[],')
const EVENT_END_BYTES = Buffer.from(EVENT_END)

/**
 * The client's view of whole events from a stream the gateway asked usage for: without the final
 * usage-only chunk and without the `"usage":null` every other chunk then carries (with the comma that
 * joined it to its neighbour). Inside JSON strings quotes are escaped, so the literal can only be that
 * field. It works on the bytes as they came: one native search per `"usage":` in a batch of events, each
 * then told apart by what follows it; the usage-only chunk (one per stream, near its end) is cut out whole.
 */
export function withoutUsage(events: Buffer): Buffer {
  let at = events.indexOf(USAGE_KEY)
  if (at === -1) return events
  const parts: Buffer[] = []
  let from = 0
  while (at !== -1) {
    const value = at + USAGE_KEY.length
    let next = value
    if (isNull(events, value)) {
      next = value + 4
      if (at > 0 && events[at - 1] === COMMA) {
        parts.push(events.subarray(from, at - 1))
        from = next
      } else if (events[next] === COMMA) {
        parts.push(events.subarray(from, at))
        from = ++next
      }
    } else if (events[value] === 0x7b && endsWith(events, at, EMPTY_CHOICES)) {
      const start = events.lastIndexOf(EVENT_END_BYTES, at)
      const end = events.indexOf(EVENT_END_BYTES, at)
      parts.push(events.subarray(from, Math.max(from, start === -1 ? 0 : start + EVENT_END.length)))
      from = next = end === -1 ? events.length : end + EVENT_END.length
    }
    at = events.indexOf(USAGE_KEY, next)
  }
  if (from === 0) return events
  parts.push(events.subarray(from))
  return Buffer.concat(parts)
}

function isNull(bytes: Buffer, at: number): boolean {
  return bytes[at] === 0x6e && bytes[at + 1] === 0x75 && bytes[at + 2] === 0x6c && bytes[at + 3] === 0x6c
}

/** Whether the bytes just before `end` are `suffix`. */
function endsWith(bytes: Buffer, end: number, suffix: Buffer): boolean {
  return end >= suffix.length && bytes.compare(suffix, 0, suffix.length, end - suffix.length, end) === 0
}
