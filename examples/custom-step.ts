import { createGateway, type Step } from 'ai-gateway-middleware'
import { aiGateway } from 'ai-gateway-middleware/express'
import express from 'express'
import { demoProviders, exitOnListenError, printTryIt } from './demo-providers.js'

/** A host step: only lets through requests from callers the host knows, and times every request. */
const requireTeamHeader: Step = async function requireTeamHeader(ctx, next) {
  if (ctx.request.headers['x-team'] === undefined) {
    ctx.response = {
      status: 403,
      headers: { 'content-type': 'text/plain' },
      body: 'x-team header required\n',
    }
    return
  }
  const started = performance.now()
  await next()
  if (ctx.response) ctx.response.headers['x-gateway-ms'] = (performance.now() - started).toFixed(1)
}

const { providers, upstream } = await demoProviders()
const gateway = createGateway({ providers, steps: [requireTeamHeader] })
gateway.events.on('request:end', (event) => {
  console.log(
    `${event.id} ${event.provider ?? '-'} ${event.status} ${event.durationMs.toFixed(1)} ms ${event.outcome}`,
  )
})

const app = express()
app.use('/ai', aiGateway(gateway))
const port = Number(process.env.PORT ?? 8787)
const server = app.listen(port, '127.0.0.1', (error) => {
  if (error) exitOnListenError(error, port, 'custom-step.ts')
  printTryIt(server.address(), '/ai', upstream)
  console.log("\n(Add -H 'x-team: research' to each request: this example refuses requests without it.)")
})
