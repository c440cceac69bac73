/**
 * OpenAI Chat Completions and Embeddings ↔ Google AI Studio's Gemini API (`v1beta`). This file builds the
 * Gemini requests and assembles the codec; answers are read in `gemini-stream.ts`.
 *
 * Choices worth knowing:
 * - Images must be base64 data URLs. Gemini's `inlineData` needs the bytes and the codec does no I/O, so
 *   http(s) image URLs are refused rather than fetched (Gemini's `fileData` only takes its own Files API
 *   URIs, whose type cannot be told from the URL).
 * - System and developer messages, wherever they stand, become one `systemInstruction`, in order.
 * - JSON schemas (tool parameters and `response_format.json_schema`) go through `toGeminiSchema`, which
 *   removes the keywords listed in `STRIPPED_SCHEMA_KEYS` (`gemini-tools.ts`); `response_format` uses `responseSchema` so both
 *   places speak the same OpenAPI-subset schema.
 * - `user` is accepted and not sent: it is an end-user id for OpenAI's abuse monitoring, it changes nothing
 *   in the answer, and Gemini has no field for it.
 */
import { isRecord } from '../../json.js'
import { imageMediaType } from './common.js'
import {
  fromBatchEmbed,
  fromGeminiError,
  fromGenerateContent,
  geminiStreamTranslator,
} from './gemini-stream.js'
import { invalid, toGeminiSchema, toToolConfig, toTools, unsupported } from './gemini-tools.js'
import type { ChatRequest, EmbeddingsRequest } from './openai-types.js'
import type { ChatCodec, ProviderRequest } from './types.js'

type GeminiPart =
  | { text: string }
  | { inlineData: { mimeType: string; data: string } }
  | { functionCall: { name: string; args: Record<string, unknown> }; thoughtSignature?: string }
  | { functionResponse: { name: string; response: Record<string, unknown> } }

interface GeminiContent {
  role: 'user' | 'model'
  parts: GeminiPart[]
}

/** Request keys this codec reads. Any other key with a value is refused, never dropped. */
const CHAT_KEYS = new Set([
  'model',
  'messages',
  'stream',
  'stream_options',
  'temperature',
  'top_p',
  'max_tokens',
  'max_completion_tokens',
  'stop',
  'seed',
  'n',
  'logprobs',
  'top_logprobs',
  'presence_penalty',
  'frequency_penalty',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'response_format',
  'user',
])

const EMBEDDING_KEYS = new Set(['model', 'input', 'dimensions', 'encoding_format', 'user'])

const MODEL_NAME = /^[A-Za-z0-9._-]+$/
const MIME_TYPE = /^[\w.+-]+\/[\w.+-]+$/

/** Drops keys whose value is undefined, so optional fields are absent rather than present-and-undefined. */
function defined(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined))
}

/**
 * Checks the model name, which lands in the URL path.
 * @example checkModel('gemini-2.5-flash') // 'gemini-2.5-flash'
 */
export function checkModel(model: unknown): string {
  if (typeof model !== 'string' || !MODEL_NAME.test(model) || model.includes('..')) {
    const shown = typeof model === 'string' ? `'${model}'` : typeof model
    throw invalid(
      `model ${shown} must use only A-Z a-z 0-9 . _ - and no '..', as it becomes part of the URL path`,
    )
  }
  return model
}

/** Keys Gemini has no equivalent for that clients send at the value asking for nothing, accepted there. */
const ASKS_NOTHING: Readonly<Record<string, (value: unknown) => boolean>> = {
  store: (value) => value === false,
  logit_bias: (value) => isRecord(value) && Object.keys(value).length === 0,
}

/** Refuses request keys with a value that no branch below translates. `null` counts as unset, as in OpenAI's API. */
function refuseUnknownKeys(request: Record<string, unknown>, known: ReadonlySet<string>): void {
  for (const [key, value] of Object.entries(request)) {
    if (known.has(key) || value === null || value === undefined || ASKS_NOTHING[key]?.(value)) continue
    throw unsupported(`'${key}' has no Gemini equivalent`)
  }
}

function optionalNumber(request: Record<string, unknown>, key: string): number | undefined {
  const value = request[key]
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(`${key} must be a number`)
  return value
}

