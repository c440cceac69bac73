import type { ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import type { GatewayResponse } from '../types.js'

/**
 * Writes a gateway response to Node's response. Streams are forwarded with backpressure (a slow client slows
 * the provider instead of filling memory) and each chunk goes out as it comes. How a stream ends is the
 * stream's business (`UpstreamBody`): one that fails cuts the connection here, so that an answer cut short
 * never looks complete; a client that leaves destroys the stream, which cancels the upstream call.
 * Resolves when the response is done either way.
 */
export function writeNodeResponse(res: ServerResponse, response: GatewayResponse): Promise<void> {
  const { body } = response
  if (res.headersSent || isGone(res)) {
    if (body instanceof Readable) body.destroy()
    return Promise.resolve()
  }
  if (!(body instanceof Readable)) {
    if (body !== null && response.headers['content-length'] === undefined) {
      response.headers['content-length'] = String(Buffer.byteLength(body))
    }
    res.writeHead(response.status, response.headers)
    res.end(body ?? undefined)
    return Promise.resolve()
  }
  res.writeHead(response.status, response.headers)
  return new Promise((resolve) => {
    // Forwarded by hand rather than with pipe() (or pipeline(), which adds an AbortController and an
    // end-of-stream watcher): the same backpressure, without the listeners pipe() puts on both streams and
    // takes off again at the end of every stream. Each event below comes once, so `on` rather than `once`.
    body.on('data', (chunk: Buffer | string) => {
      if (!res.write(chunk)) body.pause()
    })
    res.on('drain', () => body.resume())
    body.on('end', () => res.end())
    // A stream that fails cuts the connection: an answer cut short must never look complete.
    body.on('error', () => res.destroy())
    res.on('close', () => {
      if (!body.readableEnded) body.destroy()
      resolve()
    })
    // A watcher (the log's tap) may have paused a stream nobody read yet: the client's reading starts it.
    body.resume()
  })
}

/**
 * Whether the response can no longer be written: Node's `destroyed`, or, on HTTP/2's compatibility API
 * (whose response has no `destroyed` on Node 20), its stream's. Such a response says `close` once, when
 * its stream closes, so one that is gone before anything listens will never say it again.
 */
export function isGone(res: ServerResponse): boolean {
  return res.destroyed ?? (res as { stream?: { destroyed?: boolean } }).stream?.destroyed === true
}

/**
 * Whether the response was written to its end, rather than cut short by the client leaving. HTTP/2's
 * compatibility API takes `writableFinished` from its stream, which says finished for a stream the
 * client reset too; there the response's own end (`writableEnded`, set by `end()`) tells.
 */
export function isWrittenWhole(res: ServerResponse): boolean {
  return (res as { stream?: unknown }).stream === undefined ? res.writableFinished : res.writableEnded
}
