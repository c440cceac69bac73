import { aiGateway, aiGatewayAdmin } from 'ai-gateway-middleware/express'
import express from 'express'
import { demoGateway, demoProviders, printAdmin, printTryIt } from './demo-providers.js'

const { providers, upstream } = await demoProviders()

const { gateway, keys, adminToken } = demoGateway(providers)
const logs = gateway.logs

const app = express()
app.get('/', (_req, res) => {
  res.send('Host app. The AI gateway is mounted at /ai, its admin API at /ai-admin.')
})
app.use('/ai', aiGateway(gateway))
app.use('/ai-admin', aiGatewayAdmin({ logs, keys, token: adminToken }))

const server = app.listen(Number(process.env.PORT ?? 8787), '127.0.0.1', () => {
  printTryIt(server.address(), '/ai', upstream)
  printAdmin(server.address(), '/ai-admin', adminToken)
})
