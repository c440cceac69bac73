import { Readable } from 'node:stream'
import { totalInputTokens, type Usage } from './cost/cost.js'
import { parseJson, parseJsonTail } from './json.js'
import { dialectOf } from './providers/dialects/index.js'
import type { UsageReader } from './providers/dialects/types.js'
import type { UpstreamTarget } from './target.js'
import type { GatewayResponse } from './types.js'
import { UpstreamBody } from './upstream/body.js'
import { isEventStream } from './upstream/headers.js'

/** Largest provider answer read back for the usage it reports. */
const MAX_USAGE_BODY_BYTES = 32 * 1024 * 1024

/**
 * Reads the usage a provider's answer reports, from the provider's own bytes (before any translation or
 * hiding), so translated streams are counted even when the client asked for no usage. Resolves
 * `undefined` when the answer carries none; a cut stream is read as far as it came.
 */
export function watchUsage(target: UpstreamTarget, response: GatewayResponse): Promise<Usage | undefined> {
  const { usage } = dialectOf(target.provider.spec.dialect)
  const stream = isEventStream(response.headers['content-type'])
  const read = (text: string) => (stream ? usage.fromStream(text) : jsonUsage(usage, text))
  const { body } = response
  if (body instanceof UpstreamBody) {
    return new Promise((resolve) => {
      const kept = stream ? new UsageEvents() : new WholeBody()
      const whole = body.watchSource((chunk) => kept.push(chunk))
      body.once('close', () => {
        // Usage read from part of a stream would be wrong, not just missing: none is reported then.
        const text = whole ? kept.text() : undefined
        resolve(text === undefined ? undefined : read(text))
      })
    })
  }
  if (body === null || body instanceof Readable) return Promise.resolve(undefined)
  const text =
    typeof body === 'string'
      ? body
      : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8')
  return Promise.resolve(read(text))
}

/** A body kept whole for its usage, up to `MAX_USAGE_BODY_BYTES`. */
class WholeBody {
  readonly #chunks: Buffer[] = []
  #size = 0

  push(chunk: Buffer): void {
    this.#size += chunk.length
    if (this.#size <= MAX_USAGE_BODY_BYTES) this.#chunks.push(chunk)
  }

  /** The body as text; `undefined` past the cap. */
  text(): string | undefined {
    return this.#size > MAX_USAGE_BODY_BYTES ? undefined : Buffer.concat(this.#chunks).toString('utf8')
  }
}

const EVENT_END = Buffer.from('\n\n')
const USAGE_KEY = Buffer.from('"usage')
const METADATA = Buffer.from('Metadata"')

/**
 * What an event stream's usage is read from, kept as the stream passes: the first and the last batch of
 * whole events that carry a usage object, and what follows the last blank line. That is all any dialect's
 * reader needs (Anthropic: `message_start` and the last `message_delta`; OpenAI: its one usage chunk;
 * Gemini: running totals, the last of which counts), so a long stream is not held twice (the log keeps
 * the client's copy) for the few bytes its usage is.
 */
export class UsageEvents {
  #first: Buffer | undefined
  #last: Buffer | undefined
  #tail: Buffer[] = []
  #tailSize = 0
  // A stream with no blank line in this many bytes (one without events, or CRLF-framed) is not kept.
  #overflowed = false

  push(chunk: Buffer): void {
    if (this.#overflowed) return
    const end = chunk.lastIndexOf(EVENT_END)
    // A blank line split between the last piece and this one ends an event too.
    const cut =
      end !== -1 ? end + EVENT_END.length : chunk[0] === 0x0a && this.#tail.at(-1)?.at(-1) === 0x0a ? 1 : -1
    if (cut === -1) {
      this.#tail.push(chunk)
      this.#tailSize += chunk.length
      if (this.#tailSize > MAX_USAGE_BODY_BYTES) {
        this.#overflowed = true
        this.#tail = []
      }
      return
    }
    const events =
      this.#tail.length === 0
        ? chunk.subarray(0, cut)
        : Buffer.concat([...this.#tail, chunk.subarray(0, cut)])
    this.#tail = cut < chunk.length ? [chunk.subarray(cut)] : []
    this.#tailSize = chunk.length - cut
    if (!carriesUsage(events)) return
    if (this.#first === undefined) this.#first = events
    else this.#last = events
  }

  /** The kept events as text; `undefined` when what had to be kept passed the cap. */
  text(): string | undefined {
    if (this.#overflowed) return undefined
    const kept = [this.#first, this.#last, ...this.#tail].filter((part) => part !== undefined)
    const size = kept.reduce((total, part) => total + part.length, 0)
    return size > MAX_USAGE_BODY_BYTES ? undefined : Buffer.concat(kept, size).toString('utf8')
  }
}

/**
 * Whether events carry a usage object: `"usage"` or `"usageMetadata"`, then `:` and `{` (white space
 * allowed). OpenAI's `"usage":null` on every chunk of a stream asked for usage does not count.
 */
function carriesUsage(events: Buffer): boolean {
  for (let at = events.indexOf(USAGE_KEY); at !== -1; at = events.indexOf(USAGE_KEY, at + 1)) {
    let next = at + USAGE_KEY.length
    if (events[next] === 0x22) next++
    else if (events.compare(METADATA, 0, METADATA.length, next, next + METADATA.length) === 0)
      next += METADATA.length
    else continue
    while (events[next] === 0x20) next++
    if (events[next] !== 0x3a) continue
    next++
    while (events[next] === 0x20) next++
    if (events[next] === 0x7b) return true
  }
  return false
}

/** Usage from a JSON answer: from its usage field to its end when that holds it, else from the answer whole. */
function jsonUsage(reader: UsageReader, text: string): Usage | undefined {
  const tail = reader.jsonField === undefined ? undefined : parseJsonTail(text, reader.jsonField)
  return (tail === undefined ? undefined : reader.fromJson(tail)) ?? reader.fromJson(parseJson(text))
}

/** Every token the provider counted, prompt cache included, once: what a token limit charges. */
export function totalTokens(usage: Usage): number {
  return totalInputTokens(usage) + usage.outputTokens
}
