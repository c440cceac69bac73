import { createServer } from 'node:http'
import { aiGateway } from 'ai-gateway-middleware/express'
import express from 'express'
import { gatewayOptions, listenAndReport } from './shared.js'

const app = express()
app.use('/ai', aiGateway(gatewayOptions()))
await listenAndReport(createServer(app))
