/**
 * The library's one error catalog, in two parts, each checked against its README table by
 * `test/unit/errors.test.ts`:
 *
 * - `ERRORS`: wire errors, the ones the gateway answers a client with (`GatewayError`, numeric codes).
 * - `LIBRARY_ERRORS`: errors thrown at the host's code (bad options, store failures, bad log queries),
 *   never sent as they are; each has a class made by `libraryError()` and a stable string code.
 *
 * Codes are stable forever: never renumber, rename or reuse one.
 */
import type { KeyStoreErrorReason } from './keys/types.js'
import type { GatewayResponse } from './types.js'

/**
 * Wire errors. 2001-2044 follow Cloudflare AI Gateway; 2100 and up are ours.
 */
export const ERRORS = {
  GATEWAY_NOT_FOUND: { code: 2001, status: 400, message: 'Gateway not found' },
  RATE_LIMITED: { code: 2003, status: 429, message: 'Rate limited' },
  PROVIDER_FAILED: { code: 2005, status: 502, message: 'Failed to get response from provider' },
  INVALID_PROVIDER: { code: 2008, status: 400, message: 'Invalid provider' },
  UNAUTHORIZED: { code: 2009, status: 401, message: 'Unauthorized' },
  PROMPT_BLOCKED: { code: 2016, status: 424, message: 'Prompt blocked due to security configurations' },
  ANSWER_BLOCKED: { code: 2017, status: 424, message: 'Response blocked due to security configurations' },
  DLP_REQUEST_BLOCKED: {
    code: 2029,
    status: 400,
    message: 'Request content blocked due to DLP policy violations',
  },
  DLP_RESPONSE_BLOCKED: {
    code: 2030,
    status: 400,
    message: 'Response content blocked due to DLP policy violations',
  },
  UNKNOWN_KEY_ALIAS: { code: 2040, status: 400, message: 'Unknown stored key alias' },
  SPEND_LIMITED: { code: 2041, status: 429, message: 'Spend limit exceeded' },
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
  CALLER_KEY_REFUSED: { code: 2122, status: 400, message: 'Provider keys from callers are not accepted' },
  UPSTREAM_FIRST_TOKEN_TIMEOUT: {
    code: 2123,
    status: 504,
    message: 'Provider did not start its answer in time',
  },
  UPSTREAM_STREAM_ERROR: { code: 2124, status: 502, message: 'Provider reported an error in its stream' },
  UPSTREAM_CIRCUIT_OPEN: {
    code: 2125,
    status: 503,
    message: 'Provider skipped while its circuit breaker is open',
  },
  INVALID_ROUTE: { code: 2126, status: 400, message: 'Invalid dynamic route' },
  ROUTE_NOT_FOUND: { code: 2127, status: 400, message: 'Dynamic route not found' },
  ROUTE_STORE_UNAVAILABLE: { code: 2128, status: 503, message: 'Route store unavailable' },
  ROUTE_WITHOUT_MODEL: { code: 2129, status: 400, message: 'Dynamic route chose no model' },
  POLICY_DENIED: { code: 2130, status: 403, message: 'Access denied by policy' },
  POLICY_SPEND_LIMITED: { code: 2131, status: 429, message: 'Spending limit exceeded' },
  GUARDRAIL_UNAVAILABLE: {
    code: 2132,
    status: 503,
    message: 'Guardrail classifier unavailable and a block rule applies',
  },
  CROSS_SITE_REFUSED: { code: 2133, status: 403, message: 'Cross-site request refused' },
  WEBSOCKET_NOT_SUPPORTED: { code: 2134, status: 400, message: 'This path does not serve WebSockets' },
  TOO_MANY_IN_FLIGHT: { code: 2135, status: 429, message: 'Too many requests in flight on this socket' },
  INVALID_WEBSOCKET_MESSAGE: { code: 2136, status: 400, message: 'Invalid WebSocket message' },
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
  /**
   * A body of the reference's own shape for this error, answered in place of `errorBody`'s: its policy
   * refusals are `{ success: false, error: { message, ... } }`, not the catalog's array.
   */
  readonly body: Readonly<Record<string, unknown>> | undefined

  constructor(
    key: ErrorName,
    detail?: string,
    options?: { cause?: unknown; headers?: Record<string, string>; body?: Record<string, unknown> },
  ) {
    const entry = ERRORS[key]
    super(detail ? `${entry.message}: ${detail}` : entry.message, { cause: options?.cause })
    this.key = key
    this.code = entry.code
    this.status = entry.status
    this.headers = options?.headers
    this.body = options?.body
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

/**
 * The one renderer for gateway-made errors: the body of `errorBody` as a JSON response with the error's
 * status and extra headers. The gateway and the admin API both answer with it.
 *
 * @example
 * renderError(new GatewayError('NOT_FOUND')) // { status: 404, headers: { 'content-type': 'application/json', ... }, body }
 */
export function renderError(
  error: GatewayError,
  dialect: 'reference' | 'openai' = 'reference',
): GatewayResponse {
  const body = error.body === undefined ? errorBody(error, dialect) : JSON.stringify(error.body)
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    ...error.headers,
  }
  // No `connection: close` on a 413: Node would then cut the connection as soon as the answer is out, with
  // the client still sending, and reset it (EPIPE / ECONNRESET, which SDKs retry). The Node bridge reads
  // the rest of an oversized upload, within a bound, and throws it away instead (src/node/request.ts).
  return { status: error.status, headers, body }
}

/**
 * Library errors: thrown at the host's code, never answered to a client as they are (the admin API maps
 * the ones it knows to wire errors). `name` is the class name; `code` is stable and what to match on.
 */
export const LIBRARY_ERRORS = {
  INVALID_OPTIONS: {
    code: 'GW_ERR_INVALID_OPTIONS',
    name: 'GatewayOptionsError',
    message: 'Gateway or admin options are wrong',
  },
  INVALID_LOG_QUERY: {
    code: 'GW_ERR_INVALID_REQUEST',
    name: 'LogQueryError',
    message: 'A log query, selection, patch or analytics query does not validate',
  },
  INVALID_LOG_RECORD: {
    code: 'GW_ERR_INVALID_LOG_RECORD',
    name: 'LogRecordError',
    message: 'A log record handed to a store cannot be kept as given',
  },
  STORE_TIMEOUT: {
    code: 'GW_ERR_STORE_TIMEOUT',
    name: 'StoreTimeoutError',
    message: 'A store did not answer in time',
  },
  KEY_STORE: { code: 'GW_ERR_KEY_STORE', name: 'KeyStoreError', message: 'A stored-key operation failed' },
} as const satisfies Record<string, { code: `GW_ERR_${string}`; name: string; message: string }>

export type LibraryErrorName = keyof typeof LIBRARY_ERRORS

type ErrorBase = new (message?: string, options?: ErrorOptions) => Error

/**
 * Makes the class of one `LIBRARY_ERRORS` entry, Fastify's `createError` style: `name` and `code` from the
 * catalog, `message` and `cause` from the caller, `Base` (`Error` or `TypeError`) for `instanceof` checks
 * hosts already make. `instanceof` is decided by a `Symbol.for` brand, so an error from another copy of
 * this package (ESM and CJS builds side by side) is still recognised, as for `GatewayError`; a host's own
 * subclass of a catalog class keeps the ordinary prototype check.
 */
function libraryError<K extends LibraryErrorName>(key: K, Base: ErrorBase = Error) {
  const { name, code } = LIBRARY_ERRORS[key]
  const brand = Symbol.for(`ai-gateway-middleware.error.${code}`)
  class LibraryError extends Base {
    override readonly name: (typeof LIBRARY_ERRORS)[K]['name'] = name
    /** Stable string code from `LIBRARY_ERRORS`. */
    readonly code: (typeof LIBRARY_ERRORS)[K]['code'] = code

    constructor(message: string, options?: { cause?: unknown }) {
      super(message, options)
    }
  }
  Object.defineProperty(LibraryError.prototype, brand, { value: true })
  Object.defineProperty(LibraryError, Symbol.hasInstance, {
    // `this` is the class on the right of `instanceof`: the catalog class, the named class extending it,
    // or a host's own subclass of that, which keeps the ordinary prototype check.
    value(this: object, value: unknown): boolean {
      if (this === LibraryError || Object.getPrototypeOf(this) === LibraryError) {
        return (
          typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true
        )
      }
      return Function.prototype[Symbol.hasInstance].call(this, value)
    },
  })
  return LibraryError
}

/**
 * A misconfiguration found at construction (`createGateway`, `createAdmin`); the message names every wrong
 * option. A `TypeError`.
 *
 * @example
 * try {
 *   createGateway({ timeouts: { firstByteMs: -1 } })
 * } catch (error) {
 *   if (error instanceof GatewayOptionsError) console.error(error.message) // Invalid gateway options: ...
 * }
 */
export class GatewayOptionsError extends libraryError('INVALID_OPTIONS', TypeError) {}

/** One problem with a log query or record: where (`filters.0.op`) and what. */
export interface LogQueryIssue {
  path: string
  message: string
}

/**
 * A log query, patch or analytics request that does not validate (an admin API answers 400); `issues` names
 * each bad field.
 *
 * @example
 * try {
 *   await store.list({ limit: 0 })
 * } catch (error) {
 *   if (error instanceof LogQueryError) console.log(error.issues) // [{ path: 'limit', message: '...' }]
 * }
 */
export class LogQueryError extends libraryError('INVALID_LOG_QUERY') {
  readonly issues: LogQueryIssue[]

  constructor(what: string, issues: LogQueryIssue[]) {
    super(
      `Invalid ${what}: ${issues.map((issue) => `${issue.path || '(root)'}: ${issue.message}`).join('; ')}`,
    )
    this.issues = issues
  }
}

/**
 * A record handed to a log store's `write` that it cannot keep as given; nothing of the batch is written.
 * A `TypeError`.
 *
 * @example
 * await store.write([{ ...record, score: 101 }]) // LogRecordError: Invalid log record: [0].score: ...
 */
export class LogRecordError extends libraryError('INVALID_LOG_RECORD', TypeError) {
  readonly issues: LogQueryIssue[]

  constructor(issues: LogQueryIssue[]) {
    super(`Invalid log record: ${issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ')}`)
    this.issues = issues
  }
}

/**
 * A store call that did not answer within its time, or that reached the store after it. The gateway then
 * applies the store's failure policy; it reaches the host in `store:error` events.
 *
 * @example
 * gateway.events.on('store:error', (e) => {
 *   if (e.error instanceof StoreTimeoutError) metrics.increment('store.timeout', { store: e.store })
 * })
 */
export class StoreTimeoutError extends libraryError('STORE_TIMEOUT') {
  constructor(ms: number, message = `the store did not answer within ${ms} ms`) {
    super(message)
  }
}

/**
 * The one error type of stored keys; `reason` says what went wrong (see `KeyStoreErrorReason`). Messages
 * name providers, aliases and key ids, never secret material. Secret stores a host writes throw it too
 * (`store-unavailable` for a backend failure).
 *
 * @example
 * try {
 *   await keys.getSecret('openai', 'default')
 * } catch (error) {
 *   if (error instanceof KeyStoreError && error.reason === 'unknown-master-key') alertOperator(error)
 * }
 */
export class KeyStoreError extends libraryError('KEY_STORE') {
  readonly reason: KeyStoreErrorReason

  constructor(reason: KeyStoreErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.reason = reason
  }
}
