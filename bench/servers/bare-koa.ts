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
  // Koa pipes a stream body to the response and destroys it once the response closes, after the pipe has
  // let go of it: undici reports that late destroy of an unfinished body as an error event, which with no
  // listener would crash the process whenever a client leaves mid-answer.
  body.on('error', () => {})
  ctx.body = body
})

await listenAndReport(createServer(app.callback()))
