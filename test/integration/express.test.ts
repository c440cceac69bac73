import express5 from 'express'
import express4 from 'express4'
import { aiGateway } from '../../adapters/express.js'
import { closeServer, serverUrl } from '../helpers/http.js'
import { type BuildApp, runScenarios } from './scenarios.js'

function buildExpress(express: typeof express5): BuildApp {
  return async (gateway, host) => {
    const app = express()
    if (host.bodyParser) app.use(express.json())
    app.use('/ai', aiGateway(gateway))
    app.get('/ai', (req, res) => {
      res.send(`host:${req.originalUrl}`)
    })
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    return { url: serverUrl(server), close: () => closeServer(server) }
  }
}

runScenarios('express 5', buildExpress(express5))
runScenarios('express 4', buildExpress(express4))
