import { bodyParser as koaBodyParser } from '@koa/bodyparser'
import express from 'express'
import Fastify from 'fastify'
import Koa from 'koa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  aiGatewayAdmin as expressAdmin,
  aiGatewayErrorHandler as expressErrorHandler,
  aiGateway as expressGateway,
} from '../../adapters/express.js'
import { aiGatewayAdmin as fastifyAdmin, aiGateway as fastifyGateway } from '../../adapters/fastify.js'
import {
  aiGatewayAdmin as koaAdmin,
  aiGatewayErrorHandler as koaErrorHandler,
  aiGateway as koaGateway,
} from '../../adapters/koa.js'
import { type Admin, createAdmin } from '../../src/admin/index.js'
import type { RouteStore } from '../../src/dynamic/types.js'
import { createGateway, type Gateway, type GatewayOptions, type GatewayRoutes } from '../../src/index.js'
import { createMemoryRouteStore } from '../../src/stores/memory-routes.js'
import { createMockProvider, type MockProvider } from '../../src/testing/index.js'
import type { GatewayRequest } from '../../src/types.js'
import { closeServer, type RunningApp, send, serverUrl } from '../helpers/http.js'

const TOKEN = 'admin-token-0123456789abcdef'
const auth = { authorization: `Bearer ${TOKEN}` }

/** Mounts the gateway at `/ai` and the admin at `/ai-admin` in one host app. */
type BuildApp = (gateway: Gateway, admin: Admin, host: { bodyParser: boolean }) => Promise<RunningApp>

const buildExpress: BuildApp = async (gateway, admin, host) => {
  const app = express()
  if (host.bodyParser) app.use(express.json())
  const ai = expressGateway(gateway)
  const mounted = expressAdmin(admin)
  app.use('/ai', ai)
  app.use('/ai-admin', mounted)
  if (host.bodyParser) {
    app.use('/ai', expressErrorHandler(ai))
    app.use('/ai-admin', expressErrorHandler(mounted))
  }
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  return { url: serverUrl(server), close: () => closeServer(server) }
}

const buildKoa: BuildApp = async (gateway, admin, host) => {
  const app = new Koa()
  const ai = koaGateway(gateway, { prefix: '/ai' })
  const mounted = koaAdmin(admin, { prefix: '/ai-admin' })
  if (host.bodyParser) app.use(koaErrorHandler(ai)).use(koaErrorHandler(mounted)).use(koaBodyParser())
  app.use(ai).use(mounted)
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  return { url: serverUrl(server), close: () => closeServer(server) }
}

const buildFastify: BuildApp = async (gateway, admin, host) => {
  const app = Fastify()
  if (!host.bodyParser) app.removeAllContentTypeParsers()
  await app.register(fastifyGateway, { prefix: '/ai', gateway })
  await app.register(fastifyAdmin, { prefix: '/ai-admin', admin })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return { url: `http://127.0.0.1:${port}`, close: () => app.close() }
}

const to = (elementId: string) => ({ elementId })

/** A route of one model: start → model → end. */
function oneModel(name: string, provider: string, model: string) {
  return {
    name,
    elements: [
      { id: 'start', type: 'start', outputs: { next: to('model') } },
      { id: 'model', type: 'model', properties: { provider, model }, outputs: { success: to('end') } },
      { id: 'end', type: 'end', outputs: {} },
    ],
  }
}

const V1 = oneModel('support', 'openai', 'gpt-4o')
const V2 = oneModel('support', 'anthropic', 'claude-haiku-4-5')

type Call = (
  path: string,
  init?: { method?: string; body?: unknown; headers?: Record<string, string> },
) => ReturnType<typeof send>

