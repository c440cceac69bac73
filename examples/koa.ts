import { aiGateway } from 'ai-gateway-middleware/koa'
import Koa from 'koa'
import { demoProviders, printTryIt } from './demo-providers.js'

const { providers, upstream } = await demoProviders()

const app = new Koa()
app.use(aiGateway({ prefix: '/ai', providers }))
app.use((ctx) => {
  ctx.body = 'Host app. The AI gateway is mounted at /ai.'
})

const server = app.listen(Number(process.env.PORT ?? 8787), '127.0.0.1', () => {
  printTryIt(server.address(), '/ai', upstream)
})