function optionalInteger(request: Record<string, unknown>, key: string, min: number): number | undefined {
  const value = optionalNumber(request, key)
  if (value !== undefined && (!Number.isInteger(value) || value < min)) {
    throw invalid(`${key} must be an integer of at least ${min}`)
  }
  return value
}

function optionalBoolean(request: Record<string, unknown>, key: string): boolean | undefined {
  const value = request[key]
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'boolean') throw invalid(`${key} must be a boolean`)
  return value
}

/** Refuses what asks for more than one choice or for log probabilities; their default values are fine. */
function refuseUntranslatable(request: Record<string, unknown>): void {
  const n = optionalInteger(request, 'n', 1)
  if (n !== undefined && n !== 1) {
    throw unsupported(`n: ${n} asks for several choices; the Gemini translation returns one, so send n: 1`)
  }
  if (optionalBoolean(request, 'logprobs') === true || (request.top_logprobs ?? 0) !== 0) {
    throw unsupported('logprobs and top_logprobs: token log probabilities are not translated for Gemini')
  }
  if (optionalBoolean(request, 'parallel_tool_calls') === false) {
    throw unsupported('parallel_tool_calls: false: Gemini cannot be limited to one function call per turn')
  }
}

function textPart(part: Record<string, unknown>, at: string): { text: string } {
  if (typeof part.text !== 'string') throw invalid(`${at}.text must be a string`)
  return { text: part.text }
}

/** Text-only content (system, assistant and tool messages); `null` or absent gives no parts. */
function textParts(content: unknown, at: string, who: string): { text: string }[] {
  if (content === undefined || content === null) return []
  if (typeof content === 'string') return [{ text: content }]
  if (!Array.isArray(content)) throw invalid(`${at}.content must be a string or an array of parts`)
  return content.map((part: unknown, j) => {
    if (!isRecord(part)) throw invalid(`${at}.content[${j}] must be an object`)
    if (part.type !== 'text') throw unsupported(`${at}.content[${j}]: ${who} messages take text parts only`)
    return textPart(part, `${at}.content[${j}]`)
  })
}

/**
 * A data-URL image as Gemini inline data.
 * @example imagePart({ url: 'data:image/png;base64,iVBO' }, 'messages[0].content[1]')
 * // { inlineData: { mimeType: 'image/png', data: 'iVBO' } }
 */
function imagePart(image: unknown, at: string): GeminiPart {
  if (!isRecord(image) || typeof image.url !== 'string') throw invalid(`${at}.image_url.url must be a string`)
  if (image.detail !== undefined && image.detail !== 'auto') {
    throw unsupported(
      `${at}.image_url.detail '${String(image.detail)}': Gemini has no per-image detail setting`,
    )
  }
  const url = image.url
  if (/^https?:/i.test(url)) {
    throw unsupported(
      `${at}.image_url: http(s) image URLs are not fetched; Gemini needs the bytes inline, so send a base64 data URL`,
    )
  }
  if (!url.startsWith('data:')) throw unsupported(`${at}.image_url: only base64 data URLs are translated`)
  const comma = url.indexOf(',')
  const meta = url.slice('data:'.length, comma === -1 ? undefined : comma).split(';')
  const mimeType = meta[0] ?? ''
  if (comma === -1 || !MIME_TYPE.test(mimeType)) {
    throw invalid(`${at}.image_url.url is not a well-formed data URL`)
  }
  if (meta.at(-1) !== 'base64') throw unsupported(`${at}.image_url: only base64 data URLs are translated`)
  return { inlineData: { mimeType: imageMediaType(mimeType), data: url.slice(comma + 1) } }
}

function userParts(content: unknown, at: string): GeminiPart[] {
  if (typeof content === 'string') return [{ text: content }]
  if (!Array.isArray(content)) throw invalid(`${at}.content must be a string or an array of parts`)
  return content.map((part: unknown, j): GeminiPart => {
    const partAt = `${at}.content[${j}]`
    if (!isRecord(part) || typeof part.type !== 'string') {
      throw invalid(`${partAt} must be an object with a type`)
    }
    if (part.type === 'text') return textPart(part, partAt)
    if (part.type === 'image_url') return imagePart(part.image_url, partAt)
    throw unsupported(`${partAt}: '${part.type}' parts are not translated for Gemini`)
  })
}

