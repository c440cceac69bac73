import type { Usage } from '../../cost/cost.js'
import type { GatewayError } from '../../errors.js'
import { isRecord } from '../../json.js'
import { withFields } from '../../objects.js'
import { anthropicCodec } from './anthropic.js'
import {
  bodyOrPathModel,
  bodyStreams,
  endpointStream,
  firstError,
  patternAssembler,
  plausibleReader,
  tokens,
  usageEvents,
  withCache,
} from './common.js'
import { ANTHROPIC_TEXT } from './text.js'
import type { DialectSpec, ProviderError, StreamGrammar } from './types.js'

/**
 * `usage.input_tokens` / `output_tokens` / `cache_read_input_tokens` / `cache_creation_input_tokens`;
 * counts missing from `usage` are taken from `base` (a stream's usage so far).
 */
function messageUsage(usage: unknown, base?: Usage): Usage | undefined {
  if (!isRecord(usage)) return base
  const input = tokens(usage.input_tokens) ?? base?.inputTokens
  const output = tokens(usage.output_tokens) ?? base?.outputTokens
  if (input === undefined && output === undefined) return base
  const result = withCache(
    { inputTokens: input ?? 0, outputTokens: output ?? 0, inputIncludesCache: false },
    tokens(usage.cache_read_input_tokens) ?? base?.cacheReadTokens,
  )
  const cacheWrite = tokens(usage.cache_creation_input_tokens) ?? base?.cacheWriteTokens
  return cacheWrite === undefined ? result : withFields(result, { cacheWriteTokens: cacheWrite })
}

// message_start carries the prompt counts; each message_delta carries running totals, so the last wins.
function streamUsage(sseText: string): Usage | undefined {
  let usage: Usage | undefined
  for (const event of usageEvents(sseText)) {
    if (!isRecord(event)) continue
    if (event.type === 'message_start' && isRecord(event.message)) usage = messageUsage(event.message.usage)
    else if (event.type === 'message_delta') usage = messageUsage(event.usage, usage)
  }
  return usage
}

/** `{ type: 'error', error: { type, message } }`: Anthropic's error body and `error` event. */
function anthropicError(json: unknown): ProviderError | undefined {
  if (!isRecord(json) || !isRecord(json.error)) return undefined
  const { type, message } = json.error
  return {
    type: typeof type === 'string' ? type : undefined,
    message: typeof message === 'string' ? message : undefined,
  }
}

// Text and thinking arrive as content_block_delta; a tool call opens with its tool_use block.
const ANSWER_START = /event: content_block_delta|"type":\s*"tool_use"|"stop_reason":\s*"/

/** Messages streams: `message_delta` carries the stop reason, `message_stop` ends the stream. */
const MESSAGES_STREAM: StreamGrammar = {
  terminator: 'event: message_stop',
  finish: '"stop_reason":"',
  closing: 'event: message_stop\ndata: {"type":"message_stop"}\n\n',
  errorMarker: 'event: error',
  inBandError: (events) =>
    firstError(events, (json, event) => (event === 'error' ? anthropicError(json) : undefined)),
  answerStart: (events) => events.search(ANSWER_START),
}

function terminalEvent(error: GatewayError): string {
  return `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'api_error', message: error.message } })}\n\n`
}

function outputCap(body: unknown): number | undefined {
  return isRecord(body) && typeof body.max_tokens === 'number' ? body.max_tokens : undefined
}

/** Anthropic Messages. */
export const anthropicDialect: DialectSpec = {
  name: 'anthropic',
  codec: anthropicCodec,
  usage: plausibleReader({
    fromJson: (json) => (isRecord(json) ? messageUsage(json.usage) : undefined),
    jsonField: 'usage',
    fromStream: streamUsage,
  }),
  stream: endpointStream(/\/v1\/messages$/, MESSAGES_STREAM),
  providerError: anthropicError,
  terminalEvent,
  assemble: patternAssembler('"type":"text_delta","text":', '"stop_reason":"'),
  model: bodyOrPathModel,
  outputCap,
  streams: bodyStreams,
  text: ANTHROPIC_TEXT,
}
