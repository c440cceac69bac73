import { Readable } from 'node:stream'
import type { GatewayResponse } from './types.js'

/** What a tap saw of a response body once it was over. */
export interface TappedBody {
  /** Every byte the client was sent, or `undefined` when the body outgrew the tap's cap. */
  readonly bytes: Buffer | undefined
  /**
   * True when the body was delivered to its end and, for the gateway's own streams, when they judged
   * themselves complete (`response.outcome`): a cut, stalled, oversized or abandoned stream never is.
   */
  readonly complete: boolean
  /** Bytes that went by, kept or not. */
  readonly size: number
  /** What failed the stream, if it failed. */
  readonly error?: Error | undefined
}

/**
 * Watches a response body on its way to the client without changing or delaying it, and calls `done` once
 * with what went by: at once for whole bodies, at the stream's end (or failure) for streams. Several taps
 * may watch one response; none of them holds the stream back, and bytes past `maxBytes` are not kept
 * (`onOverflow`, if given, is called once, as soon as a stream passes them).
 *
 * @example
 * tapBody(ctx.response, 25 * 1024 * 1024, ({ bytes, complete }) => { if (complete) store(bytes) })
 */
export function tapBody(
  response: GatewayResponse,
  maxBytes: number,
  done: (body: TappedBody) => void,
  onOverflow?: () => void,
): void {
  const { body } = response
  if (!(body instanceof Readable)) {
    // A view of the bytes sent, not a copy: a whole body is never written to after it is answered.
    const bytes =
      body === null
        ? Buffer.alloc(0)
        : typeof body === 'string'
          ? Buffer.from(body)
          : Buffer.isBuffer(body)
            ? body
            : Buffer.from(body.buffer, body.byteOffset, body.byteLength)
    done({ bytes: bytes.length > maxBytes ? undefined : bytes, complete: true, size: bytes.length })
    return
  }
  // A stream nobody reads yet must not start flowing because a listener was added: pause it first (the
  // bridge resumes it), so the client misses nothing.
  if (body.readableFlowing === null) body.pause()
  const chunks: Buffer[] = []
  let size = 0
  let overflowed = false
  const onData = (chunk: Buffer | string) => {
    size += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length
    if (overflowed) return
    if (size > maxBytes) {
      overflowed = true
      chunks.length = 0
      onOverflow?.()
      return
    }
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
  }
  let ended = false
  let error: Error | undefined
  // A stream says end, error and close once each: `on` is `once` without a wrapper per listener and its
  // removal when it fires. Nothing comes after close, so the data listener is left on too.
  body.on('data', onData)
  body.on('end', () => {
    ended = true
  })
  body.on('error', (failure) => {
    error = failure
  })
  body.on('close', () => {
    // One chunk (a stream that came in one read) is kept as it is: a copy over 4 KiB is an allocation.
    const bytes = overflowed ? undefined : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size)
    // Streams the gateway carried say how they ended; any other stream is complete when it ended.
    const judged = response.outcome?.()
    const complete = ended && (response.outcome === undefined || judged?.complete === true)
    done({ bytes, complete, size, error: judged?.complete === false ? judged.error : error })
  })
}
