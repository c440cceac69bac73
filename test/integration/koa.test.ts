import { bodyParser } from '@koa/bodyparser'
import Koa3 from 'koa'
import Koa2 from 'koa2'
import { afterAll, describe, expect, it } from 'vitest'
import { aiGateway, aiGatewayErrorHandler } from '../../adapters/koa.js'
import { createGateway } from '../../src/index.js'
import { closeServer, type RunningApp, readWhole, send, serverUrl } from '../helpers/http.js'
import { type BuildApp, runScenarios } from './scenarios.js'

function buildKoa(Koa: typeof Koa3): BuildApp {
  return async (gateway, host) => {
    const app = new Koa()
    const ai = aiGateway(gateway, { prefix: '/ai' })
    if (host.bodyParser) app.use(aiGatewayErrorHandler(ai)).use(bodyParser())
    if (host.bodyReader) app.use((ctx, next) => readWhole(ctx.req).then(next))
    app.use(ai)
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

for (const [name, Koa] of [
  ['koa 3', Koa3],
  ['koa 2', Koa2],
] as const) {
  describe(`${name}: aiGatewayErrorHandler()`, () => {
    const running: RunningApp[] = []
    afterAll(() => Promise.all(running.map((app) => app.close())))

    /** A host catcher naming what reaches it, the handler, @koa/bodyparser (1 kB JSON limit), the gateway. */
    async function start() {
      const app = new Koa()
      const gateway = createGateway({ logs: false })
      const ai = aiGateway(gateway, { prefix: '/ai' })
      app.use(async (ctx, next) => {
        try {
          await next()
        } catch (error) {
          ctx.status = 599
          ctx.body = `host handler: ${(error as Error).message}`
        }
      })
      app.use(aiGatewayErrorHandler(ai)).use(bodyParser({ jsonLimit: '1kb' }))
      app.use(async (ctx, next) => {
        if (ctx.path === '/ai/host-fails')
          throw Object.assign(new Error('host failure'), { type: 'host.own' })
        await next()
      })
      app.use(ai)
      const server = app.listen(0, '127.0.0.1')
      await new Promise((resolve) => server.once('listening', resolve))
      const url = serverUrl(server)
      running.push({ url, close: () => closeServer(server).then(() => gateway.close()) })
      return url
    }

    it("answers a body over the parser's limit with 413 and code 2101", async () => {
      const url = await start()
      const res = await send(`${url}/ai/v1/acct/default`, { body: { pad: 'x'.repeat(2048) } })
      expect(res.status).toBe(413)
      expect(res.headers['content-type']).toBe('application/json')
      expect(res.json()).toMatchObject({
        error: [{ code: 2101, message: "Request body too large: the host's body parser allows 1024 bytes" }],
        name: 'AiGatewayError',
      })
    })

    it('rethrows other errors, and parser failures outside the prefix or on paths the gateway does not serve', async () => {
      const url = await start()
      const own = await send(`${url}/ai/host-fails`, { body: {} })
      expect([own.status, own.text]).toEqual([599, 'host handler: host failure'])
      for (const path of ['/elsewhere', '/ai/']) {
        const res = await send(`${url}${path}`, { method: 'PATCH', body: '{"broken' })
        expect(res.status, path).toBe(599)
        expect(res.text).toMatch(/^host handler: /)
      }
    })

    it('refuses anything but what aiGateway() or aiGatewayAdmin() returned', () => {
      expect(() => aiGatewayErrorHandler(async (_ctx, next) => next())).toThrow(TypeError)
    })
  })
}