/** One table of route scenarios, run against every framework so the mounts cannot drift apart. */
function runRouteScenarios(framework: string, build: BuildApp, host: { bodyParser: boolean }): void {
  describe(`${framework}: admin API dynamic routes (host body parser ${host.bodyParser ? 'present' : 'absent'})`, () => {
    let mock: MockProvider
    const running: RunningApp[] = []
    beforeAll(async () => {
      mock = await createMockProvider()
    })
    afterAll(async () => {
      await Promise.all(running.map((app) => app.close()))
      await mock.close()
    })

    /** The gateway and its admin in one app; `admin` calls the admin with the token, `ask` the gateway. */
    async function start(routes?: GatewayOptions['routes']) {
      const gateway = createGateway({
        logs: false,
        ...(routes === undefined ? {} : { routes }),
        providers: {
          openai: { apiKey: 'sk-stored', baseURL: `${mock.url}/v1` },
          anthropic: { apiKey: 'sk-ant-stored', baseURL: mock.url },
        },
      })
      const app = await build(gateway, createAdmin({ routes: gateway.routes, token: TOKEN }), host)
      running.push({ url: app.url, close: () => app.close().then(() => gateway.close()) })
      const admin: Call = (path, init = {}) =>
        send(`${app.url}/ai-admin${path}`, { ...init, headers: { ...auth, ...init.headers } })
      const ask = (route: string) =>
        send(`${app.url}/ai/compat/chat/completions`, {
          body: { model: `dynamic/${route}`, messages: [{ role: 'user', content: `to ${route}` }] },
        })
      return { admin, ask, url: app.url }
    }

    it('saves, lists and deploys a route that then serves requests; v2 and a rollback to v1 take effect at once', async () => {
      mock.reset()
      const { admin, ask } = await start()

      const saved = await admin('/routes', { body: V1 })
      expect(saved.status).toBe(201)
      expect(saved.headers['cache-control']).toBe('no-store')
      expect(saved.json()).toEqual({
        version: { name: 'support', version: 1, definition: V1, createdAt: expect.any(Number) },
      })
      expect((await admin('/routes')).json()).toEqual({
        routes: [{ name: 'support', latestVersion: 1, deployedVersion: null, updatedAt: expect.any(Number) }],
      })
      expect((await admin('/routes/support')).json()).toEqual({
        name: 'support',
        latestVersion: 1,
        deployed: null,
      })
      expect((await admin('/routes/support/deployments')).json()).toEqual({ deployment: null })
      // Saved is not live: the gateway does not know the route yet.
      const before = await ask('support')
      expect(before.status).toBe(400)
      expect(before.json()).toMatchObject({ internalCode: 2127 })

      const deployed = await admin('/routes/support/deployments', { body: { version: 1 } })
      expect(deployed.status).toBe(201)
      expect(deployed.json()).toEqual({
        deployment: { name: 'support', version: 1, deployedAt: expect.any(Number) },
      })
      const first = await ask('support')
      expect(first.status).toBe(200)
      expect(first.headers).toMatchObject({ 'cf-aig-provider': 'openai', 'cf-aig-model': 'gpt-4o' })
      expect(first.json()).toMatchObject({ choices: [{ message: { content: 'mock reply to: to support' } }] })

      // A body without a name takes the path's; deploy=true makes it live in the same call.
      const { name: _, ...withoutName } = V2
      const second = await admin('/routes/support/versions?deploy=true', { body: withoutName })
      expect(second.status).toBe(201)
      expect(second.json()).toEqual({
        version: { name: 'support', version: 2, definition: V2, createdAt: expect.any(Number) },
        deployment: { name: 'support', version: 2, deployedAt: expect.any(Number) },
      })
      expect((await ask('support')).headers).toMatchObject({
        'cf-aig-provider': 'anthropic',
        'cf-aig-model': 'claude-haiku-4-5',
      })

      const versions = await admin('/routes/support/versions')
      expect(versions.status).toBe(200)
      const listed = (versions.json() as { versions: Array<{ version: number }> }).versions
      expect(listed.map((version) => version.version)).toEqual([2, 1])
      const one = await admin('/routes/support/versions/1')
      expect(one.status).toBe(200)
      expect(one.json()).toEqual({
        name: 'support',
        version: 1,
        definition: V1,
        createdAt: expect.any(Number),
      })

      // Deploying the older version is the rollback.
      const rollback = await admin('/routes/support/deployments', { body: { version: 1 } })
      expect(rollback.status).toBe(201)
      expect(rollback.json()).toMatchObject({ deployment: { version: 1 } })
      expect((await ask('support')).headers).toMatchObject({ 'cf-aig-model': 'gpt-4o' })
      expect((await admin('/routes/support/deployments')).json()).toMatchObject({
        deployment: { name: 'support', version: 1 },
      })
      // Route names in paths are percent-decoded.
      expect((await admin('/routes/sup%70ort')).json()).toEqual({
        name: 'support',
        latestVersion: 2,
        deployed: { version: 1, deployedAt: expect.any(Number), definition: V1 },
      })
      expect((await admin('/routes')).json()).toMatchObject({
        routes: [{ name: 'support', latestVersion: 2, deployedVersion: 1 }],
      })
      expect(mock.calls.map((call) => call.path)).toEqual([
        '/v1/chat/completions',
        '/v1/messages',
        '/v1/chat/completions',
      ])
    })

    it('a deploy or a delete made while a request reads the route is live at once, not after the next refresh', async () => {
      mock.reset()
      // The store answers a read only when told to: the read below is still on its way back when the
      // deploy lands, as a read over the network can be.
      const inner = createMemoryRouteStore()
      let held: { reached: () => void; answer: Promise<void> } | undefined
      const store: RouteStore = {
        ...inner,
        async deployed(name) {
          const live = await inner.deployed(name)
          const hold = held
          held = undefined
          if (hold !== undefined) {
            hold.reached()
            await hold.answer
          }
          return live
        },
      }
      const holdNextRead = () => {
        let answer!: () => void
        const reached = new Promise<void>((resolve) => {
          held = { reached: resolve, answer: new Promise<void>((release) => (answer = release)) }
        })
        return { reached, answer: () => answer() }
      }
      // A refresh an hour away: only the deploy itself can make v2 live within this test.
      const { admin, ask } = await start({ store, refreshMs: 3_600_000, storeTimeoutMs: 600_000 })
      expect((await admin('/routes?deploy=true', { body: V1 })).status).toBe(201)
      expect((await admin('/routes/support/versions', { body: V2 })).status).toBe(201)

      const read = holdNextRead()
      const during = ask('support')
      await read.reached
      expect((await admin('/routes/support/deployments', { body: { version: 2 } })).status).toBe(201)
      read.answer()
      // The request that began before the deploy may take either version; every one after it takes v2.
      expect((await during).status).toBe(200)
      const after = await ask('support')
      expect(after.status).toBe(200)
      expect(after.headers).toMatchObject({ 'cf-aig-model': 'claude-haiku-4-5' })

      const again = holdNextRead()
      // Deployed anew, so the next request reads the route again: held while the route is deleted.
      expect((await admin('/routes/support/deployments', { body: { version: 1 } })).status).toBe(201)
      const beforeDelete = ask('support')
      await again.reached
      expect((await admin('/routes/support', { method: 'DELETE' })).status).toBe(204)
      again.answer()
      expect((await beforeDelete).status).toBe(200)
      const deleted = await ask('support')
      expect(deleted.status).toBe(400)
      expect(deleted.json()).toMatchObject({ internalCode: 2127 })
    })

    it('POST /routes?deploy=true saves and deploys; saving an existing name makes its next version', async () => {
      mock.reset()
      const { admin, ask } = await start()
      const created = await admin('/routes?deploy=true', {
        body: oneModel('canary', 'anthropic', 'claude-haiku-4-5'),
      })
      expect(created.status).toBe(201)
      expect(created.json()).toMatchObject({ version: { version: 1 }, deployment: { version: 1 } })
      expect((await ask('canary')).headers['cf-aig-provider']).toBe('anthropic')

      const next = await admin('/routes', { body: oneModel('canary', 'openai', 'gpt-4o') })
      expect(next.status).toBe(201)
      expect(next.json()).toMatchObject({ version: { name: 'canary', version: 2 } })
      expect(next.json()).not.toHaveProperty('deployment')
      // Saved, not deployed: v1 still answers.
      expect((await ask('canary')).headers['cf-aig-provider']).toBe('anthropic')
      expect((await admin('/routes/canary')).json()).toMatchObject({
        latestVersion: 2,
        deployed: { version: 1 },
      })

      expect((await admin('/routes/canary', { method: 'DELETE' })).status).toBe(204)
      expect((await admin('/routes')).json()).toEqual({ routes: [] })
      expect((await ask('canary')).json()).toMatchObject({ internalCode: 2127 })
    })

    it('refuses an invalid route with 400 (code 2126) naming the element, and saves nothing', async () => {
      const { admin } = await start()
      const nowhere = {
        name: 'broken',
        elements: [
          { id: 'start', type: 'start', outputs: { next: to('pick') } },
          {
            id: 'pick',
            type: 'model',
            properties: { provider: 'openai', model: 'gpt-4o' },
            outputs: { success: to('nowhere') },
          },
        ],
      }
      const dangling = await admin('/routes', { body: nowhere })
      expect(dangling.status).toBe(400)
      expect(dangling.json()).toMatchObject({
        internalCode: 2126,
        message: expect.stringContaining("element 'pick': output 'success' leads to 'nowhere'"),
      })
      const unknownProvider = await admin('/routes/broken/versions', {
        body: oneModel('broken', 'nope', 'x'),
      })
      expect(unknownProvider.status).toBe(400)
      expect(unknownProvider.json()).toMatchObject({
        internalCode: 2126,
        message: expect.stringContaining("element 'model'"),
      })
      const otherName = await admin('/routes/support/versions', { body: { ...V1, name: 'other' } })
      expect(otherName.status).toBe(400)
      expect(otherName.json()).toMatchObject({
        internalCode: 2126,
        message: expect.stringContaining("'support'"),
      })
      const badName = await admin('/routes', { body: { ...V1, name: 'not a name' } })
      expect(badName.json()).toMatchObject({ internalCode: 2126, message: expect.stringContaining("'name'") })

      // Not a JSON object: the body is refused before the route is looked at.
      for (const body of ['{"name": ', '[1]']) {
        const res = await admin('/routes', { body, headers: { 'content-type': 'text/plain' } })
        expect(res.status, body).toBe(400)
        expect(res.json()).toMatchObject({ internalCode: 2112 })
      }
      expect((await admin('/routes')).json()).toEqual({ routes: [] })
    })

    it('refuses bad versions, names and query parameters with 400', async () => {
      const { admin } = await start()
      await admin('/routes', { body: V1 })
      for (const path of [
        '/routes/support/versions/0',
        '/routes/support/versions/1.5',
        '/routes/support/versions/01',
        '/routes/support/versions/one',
        '/routes/not%20a%20name',
        '/routes?limit=1',
        '/routes/support/versions?deploy=true',
      ]) {
        const res = await admin(path)
        expect(res.status, path).toBe(400)
        expect(res.json()).toMatchObject({ internalCode: 2120 })
      }
      const unknownParam = await admin('/routes?colour=red', { body: V1 })
      expect(unknownParam.json()).toMatchObject({
        internalCode: 2120,
        message: expect.stringContaining('unknown parameter "colour"'),
      })
      const badDeploy = await admin('/routes?deploy=yes', { body: V1 })
      expect(badDeploy.json()).toMatchObject({
        internalCode: 2120,
        message: expect.stringContaining('deploy must be true or false'),
      })
      for (const body of [
        { version: '1' },
        { version: 1.5 },
        { version: 0 },
        { version: 1, at: 'now' },
        {},
      ]) {
        const res = await admin('/routes/support/deployments', { body })
        expect(res.status, JSON.stringify(body)).toBe(400)
        expect(res.json()).toMatchObject({ internalCode: 2112 })
      }
      // Nothing above saved or deployed anything.
      expect((await admin('/routes')).json()).toMatchObject({
        routes: [{ name: 'support', latestVersion: 1, deployedVersion: null }],
      })
    })

    it('answers 404 (code 2118) for an unknown route or version', async () => {
      const { admin } = await start()
      await admin('/routes', { body: V1 })
      const missing: Array<[string, string, unknown?]> = [
        ['GET', '/routes/ghost'],
        ['DELETE', '/routes/ghost'],
        ['GET', '/routes/ghost/versions'],
        ['GET', '/routes/ghost/versions/1'],
        ['GET', '/routes/ghost/deployments'],
        ['POST', '/routes/ghost/deployments', { version: 1 }],
        ['GET', '/routes/support/versions/9'],
        ['POST', '/routes/support/deployments', { version: 9 }],
      ]
      for (const [method, path, body] of missing) {
        const res = await admin(path, { method, body })
        expect(res.status, `${method} ${path}`).toBe(404)
        expect(res.json()).toMatchObject({ internalCode: 2118 })
      }
      expect((await admin('/routes/support/versions/9')).json()).toMatchObject({
        message: "Not found: route 'support' has no version 9",
      })
    })

    it('answers 405 (code 2119) with allow for a wrong method on a route path', async () => {
      const { admin } = await start()
      const res = await admin('/routes', { method: 'PUT', body: V1 })
      expect(res.status).toBe(405)
      expect(res.headers.allow).toBe('GET, POST')
      expect(res.json()).toMatchObject({ internalCode: 2119 })
      expect((await admin('/routes/support/versions/1', { method: 'DELETE' })).headers.allow).toBe('GET')
    })

    it('answers 401 (code 2009) on every route path without the token', async () => {
      const { url, admin } = await start()
      await admin('/routes', { body: V1 })
      const calls: Array<[string, string, unknown?]> = [
        ['GET', '/routes'],
        ['POST', '/routes', V2],
        ['GET', '/routes/support'],
        ['DELETE', '/routes/support'],
        ['GET', '/routes/support/versions'],
        ['POST', '/routes/support/versions', V2],
        ['GET', '/routes/support/versions/1'],
        ['GET', '/routes/support/deployments'],
        ['POST', '/routes/support/deployments', { version: 1 }],
      ]
      for (const [method, path, body] of calls) {
        for (const headers of [{}, { authorization: 'Bearer wrong-token-0123456789abcdef' }]) {
          const res = await send(`${url}/ai-admin${path}`, { method, body, headers })
          expect(res.status, `${method} ${path}`).toBe(401)
          expect(res.json()).toMatchObject({ error: [{ code: 2009 }] })
        }
      }
      // Nothing was changed by the refused calls.
      expect((await admin('/routes')).json()).toMatchObject({
        routes: [{ name: 'support', latestVersion: 1, deployedVersion: null }],
      })
    })

    it('answers 404 on route paths when the admin has no routes', async () => {
      const gateway = createGateway({ logs: false })
      const app = await build(gateway, createAdmin({ token: TOKEN }), host)
      running.push({ url: app.url, close: () => app.close().then(() => gateway.close()) })
      for (const path of ['/routes', '/routes/support/versions']) {
        const res = await send(`${app.url}/ai-admin${path}`, { headers: auth })
        expect(res.status).toBe(404)
        expect(res.json()).toMatchObject({
          internalCode: 2118,
          message: expect.stringContaining('no routes'),
        })
      }
    })
  })
}

