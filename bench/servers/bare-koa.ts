import { createServer } from 'node:http'
import Koa from 'koa'
import type { Dispatcher } from 'undici'
import { requestHeaders, responseHeaders, upstream, upstreamPath } from './bare-proxy.js'
import { listenAndReport } from './shared.js'

const app = new Koa()

app.use(async (ctx, next) => {
  const path = upstreamPath(ctx.url)
  if (path === undefined) return next()
  const { statusCode, headers, body } = await upstream.request({
    method: ctx.method as Dispatcher.HttpMethod,
    path,
    headers: requestHeaders(ctx.headers),
    body: ctx.req,
  })
  ctx.status = statusCode
  ctx.set(responseHeaders(headers))
  // Koa pipes a stream body to the response itself, and destroys it if the client leaves.
  ctx.body = body
})

await listenAndReport(createServer(app.callback()))
