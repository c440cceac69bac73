/**
 * The answer side of OpenAI Chat Completions over Anthropic Messages: JSON messages, errors, and the stateful
 * translator from Anthropic stream events to OpenAI chunks, with the stop-reason and usage rules they share.
 */
import { GatewayError } from '../../errors.js'
import { isRecord, parseJson } from '../../json.js'
import type {
  ChatCompletion,
  ChatCompletionChunk,
  FinishReason,
  OpenAIErrorBody,
  ToolCall,
  ToolCallDelta,
  Usage,
} from './openai-types.js'
import type { SSEEvent, StreamOptions, StreamStep, StreamTranslator } from './types.js'

/**
 * Name of the forced tool that emulates OpenAI's JSON modes. The answer side sees no request, so a tool call
 * is recognised as the JSON answer by this name alone; user tools may not take it.
 */
export const JSON_TOOL_NAME = 'json_response'

type JsonObject = Record<string, unknown>
type ErrorDetail = OpenAIErrorBody['error']
type Delta = ChatCompletionChunk['choices'][number]['delta']

/** Token counts as Anthropic reports them; cache reads and writes are billed apart from `input_tokens`. */
interface AnthropicUsage {
  input: number
  output: number
  cacheRead: number
  cacheCreation: number
}

const NO_USAGE: AnthropicUsage = { input: 0, output: 0, cacheRead: 0, cacheCreation: 0 }

const FINISH_REASONS: Readonly<Record<string, FinishReason>> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  pause_turn: 'stop',
  max_tokens: 'length',
  model_context_window_exceeded: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
}

/** Anthropic error types OpenAI clients can show as they are. */
const KEPT_ERROR_TYPES = new Set([
  'invalid_request_error',
  'authentication_error',
  'permission_error',
  'not_found_error',
  'rate_limit_error',
  'api_error',
  'overloaded_error',
])

const STATUS_ERROR_TYPES: Readonly<Record<number, string>> = {
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  429: 'rate_limit_error',
  503: 'overloaded_error',
  529: 'overloaded_error',
}

function count(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback
}

/**
 * Maps `stop_reason`. A stop on the JSON tool alone is a finished answer, not a call the client must run.
 * @example finishReason('tool_use', false) // 'stop'
 */
function finishReason(stopReason: unknown, calledClientTools: boolean): FinishReason | null {
  if (typeof stopReason !== 'string') return null
  if (stopReason === 'tool_use' && !calledClientTools) return 'stop'
  return FINISH_REASONS[stopReason] ?? 'stop'
}

/** Reads an Anthropic `usage` object; counts it lacks keep their value from `base` (stream updates are partial). */
function readUsage(value: unknown, base: AnthropicUsage = NO_USAGE): AnthropicUsage {
  if (!isRecord(value)) return base
  return {
    input: count(value.input_tokens, base.input),
    output: count(value.output_tokens, base.output),
    cacheRead: count(value.cache_read_input_tokens, base.cacheRead),
    cacheCreation: count(value.cache_creation_input_tokens, base.cacheCreation),
  }
}

/** OpenAI counts cached prompt tokens inside `prompt_tokens`; Anthropic counts them beside `input_tokens`. */
function toOpenAIUsage(usage: AnthropicUsage): Usage {
  const prompt = usage.input + usage.cacheRead + usage.cacheCreation
  return {
    prompt_tokens: prompt,
    completion_tokens: usage.output,
    total_tokens: prompt + usage.output,
    prompt_tokens_details: { cached_tokens: usage.cacheRead },
  }
}

/** Reads `{ type: 'error', error: { type, message } }`, the body of Anthropic errors and `error` events. */
function readAnthropicError(json: unknown): { type: string; message: string } | undefined {
  if (!isRecord(json) || !isRecord(json.error)) return undefined
  const { type, message } = json.error
  return typeof type === 'string' && typeof message === 'string' ? { type, message } : undefined
}

/** The OpenAI error type an HTTP status reads as, for errors whose Anthropic type is unknown or missing. */
function statusErrorType(status: number | undefined): string {
  if (status === undefined) return 'api_error'
  return STATUS_ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error')
}

/**
 * The OpenAI error for an Anthropic one; `code` keeps Anthropic's own type (e.g. `request_too_large`).
 * @example openAIError({ type: 'overloaded_error', message: 'Overloaded' }, 529).type // 'overloaded_error'
 */
function openAIError(error: { type: string; message: string }, status?: number): ErrorDetail {
  const type = KEPT_ERROR_TYPES.has(error.type) ? error.type : statusErrorType(status)
  return { message: error.message, type, param: null, code: error.type }
}

