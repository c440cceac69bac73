import { createGateway, forward, limit, parse, route, type Step } from 'ai-gateway-middleware'
import { aiGateway } from 'ai-gateway-middleware/express'
import express from 'express'
import { demoProviders, exitOnListenError, printTryIt } from './demo-providers.js'

/** Per team: 100 requests a minute, counted by the `x-team` header. */
const perTeam = limit({
  rules: { name: 'team', limit: 100, window: 60, key: (ctx) => ctx.request.headers['x-team'] ?? '(none)' },
})

const { providers, upstream } = await demoProviders()
const gateway = createGateway({
  providers,
  // The host's own pipeline, from the exported steps: the built-in `record` (logs, `request:end`, error
  // rendering) stays first; no cache, no authentication; its own limit, and a retrying `forward`.
  steps: (builtIn) => {
    const recordStep = builtIn.find((step) => step.name === 'record') as Step
    return [recordStep, parse(), route(), perTeam, forward({ retries: { maxAttempts: 2 } })]
  },
})
gateway.events.on('request:end', (event) => console.log(`${event.id} ${event.status} ${event.outcome}`))

const app = express()
app.use('/ai', aiGateway(gateway))
const port = Number(process.env.PORT ?? 8787)
const server = app.listen(port, '127.0.0.1', (error) => {
  if (error) exitOnListenError(error, port, 'custom-pipeline.ts')
  printTryIt(server.address(), '/ai', upstream)
})
