import { createServer } from 'node:http'
import express, { type NextFunction, type Request, type Response } from 'express'
import type { Dispatcher } from 'undici'
import { relay, requestHeaders, responseHeaders, upstream, upstreamPath } from './bare-proxy.js'
import { listenAndReport } from './shared.js'

async function proxy(req: Request, res: Response, next: NextFunction): Promise<void> {
  const path = upstreamPath(req.originalUrl)
  if (path === undefined) return next()
  const { statusCode, headers, body } = await upstream.request({
    method: req.method as Dispatcher.HttpMethod,
    path,
    headers: requestHeaders(req.headers),
    body: Buffer.isBuffer(req.body) ? req.body : null,
  })
  res.writeHead(statusCode, responseHeaders(headers))
  relay(body, res)
}

const app = express()
// The body as bytes, whatever its type: a proxy relays it without parsing.
app.use('/ai/openai', express.raw({ type: () => true }), proxy)
await listenAndReport(createServer(app))
