export { type NodeRequestOptions, normalizePrefix, relativeUrl, toGatewayRequest } from './request.js'
export { writeNodeResponse } from './response.js'
