import type { Usage } from '../../cost/cost.js'
import type { GatewayError } from '../../errors.js'
import { isRecord } from '../../json.js'
import type { Dialect } from '../types.js'
import {
  bodyOrPathModel,
  bodyStreams,
  endpointStream,
  field,
  firstError,
  lastEventUsage,
  nestedError,
  none,
  patternAssembler,
  plausibleReader,
  tokens,
  withCache,
} from './common.js'
import { NO_TEXT, OPENAI_TEXT } from './text.js'
import type { DialectSpec, StreamGrammar, UsageReader } from './types.js'

const OUTPUT_CAP_FIELDS = ['max_tokens', 'max_completion_tokens', 'max_output_tokens'] as const

/**
 * `usage.prompt_tokens` / `completion_tokens` / `prompt_tokens_details.cached_tokens`, the Responses API's
 * `input_tokens` / `output_tokens` / `input_tokens_details.cached_tokens` (top level or under `response`,
 * as its `response.completed` event has it), DeepSeek's `prompt_cache_hit_tokens` and Groq's `x_groq.usage`.
 */
function openaiUsage(body: unknown): Usage | undefined {
  if (!isRecord(body)) return undefined
  const usage = usageObject(body)
  if (usage === undefined) return undefined
  const input = tokens(usage.prompt_tokens) ?? tokens(usage.input_tokens)
  const output = tokens(usage.completion_tokens) ?? tokens(usage.output_tokens)
  if (input === undefined && output === undefined) return undefined
  const cached =
    tokens(field(usage.prompt_tokens_details, 'cached_tokens')) ??
    tokens(field(usage.input_tokens_details, 'cached_tokens')) ??
    tokens(usage.prompt_cache_hit_tokens)
  return withCache({ inputTokens: input ?? 0, outputTokens: output ?? 0, inputIncludesCache: true }, cached)
}

/**
 * Where the usage object is: Chat Completions' `usage`, the Responses API's `response.usage`, or Groq's
 * `x_groq.usage`, the first that is an object. Read with a test each, not a list searched: this runs for
 * every answer logged, and the lists cost more than the reading.
 */
function usageObject(body: Record<string, unknown>): Record<string, unknown> | undefined {
  if (isRecord(body.usage)) return body.usage
  const responses = field(body.response, 'usage')
  if (isRecord(responses)) return responses
  const groq = field(body.x_groq, 'usage')
  return isRecord(groq) ? groq : undefined
}

/**
 * OpenAI's usage, also what OpenAI-compatible and native providers are read with. A stream's is its last
 * chunk carrying usage (sent when `stream_options.include_usage` is set), or the Responses API's
 * `response.completed` event.
 */
export const OPENAI_USAGE: UsageReader = plausibleReader({
  fromJson: openaiUsage,
  jsonField: 'usage',
  fromStream: lastEventUsage(openaiUsage, 'usage'),
})

function openaiTerminalEvent(error: GatewayError): string {
  return `data: ${JSON.stringify({ error: { message: error.message, type: 'gateway_error', param: null, code: error.code } })}\n\n`
}

function openaiOutputCap(body: unknown): number | undefined {
  if (!isRecord(body)) return undefined
  let cap: number | undefined
  for (const name of OUTPUT_CAP_FIELDS) if (typeof body[name] === 'number') cap = body[name]
  return cap
}

// The first chunk names the role with empty content; the answer starts with text, a refusal, reasoning or a
// tool call, or with the finish of an empty answer.
const CHAT_ANSWER_START =
  /"(?:content|refusal|reasoning_content|reasoning)":\s*"(?!")|"(?:tool_calls|function_call)":\s*[[{]|"finish_reason":\s*"/

/** Chat Completions streams, which end with `[DONE]` after the chunk with the finish reason. */
export const CHAT_STREAM: StreamGrammar = {
  terminator: 'data: [DONE]',
  finish: '"finish_reason":"',
  closing: 'data: [DONE]\n\n',
  errorMarker: '"error"',
  inBandError: (events) => firstError(events, nestedError),
  answerStart: (events) => events.search(CHAT_ANSWER_START),
}

// Other streams (the Responses API, which ends without `[DONE]`) are neither checked nor held.
const chatStream = endpointStream(/\/chat\/completions$/, CHAT_STREAM)

export const openaiDialect: DialectSpec = {
  name: 'openai',
  codec: undefined,
  usage: OPENAI_USAGE,
  stream: chatStream,
  providerError: nestedError,
  terminalEvent: openaiTerminalEvent,
  assemble: patternAssembler('"delta":\\{[^{}]*?"content":', '"finish_reason":"'),
  model: bodyOrPathModel,
  outputCap: openaiOutputCap,
  streams: bodyStreams,
  text: OPENAI_TEXT,
}

/** Workers AI: OpenAI's stream framing and errors on its `/v1/chat/completions`; its logs stay raw. */
export const workersAiDialect: DialectSpec = { ...openaiDialect, name: 'workers-ai', assemble: none }

/**
 * A dialect the gateway does not look into (Cohere's own API, native media APIs): usage is read as OpenAI's
 * when it happens to be there; streams are neither checked nor ended with an error event.
 */
export function opaqueDialect(name: Dialect): DialectSpec {
  return {
    name,
    codec: undefined,
    usage: OPENAI_USAGE,
    stream: none,
    providerError: nestedError,
    terminalEvent: none,
    assemble: none,
    model: bodyOrPathModel,
    outputCap: openaiOutputCap,
    streams: bodyStreams,
    text: NO_TEXT,
  }
}
