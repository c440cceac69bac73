/**
 * OpenAI Chat Completions ⇄ Anthropic Messages (`POST /v1/messages`).
 *
 * JSON mode: Messages has no `response_format` that every Claude model accepts, so `json_object` and
 * `json_schema` become one forced tool, `json_response`, whose input schema is the requested schema (any
 * object for `json_object`). The model answers by "calling" it; that call's input comes back as the
 * assistant's `content` string with finish_reason 'stop', and in streams its `input_json_delta` pieces
 * become content deltas. The answer side recognises the call by the reserved name alone.
 */
import { GatewayError } from '../../errors.js'
import { isRecord, parseJson } from '../../json.js'
import {
  anthropicStreamTranslator,
  fromProviderError,
  fromProviderResponse,
  JSON_TOOL_NAME,
} from './anthropic-stream.js'
import { imageMediaType } from './common.js'
import type { ChatRequest } from './openai-types.js'
import type { ChatCodec, ProviderRequest } from './types.js'

type JsonObject = Record<string, unknown>
interface TextBlock {
  type: 'text'
  text: string
}
interface ImageBlock {
  type: 'image'
  source: { type: 'base64'; media_type: string; data: string } | { type: 'url'; url: string }
}
interface ToolUseBlock {
  type: 'tool_use'
  id: string
  name: string
  input: JsonObject
}
interface ToolResultBlock {
  type: 'tool_result'
  tool_use_id: string
  content: string | TextBlock[]
}
type Block = TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock
interface Turn {
  role: 'user' | 'assistant'
  content: Block[]
}
interface AnthropicTool {
  name: string
  description?: string
  input_schema: JsonObject
  strict?: true
}
type AnthropicToolChoice = ({ type: 'auto' | 'any' | 'none' } | { type: 'tool'; name: string }) & {
  disable_parallel_tool_use?: true
}

/** Anthropic requires `max_tokens`; OpenAI lets it default to whatever the context leaves. */
const DEFAULT_MAX_TOKENS = 4096
const MAX_TEMPERATURE = 1
const IMAGE_MEDIA_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp'])
const BASE64_DATA_URL = /^data:([^;,]+);base64,(.+)$/s
const EMPTY_SCHEMA = { type: 'object', properties: {} }

/** Request keys translated below. `stream_options` is read by the gateway, not sent upstream. */
const TRANSLATED = new Set([
  'model',
  'messages',
  'stream',
  'stream_options',
  'temperature',
  'top_p',
  'max_tokens',
  'max_completion_tokens',
  'stop',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'response_format',
  'user',
])

/** Keys Anthropic has no equivalent for: accepted only at the value that asks for nothing. */
const UNTRANSLATABLE: Readonly<Record<string, { isDefault: (value: unknown) => boolean; reason: string }>> = {
  n: { isDefault: (v) => v === 1, reason: 'Anthropic returns one choice per request' },
  seed: { isDefault: () => false, reason: 'Anthropic has no sampling seed, so results cannot be reproduced' },
  presence_penalty: { isDefault: (v) => v === 0, reason: 'Anthropic has no presence penalty' },
  frequency_penalty: { isDefault: (v) => v === 0, reason: 'Anthropic has no frequency penalty' },
  logprobs: { isDefault: (v) => v === false, reason: 'Anthropic does not return log probabilities' },
  top_logprobs: { isDefault: (v) => v === 0, reason: 'Anthropic does not return log probabilities' },
  logit_bias: {
    isDefault: (v) => isRecord(v) && Object.keys(v).length === 0,
    reason: 'Anthropic has no logit bias',
  },
  store: { isDefault: (v) => v === false, reason: 'Anthropic does not store completions' },
}

/** Message keys translated or ignored on purpose (`name`: Anthropic has no speaker names; `annotations`: output only). */
const MESSAGE_KEYS = new Set(['role', 'content', 'name', 'tool_calls', 'tool_call_id', 'annotations'])

function unsupported(detail: string): never {
  throw new GatewayError('UNSUPPORTED_PARAMETER', detail)
}

function invalid(detail: string): never {
  throw new GatewayError('INVALID_REQUEST_BODY', detail)
}

/** OpenAI clients send `null` for parameters they leave unset. */
function given<T>(value: T | null | undefined): value is T {
  return value !== null && value !== undefined
}

