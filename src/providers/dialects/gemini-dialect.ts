import type { Usage } from '../../cost/cost.js'
import type { GatewayError } from '../../errors.js'
import { isRecord } from '../../json.js'
import {
  bodyOrPathModel,
  bodyStreams,
  endpointStream,
  firstError,
  lastDefined,
  lastEventUsage,
  nestedError,
  patternAssembler,
  plausibleReader,
  tokens,
  withCache,
} from './common.js'
import { geminiCodec } from './gemini.js'
import { GEMINI_TEXT } from './text.js'
import type { DialectSpec, StreamGrammar } from './types.js'

/** `usageMetadata.promptTokenCount` / `candidatesTokenCount` + `thoughtsTokenCount` / `cachedContentTokenCount`. */
function responseUsage(body: unknown): Usage | undefined {
  if (!isRecord(body) || !isRecord(body.usageMetadata)) return undefined
  const metadata = body.usageMetadata
  const input = tokens(metadata.promptTokenCount)
  const candidates = tokens(metadata.candidatesTokenCount)
  const thoughts = tokens(metadata.thoughtsTokenCount)
  if (input === undefined && candidates === undefined && thoughts === undefined) return undefined
  return withCache(
    { inputTokens: input ?? 0, outputTokens: (candidates ?? 0) + (thoughts ?? 0), inputIncludesCache: true },
    tokens(metadata.cachedContentTokenCount),
  )
}

// A streamed answer fetched without `alt=sse` is one JSON array of responses: the last that has usage.
function jsonUsage(json: unknown): Usage | undefined {
  return Array.isArray(json) ? lastDefined(json.map(responseUsage)) : responseUsage(json)
}

function terminalEvent(error: GatewayError): string {
  return `data: ${JSON.stringify({ error: { code: error.status, message: error.message, status: 'UNAVAILABLE' } })}\n\n`
}

function outputCap(body: unknown): number | undefined {
  const generation = isRecord(body) ? body.generationConfig : undefined
  return isRecord(generation) && typeof generation.maxOutputTokens === 'number'
    ? generation.maxOutputTokens
    : undefined
}

// Gemini writes its JSON with a space after each colon.
const ANSWER_START = /"text":\s*"(?!")|"functionCall":|"finishReason":/

/**
 * `streamGenerateContent`: every chunk a response; the last carries the finish reason, and nothing follows.
 * A prompt Gemini refuses is answered with one chunk and no candidate, only `promptFeedback.blockReason`:
 * that chunk is the whole answer, so it ends the stream as a finish reason does.
 */
const GENERATE_STREAM: StreamGrammar = {
  terminator: '"blockReason"',
  finish: '"finishReason"',
  closing: undefined,
  errorMarker: '"error"',
  inBandError: (events) => firstError(events, nestedError),
  answerStart: (events) => events.search(ANSWER_START),
}

const STREAM_ENDPOINT = ':streamGenerateContent'

/** Gemini `generateContent`: the model is named in the path (`models/{model}:generateContent`). */
export const geminiDialect: DialectSpec = {
  name: 'gemini',
  codec: geminiCodec,
  // Gemini repeats running totals: a stream's usage is its last chunk's `usageMetadata`.
  usage: plausibleReader({
    fromJson: jsonUsage,
    jsonField: 'usageMetadata',
    fromStream: lastEventUsage(jsonUsage, 'usageMetadata'),
  }),
  // The last chunk of a complete answer carries its `finishReason`.
  stream: endpointStream(/:streamGenerateContent$/, GENERATE_STREAM),
  providerError: nestedError,
  terminalEvent,
  assemble: patternAssembler('"text":', '"finishReason":"'),
  model: bodyOrPathModel,
  outputCap,
  streams: (path, body) => bodyStreams(path, body) || path.includes(STREAM_ENDPOINT),
  text: GEMINI_TEXT,
}
