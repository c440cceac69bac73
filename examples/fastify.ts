import { aiGateway, aiGatewayAdmin } from 'ai-gateway-middleware/fastify'
import Fastify from 'fastify'
import { demoGateway, demoProviders, exitOnListenError, printAdmin, printTryIt } from './demo-providers.js'

const { providers, upstream } = await demoProviders()

const { gateway, keys, adminToken, settings } = demoGateway(providers)
const logs = gateway.logs

const app = Fastify()
app.get(
  '/',
  async () => 'Host app. The AI gateway is mounted at /ai, its admin API and dashboard at /ai-admin/.',
)
await app.register(aiGateway, { prefix: '/ai', gateway })
await app.register(aiGatewayAdmin, {
  prefix: '/ai-admin',
  logs,
  keys,
  routes: gateway.routes,
  settings,
  metrics: gateway.metrics,
  token: adminToken,
})

const port = Number(process.env.PORT ?? 8787)
await app
  .listen({ port, host: '127.0.0.1' })
  .catch((error: NodeJS.ErrnoException) => exitOnListenError(error, port, 'fastify.ts'))
printTryIt(app.server.address(), '/ai', upstream)
printAdmin(app.server.address(), '/ai-admin', adminToken)