function refuseUntranslatable(request: ChatRequest): void {
  for (const [key, value] of Object.entries(request)) {
    if (TRANSLATED.has(key) || !given(value)) continue
    const rule = UNTRANSLATABLE[key]
    if (rule?.isDefault(value)) continue
    unsupported(`${key}: ${rule?.reason ?? 'has no Anthropic equivalent'}`)
  }
}

function textPart(part: unknown, at: string, holder: string): TextBlock {
  if (isRecord(part) && part.type === 'text' && typeof part.text === 'string')
    return { type: 'text', text: part.text }
  unsupported(`${at}: ${holder} take text parts only`)
}

function textBlocks(content: unknown, at: string, holder: string): TextBlock[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }]
  if (!Array.isArray(content)) invalid(`${at}.content must be a string or an array of parts`)
  return content.map((part: unknown, j) => textPart(part, `${at}.content[${j}]`, holder))
}

function imageBlock(image: unknown, at: string): ImageBlock {
  if (!isRecord(image) || typeof image.url !== 'string') invalid(`${at}.image_url.url must be a string`)
  if (given(image.detail) && image.detail !== 'auto') {
    unsupported(`${at}.image_url.detail '${String(image.detail)}': Anthropic has no image detail setting`)
  }
  const url = image.url
  const data = BASE64_DATA_URL.exec(url)
  if (data) {
    const mediaType = imageMediaType(data[1] ?? '')
    if (!IMAGE_MEDIA_TYPES.has(mediaType)) {
      unsupported(`${at}: image type '${mediaType}' is not one Anthropic reads (jpeg, png, gif, webp)`)
    }
    return { type: 'image', source: { type: 'base64', media_type: mediaType, data: data[2] ?? '' } }
  }
  if (/^https?:\/\//i.test(url)) return { type: 'image', source: { type: 'url', url } }
  if (url.startsWith('data:')) unsupported(`${at}: only base64 data URLs can be sent to Anthropic`)
  invalid(`${at}.image_url.url must be an http(s) or data URL`)
}

function userPart(part: unknown, at: string): TextBlock | ImageBlock {
  if (!isRecord(part)) invalid(`${at} must be an object`)
  if (part.type === 'text' && typeof part.text === 'string') return { type: 'text', text: part.text }
  if (part.type === 'image_url') return imageBlock(part.image_url, at)
  if (part.type === 'input_audio') unsupported(`${at}: Anthropic does not accept audio input`)
  if (part.type === 'file') unsupported(`${at}: file parts are not translated to Anthropic documents`)
  unsupported(`${at}: content part type '${String(part.type)}' has no Anthropic equivalent`)
}

function userBlocks(content: unknown, at: string): Block[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }]
  if (!Array.isArray(content)) invalid(`${at}.content must be a string or an array of parts`)
  return content.map((part: unknown, j) => userPart(part, `${at}.content[${j}]`))
}

function parseArguments(text: string, at: string): JsonObject {
  // Some clients write '' for a call that takes no arguments.
  if (text.trim() === '') return {}
  const input = parseJson(text)
  if (input === undefined) invalid(`${at}.function.arguments is not valid JSON`)
  if (!isRecord(input)) invalid(`${at}.function.arguments must be a JSON object`)
  return input
}

function toolUse(call: unknown, at: string): ToolUseBlock {
  if (!isRecord(call) || !isRecord(call.function)) invalid(`${at} must be a function call`)
  if (given(call.type) && call.type !== 'function') {
    unsupported(`${at}: tool call type '${String(call.type)}' has no Anthropic equivalent`)
  }
  const { name, arguments: args } = call.function
  if (typeof call.id !== 'string' || typeof name !== 'string' || typeof args !== 'string') {
    invalid(`${at} needs a string id, function.name and function.arguments`)
  }
  return { type: 'tool_use', id: call.id, name, input: parseArguments(args, at) }
}

function assistantBlocks(message: JsonObject, at: string): Block[] {
  // SDKs echo `content: ''` or null beside tool calls; Anthropic refuses empty text blocks.
  const text = given(message.content) ? textBlocks(message.content, at, 'assistant messages') : []
  const calls = message.tool_calls ?? []
  if (!Array.isArray(calls)) invalid(`${at}.tool_calls must be an array`)
  const uses = calls.map((call: unknown, j) => toolUse(call, `${at}.tool_calls[${j}]`))
  return [...text.filter((block) => block.text !== ''), ...uses]
}

