import { pipeline, type Readable, Transform } from 'node:stream'
import { isRecord } from '../json.js'
import type { UpstreamTarget } from './call.js'

const EVENT_END = '\n\n'

/**
 * An OpenAI-dialect streamed chat completion carries usage only when the client asked for it
 * (`stream_options.include_usage`). To cost and count every stream, the gateway asks for it anyway, and
 * `hideStreamUsage` then takes out of the client's stream exactly what that option added. Other targets
 * come back unchanged.
 */
export function askForStreamUsage(target: UpstreamTarget): UpstreamTarget {
  if (target.provider.spec.dialect !== 'openai' || target.translation !== undefined) return target
  if (target.method !== 'POST' || !target.path.split('?', 1)[0]!.endsWith('/chat/completions')) return target
  if (target.body === undefined || target.body[0] !== 0x7b) return target
  let json: unknown
  try {
    json = JSON.parse(target.body.toString('utf8'))
  } catch {
    return target
  }
  if (!isRecord(json) || json.stream !== true) return target
  const options = isRecord(json.stream_options) ? json.stream_options : {}
  if (options.include_usage === true) return target
  const body = Buffer.from(JSON.stringify({ ...json, stream_options: { ...options, include_usage: true } }))
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
  return pipeline(source, strip, () => {})
}

function withoutUsage(events: string): string {
  let out = ''
  for (const event of events.split(EVENT_END)) {
    if (event === '') continue
    if (event.includes('"choices":[]') && event.includes('"usage":{')) continue
    out += `${event.replaceAll(',"usage":null', '').replaceAll('"usage":null,', '')}${EVENT_END}`
  }
  return out
}
