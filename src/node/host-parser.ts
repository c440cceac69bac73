import type { IncomingMessage, ServerResponse } from 'node:http'
import { GatewayError } from '../errors.js'
import type { GatewayRequest, GatewayResponse } from '../types.js'
import { isZlibError } from '../upstream/network-errors.js'
import type { RequestHandlerCore } from './index.js'
import { toGatewayRequest } from './request.js'

/**
 * What a host body parser's failure leaves for the core: the text it read and could not parse, or the
 * gateway's own error for what it refused before parsing.
 */
export type HostParserFailure =
  | { readonly text: string; readonly error?: undefined }
  | { readonly text?: undefined; readonly error: GatewayError }

/**
 * Recognises the errors of the body parsers in front of a mount (Express's `body-parser`, Koa's `co-body`
 * under `@koa/bodyparser`, both on `raw-body`) by the `type` they carry, or, for co-body's
 * JSON, a `SyntaxError` with status 400 and the body it read, and a compressed body neither could inflate. Anything else (a host's `verify` hook, an
 * aborted upload, the host's own errors) is not the gateway's to answer: undefined.
 *
 * @example
 * hostParserFailure(bodyParserError) // { text: '{"model": ' }
 */
export function hostParserFailure(error: unknown): HostParserFailure | undefined {
  if (typeof error !== 'object' || error === null) return undefined
  const { type, status, body, limit, charset } = error as Record<string, unknown>
  const unparsed = type === 'entity.parse.failed' || (error instanceof SyntaxError && status === 400)
  if (unparsed && typeof body === 'string') return { text: body }
  // Both parsers pass a decompression failure on as zlib threw it, with no `type`; co-body's `inflation`
  // refuses a coding it does not know with a bare 415.
  if (isZlibError(error)) return refused('INVALID_REQUEST_BODY', 'the body could not be decompressed')
  if (status === 415 && /^Unsupported Content-Encoding/.test(String((error as Error).message))) {
    return refused('INVALID_REQUEST_BODY', 'the content-encoding is not supported')
  }
  switch (unparsed ? 'entity.parse.failed' : type) {
    case 'entity.parse.failed':
      return refused('INVALID_REQUEST_BODY', 'the body is not valid JSON')
    case 'entity.too.large':
      return refused('BODY_TOO_LARGE', `the host's body parser allows ${String(limit)} bytes`)
    case 'request.size.invalid':
      return refused('INVALID_REQUEST_BODY', 'the body does not have the length content-length gives')
    case 'encoding.unsupported':
      return refused('INVALID_REQUEST_BODY', 'the content-encoding is not supported')
    case 'charset.unsupported':
      return refused(
        'INVALID_REQUEST_BODY',
        `the charset ${JSON.stringify(String(charset))} is not supported`,
      )
    case 'parameters.too.many':
      return refused('INVALID_REQUEST_BODY', 'the form has too many parameters')
    default:
      return undefined
  }
}

function refused(key: 'INVALID_REQUEST_BODY' | 'BODY_TOO_LARGE', detail: string): HostParserFailure {
  return { error: new GatewayError(key, detail) }
}

/**
 * The core's request for one a host parser failed on. Text it read goes to the core as the body, so the
 * gateway answers exactly as it does without a parser (its own 400 for broken JSON on compat and
 * universal; the bytes forwarded on passthrough, where the provider judges them). A refusal rejects the
 * body read, so the step that needs the body answers with it through the gateway's one error path
 * (logged, `onError`, the surface's error dialect).
 */
export function failedBodyRequest(
  req: IncomingMessage,
  res: ServerResponse,
  options: { url: string; host: unknown; originalUrl?: string | undefined },
  failure: HostParserFailure,
): GatewayRequest {
  if (failure.error !== undefined) return toGatewayRequest(req, res, { ...options, bodyError: failure.error })
  // The parser inflated a compressed body before it failed: the encoding no longer describes the text.
  return toGatewayRequest(req, res, { ...options, rawBody: failure.text, decoded: true })
}

/**
 * The core's answer to a request a host parser threw `error` for, or undefined when that is not the
 * core's to answer (not a parser failure, a `url` outside the mount, a path the core does not serve): the
 * adapter passes the error on then.
 *
 * @example
 * const response = await answerParserFailure(gateway, error, req, res, { url: req.url, host: req })
 * if (response === undefined) return next(error)
 */
export async function answerParserFailure(
  core: RequestHandlerCore,
  error: unknown,
  req: IncomingMessage,
  res: ServerResponse,
  options: { url: string | undefined; host: unknown; originalUrl?: string | undefined },
): Promise<GatewayResponse | undefined> {
  const { url, host, originalUrl } = options
  const failure = hostParserFailure(error)
  if (failure === undefined || url === undefined || res.headersSent) return undefined
  return core.handle(failedBodyRequest(req, res, { url, host, originalUrl }, failure))
}
