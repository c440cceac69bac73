import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatRequest,
  EmbeddingsRequest,
  EmbeddingsResponse,
  OpenAIErrorBody,
} from './openai-types.js'

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
  /** True once the provider's terminal marker arrived (Anthropic `message_stop`, Gemini's last `finishReason`). */
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
