import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { createGateway, type Gateway, type GatewayOptions, isGateway } from '../src/index.js'
import { toGatewayRequest, writeNodeResponse } from '../src/node/index.js'

/**
 * Express middleware (Express 4 and 5). Mount it under a path; requests the gateway does not serve go on
 * to `next()` untouched. Works with or without `express.json()` in front of it.
 *
 * @example
 * app.use('/ai', aiGateway({ providers: { openai: { apiKey: process.env.OPENAI_API_KEY } } }))
 */
export function aiGateway(optionsOrGateway: GatewayOptions | Gateway = {}): RequestHandler {
  const gateway = isGateway(optionsOrGateway) ? optionsOrGateway : createGateway(optionsOrGateway)
  return function aiGatewayMiddleware(req: Request, res: Response, next: NextFunction) {
    const request = toGatewayRequest(req, res, {
      url: req.url,
      hostBody: req.body,
      rawBody: (req as { rawBody?: unknown }).rawBody,
      host: req,
    })
    gateway
      .handle(request)
      .then((response) => (response ? writeNodeResponse(res, response) : next()))
      .catch(next)
  }
}

export default aiGateway
export type { Gateway, GatewayOptions }
