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
  if (res.headersSent || res.destroyed) {
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
