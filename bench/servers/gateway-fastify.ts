import { aiGateway } from 'ai-gateway-middleware/fastify'
import Fastify from 'fastify'
import { gatewayOptions, reportListening } from './shared.js'

const app = Fastify()
await app.register(aiGateway, { prefix: '/ai', ...gatewayOptions() })
await app.listen({ host: '127.0.0.1', port: 0 })
reportListening(app.server)
