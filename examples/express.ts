import { aiGateway } from 'ai-gateway-middleware/express'
import express from 'express'
import { demoProviders, printTryIt } from './demo-providers.js'

const { providers, upstream } = await demoProviders()

const app = express()
app.get('/', (_req, res) => {
  res.send('Host app. The AI gateway is mounted at /ai.')
})
app.use('/ai', aiGateway({ providers }))

const server = app.listen(Number(process.env.PORT ?? 8787), '127.0.0.1', () => {
  printTryIt(server.address(), '/ai', upstream)
})