function invalidEvent(why: string): StreamStep {
  const message = `Anthropic stream could not be read: ${why}`
  return { chunks: [], error: { message, type: 'invalid_provider_response', param: null, code: null } }
}

function unusable(detail: string): never {
  throw new GatewayError('INVALID_PROVIDER_RESPONSE', `Anthropic message: ${detail}`)
}

function readToolCall(block: JsonObject): ToolCall {
  const { id, name, input } = block
  if (typeof id !== 'string' || typeof name !== 'string' || !isRecord(input)) {
    unusable('a tool_use block lacks id, name or input')
  }
  return { id, type: 'function', function: { name, arguments: JSON.stringify(input) } }
}

/** The OpenAI completion for an Anthropic message; `id`, `created` and `model` are the gateway's. */
export function fromProviderResponse(
  json: unknown,
  options: { id: string; created: number; model: string },
): ChatCompletion {
  if (!isRecord(json)) unusable('the body is not a JSON object')
  const reported = json.type === 'error' ? readAnthropicError(json) : undefined
  if (reported) unusable(`${reported.type}: ${reported.message}`)
  if (!Array.isArray(json.content)) unusable('there is no content array')
  const texts: string[] = []
  const toolCalls: ToolCall[] = []
  for (const block of json.content as unknown[]) {
    if (!isRecord(block)) unusable('a content block is not an object')
    if (block.type === 'text') {
      if (typeof block.text !== 'string') unusable('a text block has no text')
      texts.push(block.text)
    } else if (block.type === 'tool_use') {
      const call = readToolCall(block)
      if (call.function.name === JSON_TOOL_NAME) texts.push(call.function.arguments)
      else toolCalls.push(call)
    }
    // Other blocks (thinking, server tools) only answer features this codec never asks for.
  }
  const content = texts.length > 0 ? texts.join('') : toolCalls.length > 0 ? null : ''
  const message = {
    role: 'assistant' as const,
    content,
    ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
    refusal: null,
  }
  return {
    id: options.id,
    object: 'chat.completion',
    created: options.created,
    model: options.model,
    choices: [
      {
        index: 0,
        message,
        finish_reason: finishReason(json.stop_reason, toolCalls.length > 0),
        logprobs: null,
      },
    ],
    ...(isRecord(json.usage) ? { usage: toOpenAIUsage(readUsage(json.usage)) } : {}),
  }
}

/** The OpenAI error body for an Anthropic error answer, whatever its shape. */
export function fromProviderError(status: number, json: unknown): OpenAIErrorBody {
  const error = readAnthropicError(json)
  if (error) return { error: openAIError(error, status) }
  const message = `Anthropic answered HTTP ${status} without a readable error`
  return { error: { message, type: statusErrorType(status), param: null, code: null } }
}

/** What each content block index turned out to be, so its deltas land in the right place. */
type BlockState =
  | { kind: 'text' }
  | { kind: 'tool'; ordinal: number; sentArguments: boolean }
  | { kind: 'json'; sentContent: boolean }
  | { kind: 'other' }

/** One per streamed answer: it numbers tool calls and keeps usage across events. */
class AnthropicStreamTranslator implements StreamTranslator {
  #complete = false
  #usage = NO_USAGE
  #toolCalls = 0
  readonly #blocks = new Map<number, BlockState>()

  readonly #options: StreamOptions

  constructor(options: StreamOptions) {
    this.#options = options
  }

  get complete(): boolean {
    return this.#complete
  }

  push(event: SSEEvent): StreamStep {
    const data = parseJson(event.data)
    if (!isRecord(data)) return invalidEvent(`event data is not a JSON object: ${event.data.slice(0, 200)}`)
    const type = typeof data.type === 'string' ? data.type : event.event
    switch (type) {
      case 'message_start':
        return this.#messageStart(data)
      case 'content_block_start':
        return this.#blockStart(data)
      case 'content_block_delta':
        return this.#blockDelta(data)
      case 'content_block_stop':
        return this.#blockStop(data)
      case 'message_delta':
        return this.#messageDelta(data)
      case 'message_stop':
        this.#complete = true
        return { chunks: [] }
      case 'error': {
        const error = readAnthropicError(data)
        return error
          ? { chunks: [], error: openAIError(error) }
          : invalidEvent('error event without a message')
      }
      default:
        // `ping` and event types added later carry nothing a chat completion chunk can say.
        return { chunks: [] }
    }
  }

