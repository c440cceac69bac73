/**
 * The one catalog of errors the gateway makes itself. Codes are stable forever: never renumber or reuse
 * one. 2001-2044 follow Cloudflare AI Gateway; 2100 and up are ours. The README's table is checked against
 * this object by `test/unit/errors.test.ts`.
 */
export const ERRORS = {
  GATEWAY_NOT_FOUND: { code: 2001, status: 400, message: 'Gateway not found' },
  RATE_LIMITED: { code: 2003, status: 429, message: 'Rate limited' },
  PROVIDER_FAILED: { code: 2005, status: 502, message: 'Failed to get response from provider' },
  INVALID_PROVIDER: { code: 2008, status: 400, message: 'Invalid provider' },
  UNAUTHORIZED: { code: 2009, status: 401, message: 'Unauthorized' },
  UNKNOWN_KEY_ALIAS: { code: 2040, status: 400, message: 'Unknown stored key alias' },
  MISSING_PROVIDER_CREDENTIALS: { code: 2044, status: 400, message: 'No provider credentials' },
  INVALID_HEADER: { code: 2100, status: 400, message: 'Invalid request header' },
  BODY_TOO_LARGE: { code: 2101, status: 413, message: 'Request body too large' },
  INVALID_PROVIDER_PATH: { code: 2102, status: 400, message: 'Invalid provider path' },
  PROVIDER_NOT_CONFIGURED: { code: 2103, status: 500, message: 'Provider is not configured' },
  UPSTREAM_CONNECT_TIMEOUT: { code: 2104, status: 504, message: 'Timed out connecting to provider' },
  UPSTREAM_FIRST_BYTE_TIMEOUT: {
    code: 2105,
    status: 504,
    message: 'Provider did not start answering in time',
  },
  UPSTREAM_IDLE_TIMEOUT: { code: 2106, status: 504, message: 'Provider stopped sending data' },
  UPSTREAM_DEADLINE: { code: 2107, status: 504, message: 'Provider response exceeded the total deadline' },
  UPSTREAM_INTERRUPTED: { code: 2108, status: 502, message: 'Provider response was interrupted' },
  CLIENT_CLOSED: { code: 2109, status: 499, message: 'Client closed the request' },
  INTERNAL: { code: 2110, status: 500, message: 'Internal gateway error' },
  STEP_NEXT_TWICE: { code: 2111, status: 500, message: 'A step called next() more than once' },
  INVALID_REQUEST_BODY: { code: 2112, status: 400, message: 'Invalid request body' },
  UNSUPPORTED_PARAMETER: {
    code: 2113,
    status: 400,
    message: 'Request cannot be translated for this provider',
  },
  INVALID_UNIVERSAL_REQUEST: { code: 2114, status: 400, message: 'Invalid universal request' },
  INVALID_PROVIDER_RESPONSE: { code: 2115, status: 502, message: 'Provider response could not be read' },
  LIMIT_STORE_UNAVAILABLE: {
    code: 2116,
    status: 503,
    message: 'Rate limit store unavailable and the limit fails closed',
  },
  KEY_STORE_UNAVAILABLE: { code: 2117, status: 503, message: 'Key store unavailable' },
  NOT_FOUND: { code: 2118, status: 404, message: 'Not found' },
  METHOD_NOT_ALLOWED: { code: 2119, status: 405, message: 'Method not allowed' },
  INVALID_QUERY: { code: 2120, status: 400, message: 'Invalid query' },
  RESPONSE_TOO_LARGE: { code: 2121, status: 502, message: 'Provider response exceeded a size limit' },
} as const satisfies Record<string, { code: number; status: number; message: string }>

export type ErrorName = keyof typeof ERRORS

const kGatewayError = Symbol.for('ai-gateway-middleware.error')

/**
 * An error the gateway answers with its own body. Steps throw it; one renderer turns it into a response.
 *
 * @example
 * throw new GatewayError('INVALID_HEADER', "cf-aig-request-timeout must be a positive integer, got 'soon'")
 */
export class GatewayError extends Error {
  override readonly name = 'AiGatewayError'
  /** Catalog key, e.g. `INVALID_PROVIDER`. */
  readonly key: ErrorName
  /** Stable numeric code, e.g. 2008. */
  readonly code: number
  /** HTTP status the error is answered with. */
  readonly status: number
  /** Extra response headers (e.g. `retry-after`). */
  readonly headers: Record<string, string> | undefined

  constructor(
    key: ErrorName,
    detail?: string,
    options?: { cause?: unknown; headers?: Record<string, string> },
  ) {
    const entry = ERRORS[key]
    super(detail ? `${entry.message}: ${detail}` : entry.message, { cause: options?.cause })
    this.key = key
    this.code = entry.code
    this.status = entry.status
    this.headers = options?.headers
  }

  /** Recognises errors from another copy of this package too (ESM and CJS builds side by side). */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[kGatewayError] === true
    )
  }

  get [kGatewayError](): true {
    return true
  }
}

/** Wraps anything thrown into a `GatewayError`; unknown errors become `INTERNAL` with the original as `cause`. */
export function toGatewayError(error: unknown): GatewayError {
  return error instanceof GatewayError ? error : new GatewayError('INTERNAL', undefined, { cause: error })
}

/**
 * The reference's error body, so clients of Cloudflare's gateway read ours the same way. On the
 * OpenAI-compatible surface `error` is OpenAI's object instead of the reference's array, so the OpenAI SDKs
 * show the message (they read `error.message`); every other field stays.
 */
export function errorBody(error: GatewayError, dialect: 'reference' | 'openai' = 'reference'): string {
  return JSON.stringify({
    success: false,
    result: [],
    messages: [],
    error:
      dialect === 'openai'
        ? { message: error.message, type: 'gateway_error', param: null, code: error.code }
        : [{ code: error.code, message: error.message }],
    name: error.name,
    httpCode: error.status,
    internalCode: error.code,
    message: error.message,
  })
}