function toolResult(message: JsonObject, at: string): ToolResultBlock {
  if (typeof message.tool_call_id !== 'string' || message.tool_call_id === '') {
    invalid(`${at}: a tool message needs a tool_call_id`)
  }
  const { content } = message
  return {
    type: 'tool_result',
    tool_use_id: message.tool_call_id,
    content: typeof content === 'string' ? content : textBlocks(content, at, 'tool results'),
  }
}

/** Anthropic requires turns to alternate, so consecutive same-role messages (and parallel tool results) join. */
function appendTurn(turns: Turn[], role: Turn['role'], blocks: Block[]): void {
  if (blocks.length === 0) return
  const last = turns.at(-1)
  if (last?.role === role) last.content.push(...blocks)
  else turns.push({ role, content: [...blocks] })
}

function refuseExtraKeys(message: JsonObject, at: string): void {
  for (const [key, value] of Object.entries(message)) {
    if (!MESSAGE_KEYS.has(key) && given(value)) unsupported(`${at}.${key} has no Anthropic equivalent`)
  }
}

/** System and developer messages may come anywhere; Anthropic has one top-level system prompt for them all. */
function toConversation(messages: unknown): { system: TextBlock[]; turns: Turn[] } {
  if (!Array.isArray(messages) || messages.length === 0) invalid('messages must be a non-empty array')
  const system: TextBlock[] = []
  const turns: Turn[] = []
  messages.forEach((message: unknown, i) => {
    const at = `messages[${i}]`
    if (!isRecord(message)) invalid(`${at} must be an object`)
    refuseExtraKeys(message, at)
    const { role } = message
    // Anthropic refuses an empty system text block; an empty system prompt asks for nothing anyway.
    if (role === 'system' || role === 'developer')
      system.push(...textBlocks(message.content, at, 'system prompts').filter((block) => block.text !== ''))
    else if (role === 'user') appendTurn(turns, 'user', userBlocks(message.content, at))
    else if (role === 'assistant') appendTurn(turns, 'assistant', assistantBlocks(message, at))
    else if (role === 'tool') appendTurn(turns, 'user', [toolResult(message, at)])
    else invalid(`${at}.role '${String(message.role)}' is not a chat role`)
  })
  return { system, turns }
}

/** A lone text block reads more plainly as a string, and Anthropic treats both the same. */
function turnContent(blocks: Block[]): string | Block[] {
  const [only] = blocks
  return blocks.length === 1 && only?.type === 'text' ? only.text : blocks
}

function systemPrompt(blocks: TextBlock[]): string | TextBlock[] | undefined {
  if (blocks.length <= 1) return blocks[0]?.text
  return blocks
}

function toTool(tool: unknown, at: string): AnthropicTool {
  if (!isRecord(tool)) invalid(`${at} must be an object`)
  if (tool.type !== 'function')
    unsupported(`${at}: tool type '${String(tool.type)}' has no Anthropic equivalent`)
  const fn = tool.function
  if (!isRecord(fn) || typeof fn.name !== 'string') invalid(`${at}.function.name must be a string`)
  if (fn.name === JSON_TOOL_NAME) unsupported(`${at}: the name '${JSON_TOOL_NAME}' is reserved for JSON mode`)
  if (given(fn.parameters) && !isRecord(fn.parameters)) invalid(`${at}.function.parameters must be an object`)
  return {
    name: fn.name,
    ...(typeof fn.description === 'string' ? { description: fn.description } : {}),
    input_schema: fn.parameters ?? EMPTY_SCHEMA,
    ...(fn.strict === true ? { strict: true } : {}),
  }
}

function toTools(tools: unknown): AnthropicTool[] {
  if (!given(tools)) return []
  if (!Array.isArray(tools)) invalid('tools must be an array')
  return tools.map((tool: unknown, i) => toTool(tool, `tools[${i}]`))
}

function toToolChoice(choice: unknown): AnthropicToolChoice | undefined {
  if (!given(choice)) return undefined
  if (choice === 'auto') return { type: 'auto' }
  if (choice === 'required') return { type: 'any' }
  if (choice === 'none') return { type: 'none' }
  if (isRecord(choice) && choice.type === 'function') {
    const name = isRecord(choice.function) ? choice.function.name : undefined
    if (typeof name !== 'string') invalid('tool_choice.function.name must be a string')
    return { type: 'tool', name }
  }
  unsupported(`tool_choice ${JSON.stringify(choice).slice(0, 100)} has no Anthropic equivalent`)
}

