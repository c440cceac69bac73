import { Readable, type ReadableOptions } from 'node:stream'
import { GatewayError } from '../errors.js'

/**
 * A body the gateway makes of another stream as it reads it (a translation, a resumption, a guard): what
 * `chunks` yields from reading `source`, as a stream, its life tied to the source's (see `readsFrom`).
 *
 * @example
 * const body = wrappedBody(translateEvents(response.body, translator), response.body)
 */
export function wrappedBody(
  chunks: AsyncIterable<string | Buffer>,
  source: Readable,
  options?: ReadableOptions,
): Readable {
  const body = Readable.from(chunks, options)
  readsFrom(body, source)
  return body
}

/**
 * Ties `body` to `source`, a stream it is read from (a wrapper that reads several in turn ties each):
 * - A source that gave up on its reader (`CLIENT_CLOSED`: the client read nothing for `writeStallMs`, or
 *   left) fails `body` at once, with the same error. The wrapper's generator is parked at a `yield` while
 *   the client reads nothing, so it would never pull again to see the error: the client's connection would
 *   stay open, the request unended. Any other failure of the source is the wrapper's to end its stream
 *   with, in its turn (a terminal event, a resumption).
 * - `body` closing (ended, failed, or left by the client) stops `source`, which cancels its upstream call
 *   even while the wrapper is still waiting on it.
 */
export function readsFrom(body: Readable, source: Readable): void {
  source.on('error', (error) => {
    if (!(error instanceof GatewayError) || error.key !== 'CLIENT_CLOSED') return
    // A body nobody reads yet (its client left before the answer was handed over) is closed all the same,
    // but without an error no one would hear: that would crash the host.
    if (body.listenerCount('error') > 0) body.destroy(error)
    else body.destroy()
  })
  body.on('close', () => source.destroy())
}