for (const bodyParser of [false, true]) {
  runRouteScenarios('express 5', buildExpress, { bodyParser })
  runRouteScenarios('koa 3', buildKoa, { bodyParser })
}
runRouteScenarios('fastify 5', buildFastify, { bodyParser: true })

function adminRequest(path: string, init: Partial<GatewayRequest> = {}): GatewayRequest {
  const [pathname = path, query] = path.split('?')
  return {
    method: 'GET',
    path: pathname,
    search: query === undefined ? '' : `?${query}`,
    headers: {},
    signal: new AbortController().signal,
    ...init,
  }
}

describe('createAdmin({ routes })', () => {
  it('refuses something that is not a gateway’s routes, naming the option', () => {
    expect(() => createAdmin({ routes: {} as GatewayRoutes })).toThrow(TypeError)
    expect(() => createAdmin({ routes: { list: () => [] } as never })).toThrow(
      /routes: expected a gateway's routes/,
    )
  })

  it('refuses a route name whose percent-encoding is broken with 400 (code 2120)', async () => {
    // Not in the framework table: Fastify refuses such a URL itself, before any plugin sees it.
    const gateway = createGateway({ logs: false })
    try {
      const response = await createAdmin({ routes: gateway.routes }).handle(adminRequest('/routes/bad%E0'))
      expect(response?.status).toBe(400)
      expect(JSON.parse(String(response?.body))).toMatchObject({ internalCode: 2120 })
    } finally {
      await gateway.close()
    }
  })

  it('answers 503 (code 2128) without backend detail when the route store is down', async () => {
    const down = () => Promise.reject(new Error('connect ECONNREFUSED 10.0.0.7:5432'))
    const store: RouteStore = {
      save: down,
      versions: down,
      version: down,
      deploy: down,
      deployed: down,
      list: down,
      delete: down,
    }
    const gateway = createGateway({ logs: false, routes: { store } })
    const admin = createAdmin({ routes: gateway.routes })
    try {
      for (const request of [
        adminRequest('/routes'),
        adminRequest('/routes', { method: 'POST', body: JSON.stringify(V1) }),
        adminRequest('/routes/support/versions'),
        adminRequest('/routes/support/deployments', { method: 'POST', body: '{"version":1}' }),
      ]) {
        const response = await admin.handle(request)
        expect(response?.status, `${request.method} ${request.path}`).toBe(503)
        expect(JSON.parse(String(response?.body))).toMatchObject({ internalCode: 2128 })
        expect(String(response?.body)).not.toContain('10.0.0.7')
      }
    } finally {
      await gateway.close()
    }
  })
})
