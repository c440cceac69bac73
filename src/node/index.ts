import type { GatewayRequest, GatewayResponse } from '../types.js'

export { type NodeRequestOptions, normalizePrefix, relativeUrl, toGatewayRequest } from './request.js'
export { writeNodeResponse } from './response.js'

/** What an adapter mounts: the gateway, or the admin API. `undefined` means "not mine: call next". */
export interface RequestHandlerCore {
  handle(request: GatewayRequest): Promise<GatewayResponse | undefined>
}
