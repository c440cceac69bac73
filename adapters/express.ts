import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express'
import { type Admin, type AdminOptions, createAdmin, isAdmin } from '../src/admin/index.js'
import {
  attachWebSockets as attachToServer,
  createGateway,
  type Gateway,
  type GatewayOptions,
  isGateway,
  type UpgradeEmitter,
  type UpgradeOptions,
} from '../src/index.js'
import { answerParserFailure } from '../src/node/host-parser.js'
import { type RequestHandlerCore, toGatewayRequest, writeNodeResponse } from '../src/node/index.js'

// The core behind each middleware made here, so an error handler can be made from the middleware alone.
const cores = new WeakMap<RequestHandler, RequestHandlerCore>()

/**
 * Express middleware (Express 4 and 5). Mount it under a path; requests the gateway does not serve go on
 * to `next()` untouched. Works with or without `express.json()` in front of it; with one, mount
 * {@link aiGatewayErrorHandler} too, so a body the parser refuses gets the gateway's own error.
 *
 * @example
 * app.use('/ai', aiGateway({ providers: { openai: { apiKey: process.env.OPENAI_API_KEY } } }))
 */
export function aiGateway(optionsOrGateway: GatewayOptions | Gateway = {}): RequestHandler {
  return middleware(isGateway(optionsOrGateway) ? optionsOrGateway : createGateway(optionsOrGateway))
}

/**
 * Express middleware for the admin API (logs, analytics, stored keys). Mount it under its own path;
 * requests it does not serve go on to `next()`. Works with or without `express.json()` in front of it.
 *
 * @example
 * app.use('/ai-admin', aiGatewayAdmin({ logs, keys, token: process.env.GATEWAY_ADMIN_TOKEN! }))
 */
export function aiGatewayAdmin(optionsOrAdmin: AdminOptions | Admin): RequestHandler {
  return middleware(isAdmin(optionsOrAdmin) ? optionsOrAdmin : createAdmin(optionsOrAdmin))
}

/**
 * Error handler for a host body parser in front of the gateway. `express.json()` refuses broken JSON (and
 * bodies over its `limit`, 100 kB by default) before the gateway runs, and Express would answer with its
 * HTML error page. On the gateway's mount this answers as the gateway does without a parser: broken JSON
 * reaches it as text (a 400 with code 2112 on compat, 2114 on the universal endpoint; passthrough
 * forwards it to the provider), an oversized body is a 413 with code 2101. Every other error, and every
 * request the gateway does not serve, goes on to `next(error)`. Mount it at the middleware's path, after it.
 *
 * @example
 * const ai = aiGateway({ providers: { openai: { apiKey: process.env.OPENAI_API_KEY } } })
 * app.use(express.json())
 * app.use('/ai', ai, aiGatewayErrorHandler(ai))
 */
export function aiGatewayErrorHandler(mounted: RequestHandler | Gateway | Admin): ErrorRequestHandler {
  const core = isGateway(mounted) || isAdmin(mounted) ? mounted : cores.get(mounted)
  if (core === undefined) throw new TypeError('expected what aiGateway() or aiGatewayAdmin() returned')
  return function aiGatewayErrorHandler(error: unknown, req: Request, res: Response, next: NextFunction) {
    answerParserFailure(core, error, req, res, { url: req.url, host: req, originalUrl: req.originalUrl })
      .then((response) => (response ? writeNodeResponse(res, response) : next(error)))
      .catch(next)
  }
}

/**
 * Serves the gateway's WebSockets (the universal endpoint over a socket, realtime sessions) on the server
 * Express listens on: upgrades under `prefix` (the path the middleware is mounted at) are the gateway's,
 * every other one is left to the server's other `upgrade` listeners, such as your own WebSocket servers.
 * Answers the function that detaches it.
 *
 * @example
 * const ai = aiGateway({ providers: { openai: { apiKey: process.env.OPENAI_API_KEY } } })
 * app.use('/ai', ai)
 * attachWebSockets(app.listen(3000), ai, { prefix: '/ai' })
 */
export function attachWebSockets(
  server: UpgradeEmitter,
  mounted: RequestHandler | Gateway,
  options: UpgradeOptions = {},
): () => void {
  const core = isGateway(mounted) ? mounted : cores.get(mounted)
  if (core === undefined || !isGateway(core))
    throw new TypeError('expected what aiGateway() returned, or a gateway')
  return attachToServer(server, core, options)
}

/** Translates Express's request to the core's and the core's answer back; nothing else. */
function middleware(core: RequestHandlerCore): RequestHandler {
  const handler: RequestHandler = function aiGatewayMiddleware(req, res, next) {
    const request = toGatewayRequest(req, res, {
      url: req.url,
      hostBody: req.body,
      rawBody: (req as { rawBody?: unknown }).rawBody,
      host: req,
      originalUrl: req.originalUrl,
    })
    core
      .handle(request)
      .then((response) => (response ? writeNodeResponse(res, response) : next()))
      .catch(next)
  }
  cores.set(handler, core)
  return handler
}

export default aiGateway
export type { Admin, AdminOptions, Gateway, GatewayOptions }
