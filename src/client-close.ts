import type { GatewayRequest } from './types.js'

/** Whether the client went away before its response was finished. */
export function clientGone(request: GatewayRequest): boolean {
  return request.clientClosed ?? request.signal.aborted
}

/**
 * Calls `listener` once if the client goes away; returns what stops listening. Through the adapter's own
 * close event when it has one, else the request's signal.
 */
export function onClientClose(request: GatewayRequest, listener: () => void): () => void {
  if (request.onClientClose !== undefined) return request.onClientClose(listener)
  const { signal } = request
  signal.addEventListener('abort', listener, { once: true })
  return () => signal.removeEventListener('abort', listener)
}
