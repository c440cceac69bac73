import { Readable } from 'node:stream'
import { totalInputTokens, type Usage } from './cost/cost.js'
import { parseJson, parseJsonTail, parseJsonTailOfBytes } from './json.js'
import { dialectOf } from './providers/dialects/index.js'
import type { UsageReader } from './providers/dialects/types.js'
import type { UpstreamTarget } from './target.js'
import type { GatewayResponse } from './types.js'
import { UpstreamBody } from './upstream/body.js'
import { ChunkList } from './upstream/chunks.js'
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
  const { body } = response
  if (body instanceof UpstreamBody) {
    return new Promise((resolve) => {
      // A stream's body keeps the events that carry usage as it frames them (`keepUsage`); any other body
      // is kept whole here, up to a cap.
      const whole = stream ? undefined : new WholeBody()
      const seen = whole === undefined || body.watchSource((chunk) => whole.push(chunk))
      // Said once, as by every stream: `on` saves `once`'s wrapper and removal.
      body.on('close', () => {
        // Usage read from part of a body would be wrong, not just missing: none is reported then.
        if (!seen) resolve(undefined)
        else if (whole === undefined) resolve(streamUsage(usage, body.usageText()))
        else resolve(jsonUsage(usage, whole.bytes()))
      })
    })
  }
  if (body === null || body instanceof Readable) return Promise.resolve(undefined)
  if (typeof body === 'string')
    return Promise.resolve(stream ? streamUsage(usage, body) : jsonTextUsage(usage, body))
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  return Promise.resolve(stream ? streamUsage(usage, bytes.toString('utf8')) : jsonUsage(usage, bytes))
}

function streamUsage(reader: UsageReader, text: string | undefined): Usage | undefined {
  return text === undefined ? undefined : reader.fromStream(text)
}

/** A body kept whole for its usage, up to `MAX_USAGE_BODY_BYTES`. */
class WholeBody {
  readonly #chunks = new ChunkList()
  #size = 0

  push(chunk: Buffer): void {
    this.#size += chunk.length
    if (this.#size <= MAX_USAGE_BODY_BYTES) this.#chunks.push(chunk)
  }

  /** The body's bytes; `undefined` past the cap. */
  bytes(): Buffer | undefined {
    return this.#size > MAX_USAGE_BODY_BYTES ? undefined : this.#chunks.bytes()
  }
}

/**
 * Usage from a JSON answer's bytes: from the tail of its usage field, decoded alone, when that holds it;
 * else from its text, as `jsonTextUsage` reads it.
 */
function jsonUsage(reader: UsageReader, bytes: Buffer | undefined): Usage | undefined {
  if (bytes === undefined) return undefined
  const field = reader.jsonField
  const tail = field === undefined ? undefined : parseJsonTailOfBytes(bytes, field)
  return (
    (tail === undefined ? undefined : reader.fromJson(tail)) ?? jsonTextUsage(reader, bytes.toString('utf8'))
  )
}

/** Usage from a JSON answer: from its usage field to its end when that holds it, else from the answer whole. */
function jsonTextUsage(reader: UsageReader, text: string): Usage | undefined {
  const tail = reader.jsonField === undefined ? undefined : parseJsonTail(text, reader.jsonField)
  return (tail === undefined ? undefined : reader.fromJson(tail)) ?? reader.fromJson(parseJson(text))
}

/** Every token the provider counted, prompt cache included, once: what a token limit charges. */
export function totalTokens(usage: Usage): number {
  return totalInputTokens(usage) + usage.outputTokens
}
