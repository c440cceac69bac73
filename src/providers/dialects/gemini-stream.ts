/**
 * Gemini → OpenAI: a GenerateContentResponse (a whole answer, or one streamed chunk of it) read once and
 * turned into a chat completion or into chunks; finish reasons, usage, error bodies and embeddings too.
 * The OpenAI → Gemini direction is in `gemini.ts`.
 */
import { GatewayError } from '../../errors.js'
import { isRecord } from '../../json.js'
import type {
  ChatCompletion,
  ChatCompletionChunk,
  EmbeddingsResponse,
  FinishReason,
  OpenAIErrorBody,
  ToolCall,
  ToolCallDelta,
  ToolCallExtra,
  Usage,
} from './openai-types.js'
import type { SSEEvent, StreamOptions, StreamStep, StreamTranslator } from './types.js'

/** One piece of a Gemini answer that an OpenAI message can express, in the order Gemini sent it. */
type AnswerPart =
  | { kind: 'text'; text: string }
  | {
      kind: 'call'
      id: string | undefined
      name: string
      args: Record<string, unknown>
      /** The part's `thoughtSignature`, which Gemini 3 requires back with the call on the next turn. */
      signature: string | undefined
    }

/** What one GenerateContentResponse says, already checked. */
interface AnswerReading {
  /** False when Gemini sent no candidate at all (a blocked prompt, or a usage-only stream chunk). */
  hasCandidate: boolean
  parts: AnswerPart[]
  /** Gemini's own finish reason, e.g. `STOP`; undefined while a stream is still going. */
  finishReason: string | undefined
  /** True when `promptFeedback.blockReason` says the prompt itself was refused. */
  promptBlocked: boolean
  usage: Usage | undefined
}

/**
 * Part kinds Gemini can send that an OpenAI chat message has no place for. They are reported as an
 * unusable response rather than dropped, so a client never mistakes half an answer for the whole.
 */
const UNREPRESENTABLE_PARTS = [
  'inlineData',
  'fileData',
  'executableCode',
  'codeExecutionResult',
  'functionResponse',
]

/** Finish reasons that mean Gemini withheld or cut output on policy grounds, text or image. */
const FILTERED = new Set([
  'SAFETY',
  'RECITATION',
  'BLOCKLIST',
  'PROHIBITED_CONTENT',
  'SPII',
  'IMAGE_SAFETY',
  'IMAGE_PROHIBITED_CONTENT',
  'IMAGE_RECITATION',
])

/** Google's canonical error statuses, as OpenAI error types. */
const ERROR_TYPES: Record<string, string> = {
  INVALID_ARGUMENT: 'invalid_request_error',
  FAILED_PRECONDITION: 'invalid_request_error',
  OUT_OF_RANGE: 'invalid_request_error',
  NOT_FOUND: 'invalid_request_error',
  UNAUTHENTICATED: 'authentication_error',
  PERMISSION_DENIED: 'permission_error',
  RESOURCE_EXHAUSTED: 'rate_limit_error',
  UNAVAILABLE: 'api_error',
  INTERNAL: 'api_error',
  DEADLINE_EXCEEDED: 'api_error',
  UNKNOWN: 'api_error',
}

function badResponse(detail: string): GatewayError {
  return new GatewayError('INVALID_PROVIDER_RESPONSE', `Gemini ${detail}`)
}

function tokenCount(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0
}

/**
 * Gemini `usageMetadata` as OpenAI usage. Thinking tokens are billed as output, so they count as completion.
 * @example toUsage({ promptTokenCount: 3, candidatesTokenCount: 2, totalTokenCount: 5 })
 * // { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 }
 */
function toUsage(metadata: unknown): Usage | undefined {
  if (!isRecord(metadata)) return undefined
  const prompt = tokenCount(metadata.promptTokenCount)
  const completion = tokenCount(metadata.candidatesTokenCount) + tokenCount(metadata.thoughtsTokenCount)
  const total = typeof metadata.totalTokenCount === 'number' ? metadata.totalTokenCount : prompt + completion
  const usage: Usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: total }
  if (typeof metadata.cachedContentTokenCount === 'number') {
    usage.prompt_tokens_details = { cached_tokens: metadata.cachedContentTokenCount }
  }
  return usage
}

