import { createGateway } from 'ai-gateway-middleware'
import { aiGateway } from 'ai-gateway-middleware/fastify'
import Fastify from 'fastify'
import { gatewayOptions, reportListening, reportLogStats } from './shared.js'

// Built here rather than by the plugin only so that its log queue can be read: the options are the same as
// the other mounts', so request logs are on, in the default memory store (the LOGGING table's memory row).
const gateway = createGateway(gatewayOptions())

const app = Fastify()
reportLogStats(gateway, app.server)
await app.register(aiGateway, { prefix: '/ai', gateway })
await app.listen({ host: '127.0.0.1', port: 0 })
reportListening(app.server)
