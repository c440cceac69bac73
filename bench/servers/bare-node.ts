import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Dispatcher } from 'undici'
import { readBody, relay, requestHeaders, responseHeaders, upstream, upstreamPath } from './bare-proxy.js'
import { listenAndReport } from './shared.js'

// The floor: the least work a Node proxy can do to relay the request and stream the answer back.

async function proxy(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = upstreamPath(req.url ?? '/')
  if (path === undefined) {
    res.writeHead(404).end()
    return
  }
  const { statusCode, headers, body } = await upstream.request({
    method: req.method as Dispatcher.HttpMethod,
    path,
    headers: requestHeaders(req.headers),
    body: await readBody(req),
  })
  res.writeHead(statusCode, responseHeaders(headers))
  relay(body, res)
}

function answerFailure(res: ServerResponse): void {
  if (!res.headersSent) res.writeHead(502)
  res.end()
}

await listenAndReport(createServer((req, res) => proxy(req, res).catch(() => answerFailure(res))))
