import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { aiGateway, aiGatewayAdmin } from '../../adapters/fastify.js'
import { createGateway, createMemoryLogStore, GatewayOptionsError } from '../../src/index.js'
import { readWhole } from '../helpers/http.js'
import { type BuildApp, runScenarios } from './scenarios.js'

const buildFastify: BuildApp = async (gateway, host) => {
  const app = Fastify()
  // Fastify parses JSON by default; "absent" takes its parsers away from the whole app.
  if (!host.bodyParser) app.removeAllContentTypeParsers()
  if (host.bodyReader)
    app.addHook('onRequest', (request, _reply, done) => void readWhole(request.raw).then(() => done()))
  await app.register(aiGateway, { prefix: '/ai', gateway })
  app.setNotFoundHandler((request, reply) => {
    reply.code(200).send(`host:${request.url}`)
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return { url: `http://127.0.0.1:${port}`, close: () => app.close() }
}

const TOKEN = 'admin-token-0123456789abcdef'

runScenarios('fastify 5', buildFastify)

describe('fastify 5: a gateway given with options beside it', () => {
  it('refuses the options, which the gateway would ignore, naming them', async () => {
    const gateway = createGateway({ logs: false })
    const app = Fastify()
    try {
      await expect(
        app.register(aiGateway, {
          prefix: '/ai',
          gateway,
          websockets: true,
          providers: { openai: { apiKey: 'sk-ignored' } },
        }),
      ).rejects.toThrow(GatewayOptionsError)
      await expect(app.ready()).rejects.toThrow(/providers: given beside `gateway`/)
    } finally {
      await app.close().catch(() => {})
      await gateway.close()
    }
  })
})

describe('fastify 5: a router that ignores case or repeated slashes', () => {
  it('leaves a URL not under the prefix as written to the host, never serving it as the mount root', async () => {
    const app = Fastify({ routerOptions: { caseSensitive: false, ignoreDuplicateSlashes: true } })
    await app.register(aiGatewayAdmin, { prefix: '/ai-admin', logs: createMemoryLogStore(), token: TOKEN })
    app.setNotFoundHandler((request, reply) => {
      reply.code(404).send(`host:${request.url}`)
    })
    try {
      const auth = { authorization: `Bearer ${TOKEN}` }
      const served = await app.inject({ url: '/ai-admin/logs', headers: auth })
      expect(served.statusCode).toBe(200)
      for (const url of ['/AI-ADMIN/logs', '//ai-admin//logs']) {
        const res = await app.inject({ url, headers: auth })
        expect([url, res.statusCode, res.body]).toEqual([url, 404, `host:${url}`])
      }
    } finally {
      await app.close()
    }
  })
})
