import { type Readable, Transform } from 'node:stream'
import { isRecord, jsonBody } from '../json.js'
import type { UpstreamTarget } from './call.js'

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
export function askForStreamUsage(target: UpstreamTarget): UpstreamTarget {
  if (!target.provider.spec.streamUsageOnRequest || target.translation !== undefined) return target
  if (target.method !== 'POST' || !target.path.split('?', 1)[0]!.endsWith('/chat/completions')) return target
  const json = jsonBody(target.body)
  if (!isRecord(json) || json.stream !== true) return target
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

/**
 * The client's view of a stream the gateway asked usage for: without the final usage-only chunk and
 * without the `"usage":null` every other chunk then carries. Inside JSON strings quotes are escaped, so the
 * literal `,"usage":null` can only be that field. Destroying either side destroys the other.
 */
export function hideStreamUsage(source: Readable): Readable {
  let pending = ''
  const strip = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      pending += chunk.toString('utf8')
      const end = pending.lastIndexOf(EVENT_END)
      if (end === -1) return done()
      const complete = pending.slice(0, end + EVENT_END.length)
      pending = pending.slice(end + EVENT_END.length)
      done(null, withoutUsage(complete))
    },
    flush(done) {
      done(null, pending === '' ? undefined : withoutUsage(pending))
    },
  })
  // pipe() with the two failure paths wired by hand: pipeline() would cost an AbortController and an
  // end-of-stream watcher per response, which on Node 20 is most of this transform's price.
  source.pipe(strip)
  source.once('error', (error) => strip.destroy(error))
  strip.once('close', () => {
    // The client left, or the stream failed: stop reading, which cancels the upstream call.
    if (!source.readableEnded) source.destroy()
  })
  return strip
}

const USAGE_NULL = ',"usage":null'
const USAGE_ONLY_CHUNK = '"choices":[],"usage":{'

/**
 * One pass over whole events rather than one per event: the `"usage":null` fields go by a native
 * `replaceAll`, and the usage-only chunk (one per stream, near its end) is cut out where it stands.
 */
function withoutUsage(events: string): string {
  let out = events.includes(USAGE_NULL) ? events.replaceAll(USAGE_NULL, '') : events
  if (out.includes('"usage":null,')) out = out.replaceAll('"usage":null,', '')
  const usage = out.indexOf(USAGE_ONLY_CHUNK)
  if (usage === -1) return out
  const start = out.lastIndexOf(EVENT_END, usage)
  const end = out.indexOf(EVENT_END, usage)
  const from = start === -1 ? 0 : start + EVENT_END.length
  return out.slice(0, from) + (end === -1 ? '' : out.slice(end + EVENT_END.length))
}