  finish(): ChatCompletionChunk[] {
    if (!this.#options.includeUsage) return []
    return [{ ...this.#base(), choices: [], usage: toOpenAIUsage(this.#usage) }]
  }

  #messageStart(data: JsonObject): StreamStep {
    if (!isRecord(data.message)) return invalidEvent('message_start without a message')
    this.#usage = readUsage(data.message.usage)
    return { chunks: [this.#chunk({ role: 'assistant', content: '' })] }
  }

  #blockStart(data: JsonObject): StreamStep {
    const block = data.content_block
    if (typeof data.index !== 'number' || !isRecord(block))
      return invalidEvent('content_block_start without a block')
    if (block.type === 'text') {
      this.#blocks.set(data.index, { kind: 'text' })
      return {
        chunks: typeof block.text === 'string' && block.text ? [this.#chunk({ content: block.text })] : [],
      }
    }
    if (block.type !== 'tool_use') {
      this.#blocks.set(data.index, { kind: 'other' })
      return { chunks: [] }
    }
    if (typeof block.id !== 'string' || typeof block.name !== 'string')
      return invalidEvent('tool_use without id or name')
    if (block.name === JSON_TOOL_NAME) {
      this.#blocks.set(data.index, { kind: 'json', sentContent: false })
      return { chunks: [] }
    }
    const ordinal = this.#toolCalls++
    this.#blocks.set(data.index, { kind: 'tool', ordinal, sentArguments: false })
    const call: ToolCallDelta = {
      index: ordinal,
      id: block.id,
      type: 'function',
      function: { name: block.name, arguments: '' },
    }
    return { chunks: [this.#chunk({ tool_calls: [call] })] }
  }

  #blockDelta(data: JsonObject): StreamStep {
    const delta = data.delta
    if (typeof data.index !== 'number' || !isRecord(delta))
      return invalidEvent('content_block_delta without a delta')
    const state = this.#blocks.get(data.index)
    if (delta.type === 'text_delta' && typeof delta.text === 'string') {
      return { chunks: [this.#chunk({ content: delta.text })] }
    }
    const json = delta.type === 'input_json_delta' ? delta.partial_json : undefined
    // Anthropic opens every tool input with an empty piece; it says nothing, so it sends nothing.
    if (typeof json !== 'string' || json === '') return { chunks: [] }
    if (state?.kind === 'json') {
      state.sentContent = true
      return { chunks: [this.#chunk({ content: json })] }
    }
    if (state?.kind !== 'tool') return { chunks: [] }
    state.sentArguments = true
    return {
      chunks: [this.#chunk({ tool_calls: [{ index: state.ordinal, function: { arguments: json } }] })],
    }
  }

  /** A tool called without input streams no JSON at all; OpenAI clients still expect parseable arguments. */
  #blockStop(data: JsonObject): StreamStep {
    const state = typeof data.index === 'number' ? this.#blocks.get(data.index) : undefined
    if (state?.kind === 'tool' && !state.sentArguments) {
      return {
        chunks: [this.#chunk({ tool_calls: [{ index: state.ordinal, function: { arguments: '{}' } }] })],
      }
    }
    if (state?.kind === 'json' && !state.sentContent) return { chunks: [this.#chunk({ content: '{}' })] }
    return { chunks: [] }
  }

  #messageDelta(data: JsonObject): StreamStep {
    this.#usage = readUsage(data.usage, this.#usage)
    const stopReason = isRecord(data.delta) ? data.delta.stop_reason : undefined
    // The stop reason finishes the answer: a stream that ends cleanly after it, without message_stop,
    // is whole.
    if (typeof stopReason === 'string') this.#complete = true
    const finish = finishReason(stopReason, this.#toolCalls > 0)
    return { chunks: finish ? [this.#chunk({}, finish)] : [] }
  }

  #base(): Pick<ChatCompletionChunk, 'id' | 'object' | 'created' | 'model'> {
    const { id, created, model } = this.#options
    return { id, object: 'chat.completion.chunk', created, model }
  }

  /** OpenAI sends `usage: null` on every chunk but the last when usage was asked for. */
  #chunk(delta: Delta, finish: FinishReason | null = null): ChatCompletionChunk {
    const choices = [{ index: 0, delta, finish_reason: finish, logprobs: null }]
    return { ...this.#base(), choices, ...(this.#options.includeUsage ? { usage: null } : {}) }
  }
}

export function anthropicStreamTranslator(options: StreamOptions): StreamTranslator {
  return new AnthropicStreamTranslator(options)
}
