import type { ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import { GatewayError } from '../errors.js'
import { terminalEvent } from '../providers/dialects/terminal.js'
import type { GatewayResponse } from '../types.js'

/**
 * Writes a gateway response to Node's response. Streams are piped with backpressure (a slow client slows
 * the provider instead of filling memory) and each chunk goes out as it comes; when the client leaves, the
 * pipe destroys the source, which cancels the upstream call. Resolves when the response is done either way.
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
      // The client left (or the response is done): stop reading, which cancels the upstream call.
      if (!body.readableEnded) body.destroy()
      resolve()
    })
    body.once('error', (error) => {
      // The source failed mid-stream. End with the dialect's terminal error event when there is one, else
      // cut the response off without its terminator: either way it cannot look complete.
      body.unpipe(res)
      const tail = response.onStreamError?.(error)
      if (tail === undefined || res.destroyed) res.destroy()
      else res.end(tail)
    })
    const { expectedEnd } = response
    if (expectedEnd === undefined) {
      body.pipe(res)
      return
    }
    body.pipe(res, { end: false })
    body.once('end', () => {
      if (res.destroyed) return
      if (response.endSeen) res.end()
      else res.end(terminalEvent(expectedEnd.dialect, incompleteStream()))
    })
  })
}

function incompleteStream(): GatewayError {
  return new GatewayError('UPSTREAM_INTERRUPTED', 'the stream ended before its last event')
}
