import { bodyParser as koaBodyParser } from '@koa/bodyparser'
import express from 'express'
import Fastify from 'fastify'
import Koa from 'koa'
import {
  aiGatewayAdmin as expressAdmin,
  aiGatewayErrorHandler as expressErrorHandler,
} from '../../adapters/express.js'
import { aiGatewayAdmin as fastifyAdmin } from '../../adapters/fastify.js'
import { aiGatewayAdmin as koaAdmin, aiGatewayErrorHandler as koaErrorHandler } from '../../adapters/koa.js'
import type { Admin } from '../../src/admin/index.js'
import { closeServer, type RunningApp, serverUrl } from './http.js'

/** Mounts the admin at `/ai-admin`; anything else, the host answers itself with `host:<url>`. */
export type BuildAdminApp = (admin: Admin, host: { bodyParser: boolean }) => Promise<RunningApp>

export const buildExpressAdmin: BuildAdminApp = async (admin, host) => {
  const app = express()
  if (host.bodyParser) app.use(express.json())
  const mounted = expressAdmin(admin)
  app.use('/ai-admin', mounted)
  if (host.bodyParser) app.use('/ai-admin', expressErrorHandler(mounted))
  app.use((req, res) => {
    res.send(`host:${req.originalUrl}`)
  })
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  return { url: serverUrl(server), close: () => closeServer(server) }
}

export const buildKoaAdmin: BuildAdminApp = async (admin, host) => {
  const app = new Koa()
  const mounted = koaAdmin(admin, { prefix: '/ai-admin' })
  if (host.bodyParser) app.use(koaErrorHandler(mounted)).use(koaBodyParser())
  app.use(mounted)
  app.use((ctx) => {
    ctx.body = `host:${ctx.url}`
  })
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  return { url: serverUrl(server), close: () => closeServer(server) }
}

export const buildFastifyAdmin: BuildAdminApp = async (admin, host) => {
  const app = Fastify()
  if (!host.bodyParser) app.removeAllContentTypeParsers()
  await app.register(fastifyAdmin, { prefix: '/ai-admin', admin })
  app.setNotFoundHandler((request, reply) => {
    reply.code(200).send(`host:${request.url}`)
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return { url: `http://127.0.0.1:${port}`, close: () => app.close() }
}

/** Every framework and host parser setup the admin scenarios run on. */
export const ADMIN_MOUNTS: readonly { name: string; build: BuildAdminApp; host: { bodyParser: boolean } }[] =
  [
    { name: 'express 5', build: buildExpressAdmin, host: { bodyParser: false } },
    { name: 'express 5', build: buildExpressAdmin, host: { bodyParser: true } },
    { name: 'koa 3', build: buildKoaAdmin, host: { bodyParser: false } },
    { name: 'koa 3', build: buildKoaAdmin, host: { bodyParser: true } },
    { name: 'fastify 5', build: buildFastifyAdmin, host: { bodyParser: true } },
  ]