/** Parses tool-call arguments; an empty string is a call without arguments. */
function parseArguments(text: string, at: string): Record<string, unknown> {
  if (text.trim() === '') return {}
  let args: unknown
  try {
    args = JSON.parse(text)
  } catch {
    throw invalid(`${at}.function.arguments is not valid JSON`)
  }
  if (!isRecord(args)) throw invalid(`${at}.function.arguments must be a JSON object`)
  return args
}

function functionCallPart(call: unknown, at: string, toolNames: Map<string, string>): GeminiPart {
  if (!isRecord(call) || typeof call.id !== 'string' || !isRecord(call.function)) {
    throw invalid(`${at} must be an object with an id and a function`)
  }
  const { name, arguments: args } = call.function
  if (typeof name !== 'string' || typeof args !== 'string') {
    throw invalid(`${at}.function needs a string name and string arguments`)
  }
  toolNames.set(call.id, name)
  const part = { functionCall: { name, args: parseArguments(args, at) } }
  const signature = thoughtSignature(call.extra_content)
  return signature === undefined ? part : { ...part, thoughtSignature: signature }
}

/**
 * The thought signature the answer gave this call (`gemini-stream.ts`), as the client sent it back. Gemini 3
 * refuses a conversation whose function calls lack theirs.
 */
function thoughtSignature(extra: unknown): string | undefined {
  const google = isRecord(extra) ? extra.google : undefined
  const signature = isRecord(google) ? google.thought_signature : undefined
  return typeof signature === 'string' && signature !== '' ? signature : undefined
}

/**
 * An assistant message's text and calls. Empty text is left out: SDKs echo `content: ''` beside tool calls,
 * and Gemini refuses a part whose text is empty ("required oneof field 'data'"). A turn that said nothing
 * at all gives no parts, and is left out of the conversation.
 */
function assistantParts(
  message: Record<string, unknown>,
  at: string,
  toolNames: Map<string, string>,
): GeminiPart[] {
  const calls = message.tool_calls ?? []
  if (!Array.isArray(calls)) throw invalid(`${at}.tool_calls must be an array`)
  if ((message.content ?? null) === null && calls.length === 0) {
    throw invalid(`${at}: an assistant message needs content or tool_calls`)
  }
  const parts: GeminiPart[] = withText(textParts(message.content, at, 'assistant'))
  parts.push(...calls.map((call: unknown, k) => functionCallPart(call, `${at}.tool_calls[${k}]`, toolNames)))
  return parts
}

/** Text parts that say something: Gemini refuses an empty one. */
function withText(parts: { text: string }[]): { text: string }[] {
  return parts.filter((part) => part.text !== '')
}

/** Gemini wants an object as the function's response; JSON objects go as they are, anything else is wrapped. */
function functionResponse(text: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text)
    if (isRecord(parsed)) return parsed
  } catch {
    // Plain text output, wrapped below.
  }
  return { content: text }
}

function toolParts(
  message: Record<string, unknown>,
  at: string,
  toolNames: Map<string, string>,
): GeminiPart[] {
  if (typeof message.tool_call_id !== 'string') throw invalid(`${at}.tool_call_id must be a string`)
  const name = toolNames.get(message.tool_call_id)
  if (name === undefined) {
    throw invalid(`${at}.tool_call_id '${message.tool_call_id}' matches no earlier assistant tool call`)
  }
  if (message.content === undefined || message.content === null) throw invalid(`${at}.content is required`)
  const text = textParts(message.content, at, 'tool')
    .map((part) => part.text)
    .join('')
  return [{ functionResponse: { name, response: functionResponse(text) } }]
}

/** Consecutive contents of one role become one, since Gemini expects the turns to alternate. */
function appendMerged(contents: GeminiContent[], next: GeminiContent): void {
  const last = contents.at(-1)
  if (last && last.role === next.role) last.parts.push(...next.parts)
  else contents.push(next)
}

