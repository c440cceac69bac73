import { randomBytes } from 'node:crypto'
import { createGateway, createKeyRing, createMemorySecretStore } from 'ai-gateway-middleware'
import { aiGateway, aiGatewayAdmin } from 'ai-gateway-middleware/koa'
import Koa from 'koa'
import { demoProviders, printTryIt } from './demo-providers.js'

const { providers, upstream } = await demoProviders()

// The admin API serves request logs and stored provider keys; the keys are encrypted under the master key.
const masterKey = process.env.GATEWAY_MASTER_KEY ?? randomBytes(32)
const adminToken = process.env.GATEWAY_ADMIN_TOKEN ?? randomBytes(24).toString('base64url')
const keys = createKeyRing({ store: createMemorySecretStore(), masterKey })
// Every request is logged to the gateway's in-memory store (logs: { store } takes Postgres), answers are
// cached when a request asks (cf-aig-cache-ttl), and keys stored through the admin API serve cf-aig-byok-alias.
const gateway = createGateway({ providers, keys, rateLimit: { limit: 600, window: 60 } })
const logs = gateway.logs

const app = new Koa()
app.use(aiGateway(gateway, { prefix: '/ai' }))
app.use(aiGatewayAdmin({ prefix: '/ai-admin', logs, keys, token: adminToken }))
app.use((ctx) => {
  ctx.body = 'Host app. The AI gateway is mounted at /ai, its admin API at /ai-admin.'
})

const server = app.listen(Number(process.env.PORT ?? 8787), '127.0.0.1', () => {
  printTryIt(server.address(), '/ai', upstream)
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  if (!process.env.GATEWAY_MASTER_KEY) {
    console.warn(
      'GATEWAY_MASTER_KEY is not set: stored keys use a random master key and are lost on restart.',
    )
  }
  const token = process.env.GATEWAY_ADMIN_TOKEN ? '$GATEWAY_ADMIN_TOKEN' : adminToken
  console.log(`
Admin API (logs, stored keys):
  curl -s http://127.0.0.1:${port}/ai-admin/keys -H "authorization: Bearer ${token}"`)
})
