import { type ErrorName, GatewayError } from '../errors.js'
import type { Scrubber } from '../secrets.js'

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
 * deadline), which wins over whatever undici reported for the cancelled socket. The error it wraps is kept
 * as `cause`, scrubbed of the secrets the request carried (`scrubber`).
 */
export function toUpstreamError(
  error: unknown,
  signal: { aborted: boolean; reason: unknown },
  scrubber: Scrubber | undefined,
): GatewayError {
  if (signal.aborted && signal.reason instanceof GatewayError) return signal.reason
  if (error instanceof GatewayError) return error
  const code = (error as { code?: unknown } | null)?.code
  const name = (typeof code === 'string' ? NETWORK_ERRORS[code] : undefined) ?? unreadable(error)
  if (scrubber !== undefined) scrubParserData(error, scrubber)
  return new GatewayError(name ?? 'PROVIDER_FAILED', typeof code === 'string' ? code : undefined, {
    cause: error,
  })
}

/**
 * An answer that arrived but cannot be read is not an unreachable provider (2005): undici's HTTP parser
 * refused it (a malformed status line, a bad chunk size), or its coding is corrupt.
 */
function unreadable(error: unknown): ErrorName | undefined {
  const parser = (error as { name?: unknown } | null)?.name === 'HTTPParserError'
  return parser || isZlibError(error) ? 'INVALID_PROVIDER_RESPONSE' : undefined
}

/** An error of node:zlib (gzip, deflate, brotli): a negative `errno` and zlib's or brotli's code name. */
export function isZlibError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const { errno, code } = error as { errno?: unknown; code?: unknown }
  return typeof errno === 'number' && typeof code === 'string' && /^(?:Z_|ERR__ERROR_)/.test(code)
}

/**
 * undici's parser error keeps the provider's bytes from where parsing failed (`data`), and those may quote
 * the key the gateway sent. The error was made for this request's connection, so it is scrubbed in place.
 */
function scrubParserData(error: unknown, scrubber: Scrubber): void {
  const failed = error as { data?: unknown } | null
  if (typeof failed?.data === 'string') failed.data = scrubber.scrubText(failed.data)
}