function readMessage(message: unknown, at: string): Record<string, unknown> & { role: string } {
  if (!isRecord(message) || typeof message.role !== 'string') {
    throw invalid(`${at} must be an object with a role`)
  }
  // On a tool message `name` is the function's (OpenAI's guides once set it there), which the result takes
  // from its call anyway; on the others it names a participant, which Gemini has no place for.
  if (message.name !== undefined && message.name !== null && message.role !== 'tool') {
    throw unsupported(`${at}.name: Gemini has no participant names`)
  }
  return { ...message, role: message.role }
}

function systemParts(message: Record<string, unknown>, at: string, role: string): { text: string }[] {
  if (message.content === undefined || message.content === null) throw invalid(`${at}.content is required`)
  return withText(textParts(message.content, at, role))
}

/** One user, assistant or tool message as a Gemini content. */
function toContent(
  message: Record<string, unknown>,
  role: string,
  at: string,
  toolNames: Map<string, string>,
): GeminiContent {
  switch (role) {
    case 'user':
      return { role: 'user' as const, parts: userParts(message.content, at) }
    case 'assistant':
      return { role: 'model' as const, parts: assistantParts(message, at, toolNames) }
    case 'tool':
      return { role: 'user' as const, parts: toolParts(message, at, toolNames) }
    default:
      throw invalid(`${at}.role '${role}' is not one of system, developer, user, assistant, tool`)
  }
}

/**
 * OpenAI messages as Gemini `contents` and system parts. Tool results find their function's name through
 * the earlier assistant call with the same id, as Gemini matches results to calls by name.
 */
function toContents(messages: unknown): { contents: GeminiContent[]; system: { text: string }[] } {
  if (!Array.isArray(messages) || messages.length === 0) throw invalid('messages must be a non-empty array')
  const list: unknown[] = messages
  const toolNames = new Map<string, string>()
  const contents: GeminiContent[] = []
  const system: { text: string }[] = []
  for (const [i, raw] of list.entries()) {
    const at = `messages[${i}]`
    const message = readMessage(raw, at)
    if (message.role === 'system' || message.role === 'developer') {
      system.push(...systemParts(message, at, message.role))
    } else {
      const content = toContent(message, message.role, at, toolNames)
      if (content.parts.length > 0) appendMerged(contents, content)
    }
  }
  return { contents, system }
}

function maxOutputTokens(request: Record<string, unknown>): number | undefined {
  const completion = optionalInteger(request, 'max_completion_tokens', 1)
  const legacy = optionalInteger(request, 'max_tokens', 1)
  if (completion !== undefined && legacy !== undefined && completion !== legacy) {
    throw invalid('max_tokens and max_completion_tokens disagree; send one of them')
  }
  return completion ?? legacy
}

function stopSequences(stop: unknown): string[] | undefined {
  if (stop === undefined || stop === null) return undefined
  if (typeof stop === 'string') return [stop]
  const items: unknown[] = Array.isArray(stop) ? stop : [stop]
  if (!items.every((item): item is string => typeof item === 'string')) {
    throw invalid('stop must be a string or an array of strings')
  }
  return items.length > 0 ? items : undefined
}

function responseFormat(format: unknown): Record<string, unknown> {
  if (format === undefined || format === null) return {}
  if (!isRecord(format)) throw invalid('response_format must be an object')
  if (format.type === 'text') return {}
  if (format.type === 'json_object') return { responseMimeType: 'application/json' }
  if (format.type !== 'json_schema') {
    throw invalid(`response_format.type '${String(format.type)}' is not known`)
  }
  const spec = format.json_schema
  if (!isRecord(spec)) throw invalid('response_format.json_schema must be an object')
  if (spec.schema === undefined) return { responseMimeType: 'application/json' }
  if (!isRecord(spec.schema)) throw invalid('response_format.json_schema.schema must be an object')
  // `name` only labels the schema on OpenAI's side, and `strict` already holds: Gemini constrains its
  // output to `responseSchema`. The description guides the model as a schema description does, so it
  // becomes one unless the schema has its own.
  const described =
    typeof spec.description === 'string' && spec.schema.description === undefined
      ? { ...spec.schema, description: spec.description }
      : spec.schema
  return { responseMimeType: 'application/json', responseSchema: toGeminiSchema(described) }
}

