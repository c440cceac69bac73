import Fastify from 'fastify'
import { aiGateway } from '../../adapters/fastify.js'
import { type BuildApp, runScenarios } from './scenarios.js'

const buildFastify: BuildApp = async (gateway, host) => {
  const app = Fastify()
  // Fastify parses JSON by default; "absent" takes its parsers away from the whole app.
  if (!host.bodyParser) app.removeAllContentTypeParsers()
  await app.register(aiGateway, { prefix: '/ai', gateway })
  app.setNotFoundHandler((request, reply) => {
    reply.code(200).send(`host:${request.url}`)
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return { url: `http://127.0.0.1:${port}`, close: () => app.close() }
}

runScenarios('fastify 5', buildFastify)
