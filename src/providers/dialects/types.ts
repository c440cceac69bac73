import type { Usage } from '../../cost/cost.js'
import type { GatewayError } from '../../errors.js'
import type { Dialect } from '../types.js'
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatRequest,
  EmbeddingsRequest,
  EmbeddingsResponse,
  OpenAIErrorBody,
} from './openai-types.js'
import type { DialectText } from './text.js'

/** One parsed server-sent event. `event` is undefined when the stream gave no `event:` line. */
export interface SSEEvent {
  event: string | undefined
  data: string
}

/** A provider request built from an OpenAI-shaped one: path below the provider's base, and JSON body. */
export interface ProviderRequest {
  /** e.g. `/v1/messages` or `/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse` */
  path: string
  body: unknown
}

/** What one provider event turned into: OpenAI chunks to send, and an error if the provider reported one. */
export interface StreamStep {
  chunks: ChatCompletionChunk[]
  error?: OpenAIErrorBody['error'] | undefined
}

/**
 * Translates one streamed answer. Stateful (tool-call indexes, usage so far), so one per response.
 * It never throws on odd input from the provider: unknown events are skipped, unparseable data becomes `error`.
 */
export interface StreamTranslator {
  push(event: SSEEvent): StreamStep
  /** True once the provider finished the answer (Anthropic's stop reason or `message_stop`, Gemini's last `finishReason`). */
  readonly complete: boolean
  /** Chunks owed at the end of a complete stream: the usage chunk when `includeUsage` was asked for. */
  finish(): ChatCompletionChunk[]
}

export interface StreamOptions {
  /** The chunk `id` (`chatcmpl-...`) every chunk of this response carries. */
  id: string
  /** Unix seconds, the `created` every chunk carries. */
  created: number
  /** The model name as the client wrote it after the provider prefix. */
  model: string
  /** `stream_options.include_usage`: end with a usage chunk whose `choices` is empty. */
  includeUsage: boolean
}

/**
 * Pure functions between OpenAI Chat Completions and one provider's own API. No I/O, no context: plain data
 * in, plain data out. What cannot be translated throws a `GatewayError('UNSUPPORTED_PARAMETER', reason)`,
 * never a silent drop.
 */
export interface ChatCodec {
  toProviderRequest(request: ChatRequest): ProviderRequest
  fromProviderResponse(json: unknown, options: { id: string; created: number; model: string }): ChatCompletion
  fromProviderError(status: number, json: unknown): OpenAIErrorBody
  streamTranslator(options: StreamOptions): StreamTranslator
  /** Embeddings, where the provider has them. */
  embeddings?: {
    toProviderRequest(request: EmbeddingsRequest): ProviderRequest
    fromProviderResponse(json: unknown, model: string): EmbeddingsResponse
  }
}

/** Reads the token usage a provider's answer reports; `undefined` when it reports none. */
export interface UsageReader {
  /** From a whole JSON answer (for Gemini, also a streamed array of answers). */
  fromJson(json: unknown): Usage | undefined
  /**
   * The top-level field of a JSON answer that holds its usage, when the dialect has one: usage is then read
   * from that field to the answer's end (`parseJsonTail`), and the answer is parsed whole only when that
   * finds none.
   */
  readonly jsonField?: string
  /** From a complete (or cut) server-sent-events body. */
  fromStream(sseText: string): Usage | undefined
}

/** A provider's own error, as its dialect reports it in an error body or an `error` event. */
export interface ProviderError {
  /** The dialect's type or code: `context_length_exceeded`, `overloaded_error`, `RESOURCE_EXHAUSTED`. */
  readonly type: string | undefined
  readonly message: string | undefined
}

/**
 * What the gateway reads in the event stream of an endpoint it knows. The markers are fixed text found by
 * native search in every batch of whole events; only batches that hold one are decoded and read further.
 */
export interface StreamGrammar {
  /** Text of the last event of a complete stream (`data: [DONE]`, `event: message_stop`). */
  readonly terminator: string
  /**
   * Text only an answer the provider finished carries (a finish or stop reason). A body that ended cleanly
   * after it is complete even when its terminator never came.
   */
  readonly finish: string
  /** What such a stream is given in place of its terminator; none when nothing follows the finish. */
  readonly closing: string | undefined
  /** Text every in-band error event carries; `inBandError` reads the batches that hold it. */
  readonly errorMarker: string
  /** The provider's error in these whole events (an `error` event after a 200), if one is there. */
  inBandError(events: string): ProviderError | undefined
  /**
   * Where in these whole events the answer begins (its first text, tool call or refusal, or its finish): the
   * offset of what marks it, or -1. The markers are ASCII, so the events may be given as UTF-8 or as latin1
   * text (whose offsets are the bytes').
   */
  answerStart(events: string): number
}

/**
 * What the gateway knows of one dialect, in one place: every part of the gateway that depends on the
 * dialect (usage and cost, stream checks, logs, cache keys, limits) asks it here, through `dialectOf`.
 * Built once per dialect at load: nothing here allocates tables or patterns per call.
 */
export interface DialectSpec {
  readonly name: Dialect
  /** Translation from the compat surface's OpenAI requests; none for OpenAI-compatible dialects. */
  readonly codec: ChatCodec | undefined
  readonly usage: UsageReader
  /**
   * What the gateway reads in a stream from this endpoint (path below the host, query allowed), when it
   * knows the endpoint. Other streams are neither checked nor held, so a complete one is never flagged.
   */
  stream(path: string): StreamGrammar | undefined
  /** The provider's error in an error body or an in-band error event's data, in this dialect. */
  providerError(json: unknown): ProviderError | undefined
  /**
   * The last event of a stream that failed after it started, in this dialect, so that SDKs raise an error
   * instead of taking a cut answer for a complete one. Never a `[DONE]`; none for dialects without an
   * in-band error form (their stream is cut off instead).
   */
  terminalEvent(error: GatewayError): string | undefined
  /** A streamed answer put back together for the log (JSON text), or `undefined` when not known. */
  assemble(sseText: string): string | undefined
  /** The model a passthrough request names: the body's `model`, or a path's `models/{model}`. */
  model(path: string, body: unknown): string | undefined
  /** The output cap a request body asks for in this dialect's own field, if any. */
  outputCap(body: unknown): number | undefined
  /** Whether a passthrough request asks for a streamed answer (body `stream`, or a streaming endpoint). */
  streams(path: string, body: unknown): boolean
  /** Where the words of prompts and answers are, for guardrails and DLP. */
  readonly text: DialectText
}
