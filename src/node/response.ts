import type { ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import type { GatewayResponse } from '../types.js'

/**
 * Writes a gateway response to Node's response. Streams are piped with backpressure (a slow client slows
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
    // pipe() rather than pipeline(): the same backpressure, without an AbortController and an end-of-stream
    // watcher per response. The two failure paths are wired by hand.
    res.once('close', () => {
      if (!body.readableEnded) body.destroy()
      resolve()
    })
    body.once('error', () => {
      body.unpipe(res)
      res.destroy()
    })
    body.pipe(res)
  })
}