/** `parallel_tool_calls: false` lives on Anthropic's tool_choice, which then defaults to auto. */
function withParallelism(
  choice: AnthropicToolChoice | undefined,
  parallel: unknown,
): AnthropicToolChoice | undefined {
  if (parallel !== false || choice?.type === 'none') return choice
  return { ...(choice ?? { type: 'auto' }), disable_parallel_tool_use: true }
}

function jsonModeTool(format: unknown): AnthropicTool | undefined {
  if (!given(format)) return undefined
  if (!isRecord(format)) invalid('response_format must be an object')
  if (format.type === 'text') return undefined
  if (format.type === 'json_object') {
    return {
      name: JSON_TOOL_NAME,
      description: 'Respond with a JSON object.',
      input_schema: { type: 'object' },
    }
  }
  if (format.type !== 'json_schema') {
    unsupported(`response_format type '${String(format.type)}' has no Anthropic equivalent`)
  }
  const spec = format.json_schema
  if (!isRecord(spec) || typeof spec.name !== 'string')
    invalid('response_format.json_schema.name must be a string')
  const schema = spec.schema ?? { type: 'object' }
  if (!isRecord(schema) || schema.type !== 'object') {
    unsupported('response_format.json_schema.schema must have type object: Anthropic tool inputs are objects')
  }
  const details = typeof spec.description === 'string' ? ` ${spec.description}` : ''
  return {
    name: JSON_TOOL_NAME,
    description: `Respond with the '${spec.name}' JSON object.${details}`,
    input_schema: schema,
    ...(spec.strict === true ? { strict: true } : {}),
  }
}

function toTooling(request: ChatRequest): { tools?: AnthropicTool[]; tool_choice?: AnthropicToolChoice } {
  const tools = toTools(request.tools)
  const jsonTool = jsonModeTool(request.response_format)
  if (jsonTool) {
    if (tools.length > 0 || given(request.tool_choice)) {
      unsupported(
        'response_format: JSON mode is a forced tool on Anthropic, so it cannot be combined with tools',
      )
    }
    // One forced call is the whole answer; a second one would have no place in `content`.
    const choice = { type: 'tool', name: JSON_TOOL_NAME, disable_parallel_tool_use: true } as const
    return { tools: [jsonTool], tool_choice: choice }
  }
  // Without tools, parallel_tool_calls has nothing to apply to.
  const choice =
    tools.length > 0
      ? withParallelism(toToolChoice(request.tool_choice), request.parallel_tool_calls)
      : toToolChoice(request.tool_choice)
  return { ...(tools.length > 0 ? { tools } : {}), ...(choice ? { tool_choice: choice } : {}) }
}

function stopSequences(stop: unknown): string[] {
  if (!given(stop)) return []
  if (typeof stop === 'string') return [stop]
  if (Array.isArray(stop) && stop.every((s) => typeof s === 'string')) return stop
  invalid('stop must be a string or an array of strings')
}

function sampling(request: ChatRequest): JsonObject {
  const fields: JsonObject = {}
  if (given(request.temperature)) {
    if (request.temperature > MAX_TEMPERATURE) {
      unsupported(`temperature ${request.temperature} is above Anthropic's maximum of ${MAX_TEMPERATURE}`)
    }
    fields.temperature = request.temperature
  }
  if (given(request.top_p)) fields.top_p = request.top_p
  const stop = stopSequences(request.stop)
  if (stop.length > 0) fields.stop_sequences = stop
  return fields
}

function toProviderRequest(request: ChatRequest): ProviderRequest {
  if (typeof request.model !== 'string' || request.model === '') invalid('model must be a non-empty string')
  refuseUntranslatable(request)
  const { system, turns } = toConversation(request.messages)
  const prompt = systemPrompt(system)
  const body: JsonObject = {
    model: request.model,
    max_tokens: request.max_completion_tokens ?? request.max_tokens ?? DEFAULT_MAX_TOKENS,
    ...(prompt === undefined ? {} : { system: prompt }),
    messages: turns.map((turn) => ({ role: turn.role, content: turnContent(turn.content) })),
    ...sampling(request),
    ...toTooling(request),
    ...(request.stream === true ? { stream: true } : {}),
    ...(given(request.user) ? { metadata: { user_id: request.user } } : {}),
  }
  return { path: '/v1/messages', body }
}

/** OpenAI Chat Completions over Anthropic Messages; Anthropic has no embeddings endpoint. */
export const anthropicCodec: ChatCodec = {
  toProviderRequest,
  fromProviderResponse,
  fromProviderError,
  streamTranslator: anthropicStreamTranslator,
}
