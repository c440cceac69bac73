import { aiGateway, aiGatewayAdmin } from 'ai-gateway-middleware/express'
import express from 'express'
import { demoGateway, demoProviders, exitOnListenError, printAdmin, printTryIt } from './demo-providers.js'

const { providers, upstream } = await demoProviders()

const { gateway, keys, adminToken, settings } = demoGateway(providers)
const logs = gateway.logs
const { routes } = gateway

const app = express()
app.get('/', (_req, res) => {
  res.send('Host app. The AI gateway is mounted at /ai, its admin API and dashboard at /ai-admin/.')
})
app.use('/ai', aiGateway(gateway))
// Records reach the log store in batches, up to a second apart; writing them out before each admin call
// lets the log you read back hold the request you just made. A production host leaves that to the batches.
app.use('/ai-admin', (_req, _res, next) => {
  gateway.flushLogs().then(() => next(), next)
})
// The admin serves its dashboard at /ai-admin/ too. An empty GATEWAY_ADMIN_TOKEN serves both without a
// token; printAdmin warns about it.
const stores = { logs, keys, routes, settings, metrics: gateway.metrics }
app.use('/ai-admin', aiGatewayAdmin(adminToken ? { ...stores, token: adminToken } : stores))

const port = Number(process.env.PORT ?? 8787)
const server = app.listen(port, '127.0.0.1', (error) => {
  if (error) exitOnListenError(error, port)
  printTryIt(server.address(), '/ai', upstream, { cache: true })
  printAdmin(server.address(), '/ai-admin', adminToken)
})
