import { aiGateway, aiGatewayAdmin } from 'ai-gateway-middleware/koa'
import Koa from 'koa'
import { demoGateway, demoProviders, exitOnListenError, printAdmin, printTryIt } from './demo-providers.js'

const { providers, upstream } = await demoProviders()

const { gateway, keys, adminToken, settings } = demoGateway(providers)
const logs = gateway.logs

const app = new Koa()
app.use(aiGateway(gateway, { prefix: '/ai' }))
app.use(
  aiGatewayAdmin({
    prefix: '/ai-admin',
    logs,
    keys,
    routes: gateway.routes,
    settings,
    metrics: gateway.metrics,
    token: adminToken,
  }),
)
app.use((ctx) => {
  ctx.body = 'Host app. The AI gateway is mounted at /ai, its admin API and dashboard at /ai-admin/.'
})

const port = Number(process.env.PORT ?? 8787)
const server = app.listen(port, '127.0.0.1', () => {
  printTryIt(server.address(), '/ai', upstream)
  printAdmin(server.address(), '/ai-admin', adminToken)
})
server.on('error', (error) => exitOnListenError(error, port, 'koa.ts'))
