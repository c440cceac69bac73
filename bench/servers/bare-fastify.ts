import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import { requestHeaders, responseHeaders, upstream, upstreamPath } from './bare-proxy.js'
import { reportListening } from './shared.js'

const app = Fastify()

// Every body as bytes instead of parsed JSON: a proxy only relays them.
app.removeAllContentTypeParsers()
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body))

async function proxy(request: FastifyRequest<{ Body: Buffer | undefined }>, reply: FastifyReply) {
  const path = upstreamPath(request.url)
  if (path === undefined) return reply.callNotFound()
  const { statusCode, headers, body } = await upstream.request({
    method: request.method as Dispatcher.HttpMethod,
    path,
    headers: requestHeaders(request.headers),
    body: request.body ?? null,
  })
  return reply.code(statusCode).headers(responseHeaders(headers)).send(body)
}

app.all('/ai/openai/*', proxy)
await app.listen({ host: '127.0.0.1', port: 0 })
reportListening(app.server)
