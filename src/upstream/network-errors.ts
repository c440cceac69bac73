import { type ErrorName, GatewayError } from '../errors.js'

// undici and socket error codes → catalog entries. The upstream's address and the error text stay out of the
// message (they can carry hostnames and, for Google, a `?key=`); only the code is named.
const NETWORK_ERRORS: Readonly<Record<string, ErrorName>> = {
  UND_ERR_CONNECT_TIMEOUT: 'UPSTREAM_CONNECT_TIMEOUT',
  UND_ERR_HEADERS_TIMEOUT: 'UPSTREAM_FIRST_BYTE_TIMEOUT',
  UND_ERR_BODY_TIMEOUT: 'UPSTREAM_IDLE_TIMEOUT',
  UND_ERR_SOCKET: 'UPSTREAM_INTERRUPTED',
  UND_ERR_CLOSED: 'UPSTREAM_INTERRUPTED',
  ECONNRESET: 'UPSTREAM_INTERRUPTED',
  EPIPE: 'UPSTREAM_INTERRUPTED',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'UPSTREAM_INTERRUPTED',
  ECONNREFUSED: 'PROVIDER_FAILED',
  ENOTFOUND: 'PROVIDER_FAILED',
  EAI_AGAIN: 'PROVIDER_FAILED',
  EHOSTUNREACH: 'PROVIDER_FAILED',
  ENETUNREACH: 'PROVIDER_FAILED',
  ETIMEDOUT: 'UPSTREAM_CONNECT_TIMEOUT',
}

/**
 * Turns what an upstream call threw into a catalog error. An abort carries its own reason (client gone,
 * deadline), which wins over whatever undici reported for the cancelled socket.
 */
export function toUpstreamError(error: unknown, signal: { aborted: boolean; reason: unknown }): GatewayError {
  if (signal.aborted && signal.reason instanceof GatewayError) return signal.reason
  if (error instanceof GatewayError) return error
  const code = (error as { code?: unknown } | null)?.code
  const name = typeof code === 'string' ? NETWORK_ERRORS[code] : undefined
  return new GatewayError(name ?? 'PROVIDER_FAILED', typeof code === 'string' ? code : undefined, {
    cause: error,
  })
}
