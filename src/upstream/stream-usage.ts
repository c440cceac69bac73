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
  if (options?.include_usage === true) return target
  const body =
    json.stream_options === undefined
      ? withFieldAppended(target.body!, STREAM_OPTIONS_FIELD)
      : Buffer.from(JSON.stringify({ ...json, stream_options: { ...options, include_usage: true } }))
  const headers = { ...target.headers }
  if (headers['content-length'] !== undefined) headers['content-length'] = String(body.length)
  return { ...target, body, headers, hidesStreamUsage: true }
}

const USAGE_NULL = Buffer.from('"usage":null')
const COMMA = 0x2c
const USAGE_ONLY_CHUNK = Buffer.from('"choices":[],"usage":{')
const EVENT_END_BYTES = Buffer.from(EVENT_END)

/**
 * The client's view of whole events from a stream the gateway asked usage for: without the final
 * usage-only chunk and without the `"usage":null` every other chunk then carries (with the comma that
 * joined it to its neighbour). Inside JSON strings quotes are escaped, so the literal can only be that
 * field. It works on the bytes as they came (native searches, no decoding), one pass over a batch of
 * events; the usage-only chunk (one per stream, near its end) is cut out where it stands.
 */
export function withoutUsage(events: Buffer): Buffer {
  const out = withoutUsageNull(events)
  const usage = out.indexOf(USAGE_ONLY_CHUNK)
  if (usage === -1) return out
  const start = out.lastIndexOf(EVENT_END_BYTES, usage)
  const end = out.indexOf(EVENT_END_BYTES, usage)
  const from = start === -1 ? 0 : start + EVENT_END.length
  return end === -1
    ? out.subarray(0, from)
    : Buffer.concat([out.subarray(0, from), out.subarray(end + EVENT_END.length)])
}

/** Every `,"usage":null` (or `"usage":null,` when the field came first) taken out; the same buffer when none. */
function withoutUsageNull(bytes: Buffer): Buffer {
  let at = bytes.indexOf(USAGE_NULL)
  if (at === -1) return bytes
  const parts: Buffer[] = []
  let from = 0
  while (at !== -1) {
    const end = at + USAGE_NULL.length
    if (at > 0 && bytes[at - 1] === COMMA) {
      parts.push(bytes.subarray(from, at - 1))
      from = end
    } else if (bytes[end] === COMMA) {
      parts.push(bytes.subarray(from, at))
      from = end + 1
    }
    at = bytes.indexOf(USAGE_NULL, end)
  }
  parts.push(bytes.subarray(from))
  return Buffer.concat(parts)
}
