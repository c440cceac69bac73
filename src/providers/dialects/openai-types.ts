/**
 * The OpenAI Chat Completions shapes the compat surface speaks, as plain data. Only what the gateway reads
 * or writes is typed; everything else a client sends is `unknown` and either passed through (OpenAI
 * dialect) or refused with a reason (other dialects).
 */

export type ChatRole = 'system' | 'developer' | 'user' | 'assistant' | 'tool'

export interface TextPart {
  type: 'text'
  text: string
}
export interface ImagePart {
  type: 'image_url'
  image_url: { url: string; detail?: 'auto' | 'low' | 'high' }
}
export type ContentPart = TextPart | ImagePart | { type: string; [key: string]: unknown }

/**
 * What a provider needs back with a tool call on the next turn, where OpenAI-shaped clients keep it: Gemini's
 * thought signature, as Google's own OpenAI-compatible API sends it.
 */
export interface ToolCallExtra {
  google?: { thought_signature?: string }
}

export interface ToolCall {
  id: string
  type: 'function'
  function: { name: string; arguments: string }
  extra_content?: ToolCallExtra
}

export interface ChatMessage {
  role: ChatRole
  content?: string | ContentPart[] | null
  name?: string
  tool_calls?: ToolCall[]
  tool_call_id?: string
}

export interface FunctionTool {
  type: 'function'
  function: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean }
}

export type ToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } }

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | {
      type: 'json_schema'
      json_schema: { name: string; schema?: Record<string, unknown>; strict?: boolean; description?: string }
    }

/** A chat completion request after the gateway took the provider prefix off `model`. */
export interface ChatRequest {
  model: string
  messages: ChatMessage[]
  stream?: boolean
  stream_options?: { include_usage?: boolean }
  temperature?: number
  top_p?: number
  max_tokens?: number
  max_completion_tokens?: number
  stop?: string | string[]
  seed?: number
  n?: number
  tools?: FunctionTool[]
  tool_choice?: ToolChoice
  parallel_tool_calls?: boolean
  response_format?: ResponseFormat
  user?: string
  [other: string]: unknown
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter'

export interface Usage {
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
  prompt_tokens_details?: { cached_tokens: number }
}

export interface ChatCompletion {
  id: string
  object: 'chat.completion'
  created: number
  model: string
  choices: {
    index: number
    message: { role: 'assistant'; content: string | null; tool_calls?: ToolCall[]; refusal?: null }
    finish_reason: FinishReason | null
    logprobs: null
  }[]
  usage?: Usage
}

export interface ToolCallDelta {
  index: number
  id?: string
  type?: 'function'
  function?: { name?: string; arguments?: string }
  extra_content?: ToolCallExtra
}

export interface ChatCompletionChunk {
  id: string
  object: 'chat.completion.chunk'
  created: number
  model: string
  choices: {
    index: number
    delta: { role?: 'assistant'; content?: string | null; tool_calls?: ToolCallDelta[] }
    finish_reason: FinishReason | null
    logprobs?: null
  }[]
  usage?: Usage | null
}

/** OpenAI's error body; the OpenAI SDKs read `error.message`, `error.type` and `error.code`. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | number | null }
}

export interface EmbeddingsRequest {
  model: string
  input: string | string[]
  encoding_format?: 'float' | 'base64'
  dimensions?: number
  user?: string
  [other: string]: unknown
}

export interface EmbeddingsResponse {
  object: 'list'
  data: { object: 'embedding'; index: number; embedding: number[] }[]
  model: string
  usage: { prompt_tokens: number; total_tokens: number }
}
