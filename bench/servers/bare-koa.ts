import { createServer } from 'node:http'
import Koa from 'koa'
import type { Dispatcher } from 'undici'
import { readBody, requestHeaders, responseHeaders, upstream, upstreamPath } from './bare-proxy.js'
import { listenAndReport } from './shared.js'

const app = new Koa()

app.use(async (ctx, next) => {
  const path = upstreamPath(ctx.url)
  if (path === undefined) return next()
  const { statusCode, headers, body } = await upstream.request({
    method: ctx.method as Dispatcher.HttpMethod,
    path,
    headers: requestHeaders(ctx.headers),
    body: await readBody(ctx.req),
  })
  ctx.status = statusCode
  ctx.set(responseHeaders(headers))
  // Koa also destroys a stream body when the response closes, which can come after its pipe has let go of
  // it; undici reports that destroy of an unfinished body as an error event, and with no listener left the
  // process would crash whenever a client leaves mid-answer.
  body.on('error', () => {})
  ctx.body = body
})

await listenAndReport(createServer(app.callback()))
