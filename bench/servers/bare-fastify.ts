import type { IncomingMessage } from 'node:http'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import { requestHeaders, responseHeaders, upstream, upstreamPath } from './bare-proxy.js'
import { reportListening } from './shared.js'

const app = Fastify()

// Hand the request stream over untouched instead of parsing JSON: a proxy only relays the bytes.
app.removeAllContentTypeParsers()
app.addContentTypeParser('*', (_request, payload, done) => done(null, payload))

// The body is the raw request stream, as the parser above left it.
async function proxy(request: FastifyRequest<{ Body: IncomingMessage }>, reply: FastifyReply) {
  const path = upstreamPath(request.url)
  if (path === undefined) return reply.callNotFound()
  const { statusCode, headers, body } = await upstream.request({
    method: request.method as Dispatcher.HttpMethod,
    path,
    headers: requestHeaders(request.headers),
    body: request.body,
  })
  return reply.code(statusCode).headers(responseHeaders(headers)).send(body)
}

app.all('/ai/openai/*', proxy)
await app.listen({ host: '127.0.0.1', port: 0 })
reportListening(app.server)
