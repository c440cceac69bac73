import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { type Admin, type AdminOptions, createAdmin, isAdmin } from '../src/admin/index.js'
import { createGateway, type Gateway, type GatewayOptions, isGateway } from '../src/index.js'
import { type RequestHandlerCore, toGatewayRequest, writeNodeResponse } from '../src/node/index.js'

/**
 * Express middleware (Express 4 and 5). Mount it under a path; requests the gateway does not serve go on
 * to `next()` untouched. Works with or without `express.json()` in front of it.
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

/** Translates Express's request to the core's and the core's answer back; nothing else. */
function middleware(core: RequestHandlerCore): RequestHandler {
  return function aiGatewayMiddleware(req: Request, res: Response, next: NextFunction) {
    const request = toGatewayRequest(req, res, {
      url: req.url,
      hostBody: req.body,
      rawBody: (req as { rawBody?: unknown }).rawBody,
      host: req,
    })
    core
      .handle(request)
      .then((response) => (response ? writeNodeResponse(res, response) : next()))
      .catch(next)
  }
}

export default aiGateway
export type { Admin, AdminOptions, Gateway, GatewayOptions }