/** Sampling and output settings; `candidateCount` is never sent, as only n: 1 gets this far. */
function toGenerationConfig(request: Record<string, unknown>): Record<string, unknown> {
  return defined({
    temperature: optionalNumber(request, 'temperature'),
    topP: optionalNumber(request, 'top_p'),
    maxOutputTokens: maxOutputTokens(request),
    stopSequences: stopSequences(request.stop),
    seed: optionalInteger(request, 'seed', Number.MIN_SAFE_INTEGER),
    presencePenalty: optionalNumber(request, 'presence_penalty'),
    frequencyPenalty: optionalNumber(request, 'frequency_penalty'),
    ...responseFormat(request.response_format),
  })
}

function chatPath(model: string, stream: boolean): string {
  return stream
    ? `/v1beta/models/${model}:streamGenerateContent?alt=sse`
    : `/v1beta/models/${model}:generateContent`
}

/**
 * An OpenAI chat request as a Gemini `generateContent` (or `streamGenerateContent`) call.
 * @example toGenerateContent({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'Hi' }] })
 * // { path: '/v1beta/models/gemini-2.5-flash:generateContent', body: { contents: [{ role: 'user', parts: [{ text: 'Hi' }] }] } }
 */
export function toGenerateContent(request: ChatRequest): ProviderRequest {
  const raw: unknown = request
  if (!isRecord(raw)) throw invalid('the request body must be a JSON object')
  refuseUnknownKeys(raw, CHAT_KEYS)
  const model = checkModel(raw.model)
  refuseUntranslatable(raw)
  const stream = optionalBoolean(raw, 'stream') ?? false
  const { contents, system } = toContents(raw.messages)
  const { declarations } = toTools(raw.tools)
  const generationConfig = toGenerationConfig(raw)
  const body = defined({
    contents,
    systemInstruction: system.length > 0 ? { parts: system } : undefined,
    tools: declarations.length > 0 ? [{ functionDeclarations: declarations }] : undefined,
    toolConfig: toToolConfig(raw.tool_choice, declarations),
    generationConfig: Object.keys(generationConfig).length > 0 ? generationConfig : undefined,
  })
  return { path: chatPath(model, stream), body }
}

function embeddingInputs(input: unknown): string[] {
  if (typeof input === 'string') return [input]
  if (!Array.isArray(input) || input.length === 0) {
    throw invalid('input must be a string or a non-empty array')
  }
  const items: unknown[] = input
  if (items.every((item): item is string => typeof item === 'string')) return items
  if (items.every((item) => typeof item === 'number' || Array.isArray(item))) {
    throw unsupported('input: token-id input is not translated; Gemini embeds text only')
  }
  throw invalid('input must be a string or an array of strings')
}

/**
 * An OpenAI embeddings request as one Gemini `batchEmbedContents` call, one request per input.
 * @example toBatchEmbed({ model: 'gemini-embedding-001', input: 'hi' }).body
 * // { requests: [{ model: 'models/gemini-embedding-001', content: { parts: [{ text: 'hi' }] } }] }
 */
export function toBatchEmbed(request: EmbeddingsRequest): ProviderRequest {
  const raw: unknown = request
  if (!isRecord(raw)) throw invalid('the request body must be a JSON object')
  refuseUnknownKeys(raw, EMBEDDING_KEYS)
  const model = checkModel(raw.model)
  // Gemini answers floats only; the gateway encodes them when the client asked for base64 (the OpenAI SDKs'
  // default), so the format is checked here and not sent.
  const format = raw.encoding_format ?? 'float'
  if (format !== 'float' && format !== 'base64') throw invalid("encoding_format must be 'float' or 'base64'")
  const dimensions = optionalInteger(raw, 'dimensions', 1)
  const requests = embeddingInputs(raw.input).map((text) => ({
    model: `models/${model}`,
    content: { parts: [{ text }] },
    ...(dimensions !== undefined ? { outputDimensionality: dimensions } : {}),
  }))
  return { path: `/v1beta/models/${model}:batchEmbedContents`, body: { requests } }
}

export const geminiCodec: ChatCodec = {
  toProviderRequest: toGenerateContent,
  fromProviderResponse: fromGenerateContent,
  fromProviderError: fromGeminiError,
  streamTranslator: geminiStreamTranslator,
  embeddings: {
    toProviderRequest: toBatchEmbed,
    fromProviderResponse: fromBatchEmbed,
  },
}
