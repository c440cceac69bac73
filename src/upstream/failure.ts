import type { ErrorName, GatewayError } from '../errors.js'
import type { ProviderError } from '../providers/dialects/types.js'

/**
 * Why an attempt failed, as far as what to do next goes. A failure's class decides whether the same
 * target is tried again (and under which attempt budget) and whether the next target is tried at all.
 *
 * - `rate_limited`: 429, or the provider's rate-limit error in its stream.
 * - `server_error`: 408, 5xx, 529, an overloaded or internal error in the stream.
 * - `timeout`: no connection, no first byte or no first token in time, or silence before the answer began.
 * - `network`: the connection failed or was cut before the answer was committed.
 * - `context_length`: the prompt does not fit the model's context.
 * - `content_policy`: the provider refused the content; another model must not be asked to launder it.
 * - `auth`: 401 or 403, the provider refused the credential.
 * - `bad_request`: any other 4xx.
 */
export const FAILURE_CLASSES = [
  'rate_limited',
  'server_error',
  'timeout',
  'network',
  'context_length',
  'content_policy',
  'auth',
  'bad_request',
] as const

export type FailureClass = (typeof FAILURE_CLASSES)[number]

/**
 * Which failures move on to the next target by default: all but a content-policy refusal, which comes back
 * as the provider gave it. The reference falls back on any failure.
 */
export const DEFAULT_FALLBACK_ON: readonly FailureClass[] = FAILURE_CLASSES.filter(
  (failure) => failure !== 'content_policy',
)

const TIMEOUTS: ReadonlySet<ErrorName> = new Set([
  'UPSTREAM_CONNECT_TIMEOUT',
  'UPSTREAM_FIRST_BYTE_TIMEOUT',
  'UPSTREAM_FIRST_TOKEN_TIMEOUT',
  'UPSTREAM_IDLE_TIMEOUT',
])
const NETWORK: ReadonlySet<ErrorName> = new Set([
  'PROVIDER_FAILED',
  'UPSTREAM_INTERRUPTED',
  'INVALID_PROVIDER_RESPONSE',
])

// Codes and types providers give these refusals (OpenAI and compatibles, Azure, Anthropic, Gemini), and the
// wording of those that give none: Anthropic's "prompt is too long", Gemini's "exceeds the maximum number
// of tokens".
const CONTEXT_LENGTH =
  /context_length_exceeded|string_above_max_length|prompt is too long|maximum context length|context window|exceeds the maximum number of tokens|input token count/i
const CONTENT_POLICY = /content_policy_violation|content_filter|invalid_prompt|responsibleaipolicyviolation/i
// In-band errors carry no status: their type says which kind of failure they are.
const STREAM_RATE_LIMITED = /rate_limit|resource_exhausted|too_many_requests/i
const STREAM_SERVER_ERROR = /overloaded|server_error|api_error|internal|unavailable|timeout/i

/**
 * The class of a gateway-side failure before the answer was committed; `undefined` for failures that end
 * the request wherever they happen (the client left, the total deadline, a size cap, a bug).
 */
export function classOfError(error: GatewayError): FailureClass | undefined {
  if (TIMEOUTS.has(error.key)) return 'timeout'
  if (NETWORK.has(error.key)) return 'network'
  if (error.key === 'UPSTREAM_STREAM_ERROR')
    return classOfStreamError(error.cause as ProviderError | undefined)
  return undefined
}

/** The class of an error answer: its status, then for a plain 4xx the provider's own code and wording. */
export function classOfAnswer(status: number, error: ProviderError | undefined): FailureClass {
  if (status === 429) return 'rate_limited'
  if (status === 408 || status >= 500) return 'server_error'
  const said = `${error?.type ?? ''} ${error?.message ?? ''}`
  // A policy refusal may come as 403 (Azure) as well as 400: read before the status says `auth`.
  if (CONTENT_POLICY.test(said)) return 'content_policy'
  if (CONTEXT_LENGTH.test(said)) return 'context_length'
  if (status === 401 || status === 403) return 'auth'
  return 'bad_request'
}

/**
 * Whether an error answer's status alone decides its class: a rate limit or a server failure. Only other
 * answers are read before deciding what to do, so a retry never waits on a failed answer's body.
 */
export function statusDecidesClass(status: number): boolean {
  return status === 429 || status === 408 || status >= 500
}

/** The class of an `error` event a provider sent after its 200. */
function classOfStreamError(error: ProviderError | undefined): FailureClass {
  const type = error?.type ?? ''
  if (STREAM_RATE_LIMITED.test(type)) return 'rate_limited'
  if (STREAM_SERVER_ERROR.test(type) || error === undefined) return 'server_error'
  return classOfAnswer(400, error)
}
