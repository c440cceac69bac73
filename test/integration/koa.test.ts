import { bodyParser } from '@koa/bodyparser'
import Koa3 from 'koa'
import Koa2 from 'koa2'
import { aiGateway } from '../../adapters/koa.js'
import { closeServer, serverUrl } from '../helpers/http.js'
import { type BuildApp, runScenarios } from './scenarios.js'

function buildKoa(Koa: typeof Koa3): BuildApp {
  return async (gateway, host) => {
    const app = new Koa()
    if (host.bodyParser) app.use(bodyParser())
    app.use(aiGateway(gateway, { prefix: '/ai' }))
    app.use((ctx) => {
      ctx.body = `host:${ctx.path}`
    })
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    return { url: serverUrl(server), close: () => closeServer(server) }
  }
}

runScenarios('koa 3', buildKoa(Koa3))
runScenarios('koa 2', buildKoa(Koa2))
