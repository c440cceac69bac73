import { createServer } from 'node:http'
import { aiGateway } from 'ai-gateway-middleware/koa'
import Koa from 'koa'
import { gatewayOptions, listenAndReport } from './shared.js'

const app = new Koa()
app.use(aiGateway({ prefix: '/ai', ...gatewayOptions() }))
await listenAndReport(createServer(app.callback()))
