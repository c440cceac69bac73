import type { Middleware } from 'koa'
import { type Admin, type AdminOptions, createAdmin, isAdmin } from '../src/admin/index.js'
import {
  attachWebSockets as attachToServer,
  createGateway,
  type Gateway,
  type GatewayOptions,
  isGateway,
  type UpgradeEmitter,
} from '../src/index.js'
import { answerParserFailure } from '../src/node/host-parser.js'
import {
  normalizePrefix,
  type RequestHandlerCore,
  relativeUrl,
  toGatewayRequest,
  writeNodeResponse,
} from '../src/node/index.js'

export interface KoaMountOptions {
  /**
   * Path the gateway answers under, e.g. `/ai`. Leave it out under koa-mount, which takes its path off the
   * URL; a router (@koa/router) leaves the URL whole, so under one give the route's path here.
   */
  prefix?: string
}

// The core and prefix behind each middleware made here, so an error handler can be made from it alone.
const mounts = new WeakMap<Middleware, { core: RequestHandlerCore; base: string }>()

/**
 * Koa middleware (Koa 2 and 3). Requests outside `prefix`, or that the gateway does not serve, go on to
 * `next()`. The gateway writes its own response (`ctx.respond = false`) so streams keep their backpressure.
 * Behind a body parser, put {@link aiGatewayErrorHandler} in front of the parser.
 *
 * @example
 * app.use(aiGateway({ prefix: '/ai', providers: { openai: { apiKey: process.env.OPENAI_API_KEY } } }))
 */
export function aiGateway(
  optionsOrGateway: (GatewayOptions & KoaMountOptions) | Gateway = {},
  mount: KoaMountOptions = {},
): Middleware {
  if (isGateway(optionsOrGateway)) return middleware(optionsOrGateway, mount.prefix)
  const { prefix, ...options } = optionsOrGateway
  return middleware(createGateway(options), mount.prefix ?? prefix)
}

/**
 * Koa middleware for the admin API (logs, analytics, stored keys). Requests outside `prefix`, or that the
 * admin does not serve, go on to `next()`. Works with or without a body parser in front of it.
 *
 * @example
 * app.use(aiGatewayAdmin({ logs, keys, token: process.env.GATEWAY_ADMIN_TOKEN! }, { prefix: '/ai-admin' }))
 */
export function aiGatewayAdmin(
  optionsOrAdmin: (AdminOptions & KoaMountOptions) | Admin,
  mount: KoaMountOptions = {},
): Middleware {
  if (isAdmin(optionsOrAdmin)) return middleware(optionsOrAdmin, mount.prefix)
  const { prefix, ...options } = optionsOrAdmin
  return middleware(createAdmin(options), mount.prefix ?? prefix)
}

/**
 * Goes before a body parser (`@koa/bodyparser`, or another on co-body), whose refusals Koa would answer
 * as plain text: on the gateway's prefix they get the gateway's answer, as without a parser (broken JSON
 * reaches it as text; an oversized body is a 413 with code 2101). Everything else is rethrown.
 *
 * @example
 * const ai = aiGateway({ prefix: '/ai', providers: { openai: { apiKey: process.env.OPENAI_API_KEY } } })
 * app.use(aiGatewayErrorHandler(ai)).use(bodyParser()).use(ai)
 */
export function aiGatewayErrorHandler(mounted: Middleware): Middleware {
  const mount = mounts.get(mounted)
  if (mount === undefined) throw new TypeError('expected what aiGateway() or aiGatewayAdmin() returned')
  return async function aiGatewayErrorHandler(ctx, next) {
    try {
      await next()
    } catch (error) {
      const url = relativeUrl(ctx.url, mount.base)
      const response = await answerParserFailure(mount.core, error, ctx.req, ctx.res, {
        url,
        host: ctx,
        originalUrl: ctx.originalUrl,
      })
      if (response === undefined) throw error
      ctx.respond = false
      await writeNodeResponse(ctx.res, response)
    }
  }
}

/**
 * Serves the gateway's WebSockets (the universal endpoint over a socket, realtime sessions) on the server
 * Koa listens on: upgrades under the middleware's `prefix` (or the one given here) are the gateway's,
 * every other one is left to the server's other `upgrade` listeners, such as your own WebSocket servers.
 * Answers the function that detaches it.
 *
 * @example
 * const ai = aiGateway({ prefix: '/ai', providers: { openai: { apiKey: process.env.OPENAI_API_KEY } } })
 * app.use(ai)
 * attachWebSockets(app.listen(3000), ai)
 */
export function attachWebSockets(
  server: UpgradeEmitter,
  mounted: Middleware | Gateway,
  options: KoaMountOptions = {},
): () => void {
  const mount = isGateway(mounted) ? undefined : mounts.get(mounted)
  const core = isGateway(mounted) ? mounted : mount?.core
  if (core === undefined || !isGateway(core))
    throw new TypeError('expected what aiGateway() returned, or a gateway')
  return attachToServer(server, core, { prefix: options.prefix ?? mount?.base })
}

/** Translates Koa's context to the core's request and the core's answer back; nothing else. */
function middleware(core: RequestHandlerCore, prefix: string | undefined): Middleware {
  const base = normalizePrefix(prefix)
  const handler: Middleware = async function aiGatewayMiddleware(ctx, next) {
    const url = relativeUrl(ctx.url, base)
    if (url === undefined) return next()
    const body = ctx.request as { body?: unknown; rawBody?: unknown }
    const request = toGatewayRequest(ctx.req, ctx.res, {
      url,
      hostBody: body.body,
      rawBody: body.rawBody,
      host: ctx,
      originalUrl: ctx.originalUrl,
    })
    const response = await core.handle(request)
    if (response === undefined) return next()
    ctx.respond = false
    await writeNodeResponse(ctx.res, response)
  }
  mounts.set(handler, { core, base })
  return handler
}

export default aiGateway
export type { Admin, AdminOptions, Gateway, GatewayOptions }