/**
 * Gemini's finish reason as OpenAI's. Gemini says `STOP` after function calls too; OpenAI clients wait for
 * `tool_calls` before running them.
 * @example toFinishReason('MAX_TOKENS', false) // 'length'
 */
function toFinishReason(reason: string, calledTools: boolean): FinishReason {
  if (reason === 'MAX_TOKENS') return 'length'
  if (FILTERED.has(reason)) return 'content_filter'
  return calledTools ? 'tool_calls' : 'stop'
}

function readCall(call: Record<string, unknown>, at: string, signature: unknown): AnswerPart {
  if (typeof call.name !== 'string') throw badResponse(`${at}.functionCall has no name`)
  if (call.args !== undefined && !isRecord(call.args)) {
    throw badResponse(`${at}.functionCall.args is not an object`)
  }
  const id = typeof call.id === 'string' ? call.id : undefined
  return {
    kind: 'call',
    id,
    name: call.name,
    args: call.args ?? {},
    signature: typeof signature === 'string' && signature !== '' ? signature : undefined,
  }
}

/**
 * Where an OpenAI client keeps a call's thought signature and sends it back (`gemini.ts` reads it there):
 * `extra_content.google.thought_signature`, as in Google's own OpenAI-compatible API.
 */
function signatureField(signature: string | undefined): { extra_content?: ToolCallExtra } {
  return signature === undefined ? {} : { extra_content: { google: { thought_signature: signature } } }
}

function readPart(part: unknown, at: string): AnswerPart | undefined {
  if (!isRecord(part)) throw badResponse(`${at} is not an object`)
  // Thought summaries are the model's reasoning, not its answer.
  if (part.thought === true) return undefined
  if (typeof part.text === 'string') return { kind: 'text', text: part.text }
  if (isRecord(part.functionCall)) return readCall(part.functionCall, at, part.thoughtSignature)
  const kind = UNREPRESENTABLE_PARTS.find((key) => key in part)
  if (kind) throw badResponse(`${at} is ${kind}, which an OpenAI chat message cannot carry`)
  // What is left carries no content of its own, such as a lone thoughtSignature.
  return undefined
}

function readParts(content: unknown): AnswerPart[] {
  if (content === undefined) return []
  if (!isRecord(content)) throw badResponse('candidates[0].content is not an object')
  if (content.parts === undefined) return []
  if (!Array.isArray(content.parts)) throw badResponse('candidates[0].content.parts is not an array')
  const parts: unknown[] = content.parts
  return parts.flatMap((part, i) => readPart(part, `candidates[0].content.parts[${i}]`) ?? [])
}

function isPromptBlocked(feedback: unknown): boolean {
  return isRecord(feedback) && typeof feedback.blockReason === 'string'
}

/**
 * Checks and reads one GenerateContentResponse. Only the first candidate is read: requests never ask for more.
 * @example readAnswer({ candidates: [{ content: { parts: [{ text: 'Hi' }] }, finishReason: 'STOP' }] }).parts
 * // [{ kind: 'text', text: 'Hi' }]
 */
function readAnswer(json: unknown): AnswerReading {
  if (!isRecord(json)) throw badResponse('response is not a JSON object')
  const usage = toUsage(json.usageMetadata)
  const promptBlocked = isPromptBlocked(json.promptFeedback)
  if (json.candidates !== undefined && !Array.isArray(json.candidates)) {
    throw badResponse('candidates is not an array')
  }
  const candidates: unknown[] = json.candidates ?? []
  const candidate = candidates[0]
  if (candidate === undefined) {
    return { hasCandidate: false, parts: [], finishReason: undefined, promptBlocked, usage }
  }
  if (!isRecord(candidate)) throw badResponse('candidates[0] is not an object')
  const finishReason = typeof candidate.finishReason === 'string' ? candidate.finishReason : undefined
  return { hasCandidate: true, parts: readParts(candidate.content), finishReason, promptBlocked, usage }
}

function httpErrorType(status: number): string {
  if (status === 401) return 'authentication_error'
  if (status === 403) return 'permission_error'
  if (status === 429) return 'rate_limit_error'
  return status >= 500 ? 'api_error' : 'invalid_request_error'
}

