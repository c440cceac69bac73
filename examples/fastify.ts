import { aiGateway } from 'ai-gateway-middleware/fastify'
import Fastify from 'fastify'
import { demoProviders, printTryIt } from './demo-providers.js'

const { providers, upstream } = await demoProviders()

const app = Fastify()
app.get('/', async () => 'Host app. The AI gateway is mounted at /ai.')
await app.register(aiGateway, { prefix: '/ai', providers })

await app.listen({ port: Number(process.env.PORT ?? 8787), host: '127.0.0.1' })
printTryIt(app.server.address(), '/ai', upstream)
