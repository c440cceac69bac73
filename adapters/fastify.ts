import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { type Admin, type AdminOptions, createAdmin } from '../src/admin/index.js'
import {
  attachWebSockets,
  createGateway,
  type Gateway,
  type GatewayOptions,
  GatewayOptionsError,
} from '../src/index.js'
import {
  type RequestHandlerCore,
  relativeUrl,
  toGatewayRequest,
  writeNodeResponse,
} from '../src/node/index.js'

export type FastifyGatewayOptions = GatewayOptions & {
  /** A gateway built with `createGateway`, instead of options. */
  gateway?: Gateway
  /**
   * `true` (or the `websockets` settings, for a gateway made from these options) also serves the gateway's
   * WebSockets on `app.server`, under the plugin's prefix; other upgrades are left to the server's other
   * listeners. Its sockets are closed in `preClose`, before the server waits for its connections.
   */
  websockets?: GatewayOptions['websockets']
}

export type FastifyAdminOptions = AdminOptions & {
  /** An admin built with `createAdmin`, instead of options. */
  admin?: Admin
}

// Keys Fastify itself reads from register() options; they are not gateway options.
const REGISTER_KEYS = new Set(['prefix', 'logLevel', 'logSerializers'])

/**
 * Fastify plugin (Fastify 5). Register it under a prefix; unmatched requests get the app's not-found
 * handler. Inside its own scope it reads request bodies itself, so they reach the provider byte for byte,
 * and Fastify's JSON parser never runs there: broken JSON gets the gateway's own answer, not Fastify's.
 *
 * @example
 * await app.register(aiGateway, { prefix: '/ai', providers: { openai: { apiKey: process.env.OPENAI_API_KEY } } })
 * await app.register(aiGateway, { prefix: '/ai', gateway, websockets: true }) // and its WebSockets
 */
const aiGatewayPlugin: FastifyPluginAsync<FastifyGatewayOptions> = async (app, registerOptions) => {
  const { gateway: given, ...rest } = registerOptions
  if (given !== undefined) refuseOptionsBesides(rest)
  const gateway = given ?? createGateway(withoutRegisterKeys(rest) as GatewayOptions)
  if (given === undefined) app.addHook('onClose', () => gateway.close())
  if (registerOptions.websockets !== undefined && registerOptions.websockets !== false) {
    const detach = attachWebSockets(app.server, gateway, { prefix: app.prefix })
    app.addHook('preClose', async () => {
      detach()
      await gateway.closeWebSockets()
    })
  }
  serve(app, gateway)
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
  serve(app, given ?? createAdmin(withoutRegisterKeys(rest) as AdminOptions))
}

/**
 * A built gateway has its options already: gateway options given beside it would be ignored, so they are
 * refused, as a wrong option is. `websockets` is the plugin's own switch here.
 */
function refuseOptionsBesides(options: object): void {
  const ignored = Object.keys(withoutRegisterKeys(options)).filter((key) => key !== 'websockets')
  if (ignored.length === 0) return
  throw new GatewayOptionsError(
    `Invalid gateway options:\n  - ${ignored.join(', ')}: given beside \`gateway\`, which has its options already (pass them to createGateway)`,
  )
}

function withoutRegisterKeys(options: object): object {
  return Object.fromEntries(Object.entries(options).filter(([key]) => !REGISTER_KEYS.has(key)))
}

/** Routes everything under the plugin's prefix to the core, translating Fastify's request and reply only. */
function serve(app: FastifyInstance, core: RequestHandlerCore): void {
  // Leave the stream unread: the core reads it with its own cap and forwards the exact bytes.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, _payload, done) => done(null))
  const prefix = app.prefix
  async function handleGatewayRequest(request: FastifyRequest, reply: FastifyReply) {
    // A router told to ignore case or repeated slashes routes URLs that are not under the prefix as
    // written: those are not the core's, rather than its root.
    const url = relativeUrl(request.raw.url ?? '/', prefix)
    if (url === undefined) return reply.callNotFound()
    const response = await core.handle(
      toGatewayRequest(request.raw, reply.raw, { url, host: request, originalUrl: request.raw.url }),
    )
    if (response === undefined) return reply.callNotFound()
    reply.hijack()
    // Not awaited: Fastify does nothing more with a hijacked reply, and the promise only tells when the
    // client's response closed (it never rejects); waiting on it would cost every request a turn.
    void writeNodeResponse(reply.raw, response)
  }
  app.all('/', handleGatewayRequest)
  app.all('/*', handleGatewayRequest)
}

Object.assign(aiGatewayPlugin, { [Symbol.for('fastify.display-name')]: 'ai-gateway-middleware' })
Object.assign(aiGatewayAdminPlugin, { [Symbol.for('fastify.display-name')]: 'ai-gateway-middleware-admin' })

export const aiGateway = aiGatewayPlugin
export const aiGatewayAdmin = aiGatewayAdminPlugin
export default aiGatewayPlugin
export type { Admin, AdminOptions, Gateway, GatewayOptions }
