import type { GatewayError } from '../../errors.js'
import { splitQuery } from '../../url.js'
import type { Dialect } from '../types.js'

/**
 * The last event of a stream that failed after it started, in the client's dialect, so that SDKs raise an
 * error instead of taking a cut answer for a complete one. Never a `[DONE]`. Dialects without an in-band
 * error form get none: their stream is cut off instead.
 */
export function terminalEvent(dialect: Dialect, error: GatewayError): string | undefined {
  switch (dialect) {
    case 'openai':
    case 'workers-ai':
      return `data: ${JSON.stringify({ error: { message: error.message, type: 'gateway_error', param: null, code: error.code } })}\n\n`
    case 'anthropic':
      return `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'api_error', message: error.message } })}\n\n`
    case 'gemini':
      return `data: ${JSON.stringify({ error: { code: error.status, message: error.message, status: 'UNAVAILABLE' } })}\n\n`
    default:
      return undefined
  }
}

// Streaming endpoints whose last event is known, per dialect. Other streams (OpenAI's Responses API, say,
// which ends without `[DONE]`) are not checked, so that a complete stream is never flagged.
const TERMINATORS: readonly { dialect: Dialect; path: RegExp; terminator: string }[] = [
  { dialect: 'openai', path: /\/chat\/completions$/, terminator: 'data: [DONE]' },
  { dialect: 'workers-ai', path: /\/chat\/completions$/, terminator: 'data: [DONE]' },
  { dialect: 'anthropic', path: /\/v1\/messages$/, terminator: 'event: message_stop' },
  { dialect: 'gemini', path: /:streamGenerateContent$/, terminator: '"finishReason"' },
]

/** The text a complete stream from this endpoint ends with, when it is known. */
export function streamTerminator(dialect: Dialect, path: string): string | undefined {
  const { path: pathname } = splitQuery(path)
  return TERMINATORS.find((entry) => entry.dialect === dialect && entry.path.test(pathname))?.terminator
}
