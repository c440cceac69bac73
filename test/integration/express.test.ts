import express5, { type NextFunction, type Request, type Response } from 'express'
import express4 from 'express4'
import { afterAll, describe, expect, it } from 'vitest'
import { aiGateway, aiGatewayErrorHandler } from '../../adapters/express.js'
import { createGateway } from '../../src/index.js'
import { closeServer, type RunningApp, readWhole, send, serverUrl } from '../helpers/http.js'
import { type BuildApp, runScenarios } from './scenarios.js'

function buildExpress(express: typeof express5): BuildApp {
  return async (gateway, host) => {
    const app = express()
    if (host.bodyParser) app.use(express.json())
    if (host.bodyReader) app.use((req, _res, next) => void readWhole(req).then(() => next(), next))
    const ai = aiGateway(gateway)
    app.use('/ai', ai)
    if (host.bodyParser) app.use('/ai', aiGatewayErrorHandler(ai))
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

for (const [name, express] of [
  ['express 5', express5],
  ['express 4', express4],
] as const) {
  describe(`${name}: aiGatewayErrorHandler()`, () => {
    const running: RunningApp[] = []
    afterAll(() => Promise.all(running.map((app) => app.close())))

    /** express.json() with a 1 kB limit, the gateway at /ai, then a host error handler that names the error. */
    async function start(mounted: 'middleware' | 'gateway') {
      const app = express()
      app.use(express.json({ limit: '1kb' }))
      const gateway = createGateway({ logs: false })
      const ai = aiGateway(gateway)
      app.use('/ai/host-fails', (_req: Request, _res: Response, next: NextFunction) => {
        next(Object.assign(new Error('host failure'), { type: 'host.own' }))
      })
      app.use('/ai', ai, aiGatewayErrorHandler(mounted === 'gateway' ? gateway : ai))
      app.use((error: Error, _req: Request, res: Response, _next: NextFunction) => {
        res.status(599).send(`host handler: ${error.message}`)
      })
      const server = app.listen(0, '127.0.0.1')
      await new Promise((resolve) => server.once('listening', resolve))
      const url = serverUrl(server)
      running.push({ url, close: () => closeServer(server).then(() => gateway.close()) })
      return url
    }

    for (const mounted of ['middleware', 'gateway'] as const) {
      it(`answers a body over express.json()'s limit with 413 and code 2101 (made from the ${mounted})`, async () => {
        const url = await start(mounted)
        const res = await send(`${url}/ai/compat/chat/completions`, { body: { pad: 'x'.repeat(2048) } })
        expect(res.status).toBe(413)
        expect(res.headers['content-type']).toBe('application/json')
        expect(res.json()).toMatchObject({
          error: { code: 2101, message: "Request body too large: the host's body parser allows 1024 bytes" },
          name: 'AiGatewayError',
        })
      })
    }

    it('passes other errors, and parser failures on paths the gateway does not serve, to the next handler', async () => {
      const url = await start('middleware')
      const own = await send(`${url}/ai/host-fails`, { body: {} })
      expect([own.status, own.text]).toEqual([599, 'host handler: host failure'])
      // The bare mount root is not the gateway's for GET, so its parser failure stays the host's.
      const root = await send(`${url}/ai/`, { method: 'GET', body: '{"broken' })
      expect(root.status).toBe(599)
      expect(root.text).toMatch(/^host handler: /)
    })

    it('refuses anything but what aiGateway() or aiGatewayAdmin() returned', () => {
      expect(() =>
        aiGatewayErrorHandler((_req: Request, _res: Response, next: NextFunction) => next()),
      ).toThrow(TypeError)
    })
  })
}
