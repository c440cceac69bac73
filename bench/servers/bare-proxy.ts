import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import { type Dispatcher, Pool } from 'undici'
import { upstreamUrl } from './shared.js'

// What the bare proxies share: one keep-alive pool to the upstream, the path mapping and the few headers they
// pass on. None of it is policy; it is the least a proxy must do to deliver the same answer as the gateway.

const MOUNT = '/ai/openai/'
const UPSTREAM_BASE = '/v1/'

type UpstreamHeaders = Dispatcher.ResponseData['headers']

export const upstream = new Pool(upstreamUrl())

/** `/ai/openai/chat/completions?x` → `/v1/chat/completions?x`; `undefined` outside the mount. */
export function upstreamPath(url: string): string | undefined {
  return url.startsWith(MOUNT) ? UPSTREAM_BASE + url.slice(MOUNT.length) : undefined
}

/** Content type and credential: all the provider needs besides the body. */
export function requestHeaders(incoming: IncomingHttpHeaders): Record<string, string> {
  const headers: Record<string, string> = {}
  if (incoming['content-type'] !== undefined) headers['content-type'] = incoming['content-type']
  if (incoming.authorization !== undefined) headers.authorization = incoming.authorization
  return headers
}

/** Content type, plus the length when the upstream sent one, so the client sees the same framing. */
export function responseHeaders(upstreamHeaders: UpstreamHeaders): Record<string, string> {
  const headers: Record<string, string> = {}
  const contentType = upstreamHeaders['content-type']
  const contentLength = upstreamHeaders['content-length']
  if (typeof contentType === 'string') headers['content-type'] = contentType
  if (typeof contentLength === 'string') headers['content-length'] = contentLength
  return headers
}

/**
 * Reads the whole request body. Bodies are small JSON documents, and undici sends a buffer in one write with
 * its length; handing it the request stream instead costs a third of the throughput or more.
 */
export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

/**
 * Streams the upstream body to the client with `pipe` (backpressure included) and cancels the upstream
 * when the client leaves: what a careful hand-written proxy does, and cheaper than `stream.pipeline`.
 */
export function relay(body: Readable, res: ServerResponse): void {
  res.once('close', () => {
    if (!body.readableEnded) body.destroy()
  })
  body.once('error', () => res.destroy())
  body.pipe(res)
}