/** Gemini's non-SSE stream wraps its error in a one-element array; the error is the same. */
function unwrapErrorBody(json: unknown): unknown {
  return Array.isArray(json) && json.length === 1 ? json[0] : json
}

/**
 * A Gemini error body (`{error: {code, message, status}}`) as OpenAI's; the Google status becomes the code.
 * @example fromGeminiError(429, { error: { code: 429, message: 'Quota', status: 'RESOURCE_EXHAUSTED' } })
 * // { error: { message: 'Quota', type: 'rate_limit_error', param: null, code: 'RESOURCE_EXHAUSTED' } }
 */
export function fromGeminiError(status: number, json: unknown): OpenAIErrorBody {
  const body = unwrapErrorBody(json)
  const error = isRecord(body) ? body.error : undefined
  if (!isRecord(error) || typeof error.message !== 'string') {
    const message = `Gemini answered HTTP ${status} without a readable error body`
    return { error: { message, type: httpErrorType(status), param: null, code: null } }
  }
  const googleStatus = typeof error.status === 'string' ? error.status : undefined
  const type = (googleStatus && ERROR_TYPES[googleStatus]) || httpErrorType(status)
  return { error: { message: error.message, type, param: null, code: googleStatus ?? null } }
}

function toToolCalls(parts: AnswerPart[]): ToolCall[] {
  return parts
    .flatMap((part) => (part.kind === 'call' ? [part] : []))
    .map((call, n) => ({
      id: call.id ?? `call_${n}`,
      type: 'function' as const,
      function: { name: call.name, arguments: JSON.stringify(call.args) },
      ...signatureField(call.signature),
    }))
}

/**
 * A Gemini `generateContent` answer as an OpenAI chat completion. A prompt Gemini blocked outright answers
 * with no content and `content_filter`.
 */
export function fromGenerateContent(
  json: unknown,
  options: { id: string; created: number; model: string },
): ChatCompletion {
  const answer = readAnswer(json)
  if (!answer.hasCandidate && !answer.promptBlocked) {
    throw new GatewayError(
      'INVALID_PROVIDER_RESPONSE',
      'Gemini sent no candidates and no promptFeedback.blockReason',
    )
  }
  const texts = answer.parts.flatMap((part) => (part.kind === 'text' ? [part.text] : []))
  const toolCalls = toToolCalls(answer.parts)
  const finishReason = answer.hasCandidate
    ? answer.finishReason === undefined
      ? null
      : toFinishReason(answer.finishReason, toolCalls.length > 0)
    : 'content_filter'
  const message: ChatCompletion['choices'][number]['message'] = {
    role: 'assistant',
    content: texts.length > 0 ? texts.join('') : null,
    ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
    refusal: null,
  }
  return {
    id: options.id,
    object: 'chat.completion',
    created: options.created,
    model: options.model,
    choices: [{ index: 0, message, finish_reason: finishReason, logprobs: null }],
    ...(answer.usage ? { usage: answer.usage } : {}),
  }
}

function embeddingValues(embedding: unknown, index: number): number[] {
  const values = isRecord(embedding) ? embedding.values : undefined
  const list: unknown[] = Array.isArray(values) ? values : []
  if (!Array.isArray(values) || !list.every((value): value is number => typeof value === 'number')) {
    throw new GatewayError(
      'INVALID_PROVIDER_RESPONSE',
      `Gemini embeddings[${index}].values is not a list of numbers`,
    )
  }
  return list
}

/** A Gemini `batchEmbedContents` answer as an OpenAI embeddings list. */
export function fromBatchEmbed(json: unknown, model: string): EmbeddingsResponse {
  const embeddings = isRecord(json) ? json.embeddings : undefined
  if (!Array.isArray(embeddings)) {
    throw new GatewayError('INVALID_PROVIDER_RESPONSE', 'Gemini sent no embeddings list')
  }
  return {
    object: 'list',
    data: embeddings.map((embedding: unknown, index) => ({
      object: 'embedding' as const,
      index,
      embedding: embeddingValues(embedding, index),
    })),
    model,
    // batchEmbedContents reports no token counts, and zero is what OpenAI's shape can say for "not counted".
    usage: { prompt_tokens: 0, total_tokens: 0 },
  }
}

interface StreamState {
  started: boolean
  complete: boolean
  toolCalls: number
  usage: Usage | undefined
}

