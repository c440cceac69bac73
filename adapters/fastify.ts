import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { type Admin, type AdminOptions, createAdmin } from '../src/admin/index.js'
import { createGateway, type Gateway, type GatewayOptions } from '../src/index.js'
import { relativeUrl, toGatewayRequest, writeNodeResponse } from '../src/node/index.js'

export type FastifyGatewayOptions = GatewayOptions & {
  /** A gateway built with `createGateway`, instead of options. */
  gateway?: Gateway
}

// Keys Fastify itself reads from register() options; they are not gateway options.
const REGISTER_KEYS = new Set(['prefix', 'logLevel', 'logSerializers'])

/**
 * Fastify plugin (Fastify 5). Register it under a prefix; unmatched requests get the app's not-found
 * handler. Inside its own scope it reads request bodies itself, so they reach the provider byte for byte.
 *
 * @example
 * await app.register(aiGateway, { prefix: '/ai', providers: { openai: { apiKey: process.env.OPENAI_API_KEY } } })
 */
const aiGatewayPlugin: FastifyPluginAsync<FastifyGatewayOptions> = async (app, registerOptions) => {
  const { gateway: given, ...rest } = registerOptions
  const options = Object.fromEntries(Object.entries(rest).filter(([key]) => !REGISTER_KEYS.has(key)))
  const gateway = given ?? createGateway(options as GatewayOptions)
  if (given === undefined) app.addHook('onClose', () => gateway.close())

  // Leave the stream unread: the gateway reads it with its own cap and forwards the exact bytes.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => done(null))

  const prefix = app.prefix
  async function handleGatewayRequest(request: FastifyRequest, reply: FastifyReply) {
    const url = relativeUrl(request.raw.url ?? '/', prefix) ?? '/'
    const response = await gateway.handle(toGatewayRequest(request.raw, reply.raw, { url, host: request }))
    if (response === undefined) return reply.callNotFound()
    reply.hijack()
    await writeNodeResponse(reply.raw, response)
  }
  app.all('/', handleGatewayRequest)
  app.all('/*', handleGatewayRequest)
}

Object.assign(aiGatewayPlugin, { [Symbol.for('fastify.display-name')]: 'ai-gateway-middleware' })

export const aiGateway = aiGatewayPlugin
export default aiGatewayPlugin
export type { Gateway, GatewayOptions }

export type FastifyAdminOptions = AdminOptions & {
  /** An admin built with `createAdmin`, instead of options. */
  admin?: Admin
}

/**
 * Fastify plugin for the admin API (logs, analytics, stored keys). Register it under a prefix; unmatched
 * requests get the app's not-found handler. Inside its own scope it reads request bodies itself.
 *
 * @example
 * await app.register(aiGatewayAdmin, { prefix: '/ai-admin', logs, keys, token: process.env.GATEWAY_ADMIN_TOKEN! })
 */
const aiGatewayAdminPlugin: FastifyPluginAsync<FastifyAdminOptions> = async (app, registerOptions) => {
  const { admin: given, ...rest } = registerOptions
  const options = Object.fromEntries(Object.entries(rest).filter(([key]) => !REGISTER_KEYS.has(key)))
  const admin = given ?? createAdmin(options as AdminOptions)

  // Leave the stream unread: the admin reads it with its own cap.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => done(null))

  const prefix = app.prefix
  async function handleAdminRequest(request: FastifyRequest, reply: FastifyReply) {
    const url = relativeUrl(request.raw.url ?? '/', prefix) ?? '/'
    const response = await admin.handle(toGatewayRequest(request.raw, reply.raw, { url, host: request }))
    if (response === undefined) return reply.callNotFound()
    reply.hijack()
    await writeNodeResponse(reply.raw, response)
  }
  app.all('/', handleAdminRequest)
  app.all('/*', handleAdminRequest)
}

Object.assign(aiGatewayAdminPlugin, { [Symbol.for('fastify.display-name')]: 'ai-gateway-middleware-admin' })

export const aiGatewayAdmin = aiGatewayAdminPlugin
export type { Admin, AdminOptions }