type Delta = ChatCompletionChunk['choices'][number]['delta']

function chunk(options: StreamOptions, delta: Delta, finishReason: FinishReason | null): ChatCompletionChunk {
  return {
    id: options.id,
    object: 'chat.completion.chunk',
    created: options.created,
    model: options.model,
    choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }],
    // OpenAI puts `usage: null` on every chunk but the last when usage was asked for.
    ...(options.includeUsage ? { usage: null } : {}),
  }
}

function partDelta(state: StreamState, part: AnswerPart): Delta | undefined {
  if (part.kind === 'text') return part.text ? { content: part.text } : undefined
  const index = state.toolCalls++
  const call: ToolCallDelta = {
    index,
    id: part.id ?? `call_${index}`,
    type: 'function',
    function: { name: part.name, arguments: JSON.stringify(part.args) },
    ...signatureField(part.signature),
  }
  return { tool_calls: [call] }
}

function finishOf(state: StreamState, reading: AnswerReading): FinishReason | undefined {
  if (reading.finishReason !== undefined) return toFinishReason(reading.finishReason, state.toolCalls > 0)
  return !reading.hasCandidate && reading.promptBlocked ? 'content_filter' : undefined
}

function translateReading(
  state: StreamState,
  options: StreamOptions,
  reading: AnswerReading,
): ChatCompletionChunk[] {
  if (reading.usage) state.usage = reading.usage
  // Gemini sends nothing after its finish reason; were it to, OpenAI has no place after the final chunk.
  if (state.complete) return []
  const chunks: ChatCompletionChunk[] = []
  for (const part of reading.parts) {
    const delta = partDelta(state, part)
    if (delta) chunks.push(chunk(options, delta, null))
  }
  const finish = finishOf(state, reading)
  if (finish) {
    chunks.push(chunk(options, {}, finish))
    state.complete = true
  }
  if (chunks.length > 0 && !state.started) {
    chunks.unshift(chunk(options, { role: 'assistant', content: '' }, null))
    state.started = true
  }
  return chunks
}

function streamFailure(message: string): OpenAIErrorBody['error'] {
  return { message, type: 'api_error', param: null, code: null }
}

function pushEvent(state: StreamState, options: StreamOptions, event: SSEEvent): StreamStep {
  if (event.data.trim() === '') return { chunks: [] }
  let json: unknown
  try {
    json = JSON.parse(event.data)
  } catch {
    return {
      chunks: [],
      error: streamFailure(`Gemini sent a stream event that is not JSON: ${event.data.slice(0, 100)}`),
    }
  }
  if (isRecord(json) && json.error !== undefined) {
    const status = isRecord(json.error) && typeof json.error.code === 'number' ? json.error.code : 500
    return { chunks: [], error: fromGeminiError(status, json).error }
  }
  try {
    // Reading checks the whole event before any state changes, so a bad event leaves the stream as it was.
    return { chunks: translateReading(state, options, readAnswer(json)) }
  } catch (error) {
    return { chunks: [], error: streamFailure(error instanceof Error ? error.message : String(error)) }
  }
}

function finishChunks(state: StreamState, options: StreamOptions): ChatCompletionChunk[] {
  if (!options.includeUsage || !state.usage) return []
  const { id, created, model } = options
  return [{ id, object: 'chat.completion.chunk', created, model, choices: [], usage: state.usage }]
}

/**
 * Translates a `streamGenerateContent?alt=sse` answer: every event's data is a whole GenerateContentResponse
 * holding the next slice of the answer, and the one with a `finishReason` is the last.
 * @example
 * const t = geminiStreamTranslator({ id: 'chatcmpl-1', created: 1, model: 'gemini-2.5-flash', includeUsage: true })
 * t.push({ event: undefined, data: '{"candidates":[{"content":{"parts":[{"text":"Hi"}]}}]}' }).chunks.length // 2
 */
export function geminiStreamTranslator(options: StreamOptions): StreamTranslator {
  const state: StreamState = { started: false, complete: false, toolCalls: 0, usage: undefined }
  return {
    get complete() {
      return state.complete
    },
    push: (event) => pushEvent(state, options, event),
    finish: () => finishChunks(state, options),
  }
}
