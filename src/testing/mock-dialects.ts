import { createHash } from 'node:crypto'
import { isRecord } from '../json.js'

/** A provider API family, recognised from the request path. */
export type Dialect = 'openai' | 'anthropic' | 'gemini'

/** What the mock recognised in a request line. */
export interface Route {
  dialect: Dialect
  endpoint: 'chat' | 'embeddings' | 'models' | 'classification' | 'unknown'
  /** Gemini names the model and the streaming mode in the path rather than in the body. */
  gemini?: { model: string; stream: boolean }
  /**
   * An OpenAI path under an `/openai/` segment, as Azure OpenAI serves them: the `api-key` header is
   * accepted there; `deployments` (`/openai/deployments/{name}/...`) also answers auth failures the Azure way.
   */
  azure?: 'deployments' | 'v1'
  /** A Prompt Guard model served as Hugging Face text classification names the model in the path. */
  classification?: { model: string }
}

/** A credential found on a request, and where it was. */
export interface Credential {
  key: string
  source: 'authorization' | 'x-api-key' | 'x-goog-api-key' | 'api-key' | 'query'
}

/** A refusal the mock answers with instead of serving the call. */
export interface Refusal {
  status: number
  body: unknown
}

/** Everything a dialect needs to answer one call. */
export interface Exchange {
  route: Route
  request: Record<string, unknown>
  query: string
  sequence: number
  created: number
  model: string
  reply: string
  promptTokens: number
  /** Function the OpenAI request asks to be called, when it asks for one. */
  toolName: string | undefined
}

/** A response body: one JSON document, or events written one by one. */
export type MockResponse =
  | { kind: 'json'; body: unknown }
  | {
      kind: 'stream'
      contentType: string
      events: string[]
      /** Index of the first event of the answer itself, after the role chunk, `message_start` and pings. */
      answerAt: number
      /** The last event is the stream's terminator (`data: [DONE]`, `message_stop`). */
      endsWithTerminator: boolean
    }

/** Framed events of a stream; only `content` events are counted by `malformedEventAt`. */
interface EventParts {
  before: string[]
  content: string[]
  after: string[]
}

const MALFORMED_SSE_EVENT = 'data: {not json\n\n'
const MALFORMED_ARRAY_ELEMENT = '{not json'
const GEMINI_ACTION = /\/models\/([^/]+):(generateContent|streamGenerateContent|batchEmbedContents)$/
const MOCK_MODELS = ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small']
const AZURE_PATH = /\/openai\/(deployments\/|v1\/)/
/** Hugging Face Inference text classification, `POST .../models/{org}/{model}`, for Prompt Guard models only. */
const CLASSIFICATION_PATH = /\/models\/([^:]*prompt-guard[^:]*)$/i

const OPENAI_KEYS_PAGE = 'You can find your API key at https://platform.openai.com/account/api-keys.'
const OPENAI_NO_KEY =
  "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer " +
  "auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're " +
  'accessing the API from your browser and are prompted for a username. You can obtain an API key from ' +
  'https://platform.openai.com/account/api-keys.'
const OPENAI_BAD_JSON =
  "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP " +
  'library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you ' +
  'have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)'
const AZURE_DENIED =
  'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for ' +
  'an active subscription and use a correct regional API endpoint for your resource.'
const GEMINI_NO_KEY =
  "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or " +
  'other form of API consumer identity to call this API.'

/**
 * Recognises the provider endpoint from the path suffix, so any gateway prefix is accepted.
 * @example resolveRoute('POST', '/openai/v1/chat/completions') // { dialect: 'openai', endpoint: 'chat' }
 */
export function resolveRoute(method: string, path: string): Route {
  const trimmed = path.length > 1 ? path.replace(/\/+$/, '') : path
  if (method === 'GET' && trimmed.endsWith('/models')) return { dialect: 'openai', endpoint: 'models' }
  if (method !== 'POST') return { dialect: 'openai', endpoint: 'unknown' }
  const gemini = GEMINI_ACTION.exec(trimmed)
  if (gemini) {
    const model = decodeSafely(gemini[1] ?? '')
    return {
      dialect: 'gemini',
      endpoint: gemini[2] === 'batchEmbedContents' ? 'embeddings' : 'chat',
      gemini: { model, stream: gemini[2] === 'streamGenerateContent' },
    }
  }
  if (trimmed.endsWith('/chat/completions')) return openAiRoute('chat', trimmed)
  if (trimmed.endsWith('/embeddings')) return openAiRoute('embeddings', trimmed)
  if (trimmed.endsWith('/messages')) return { dialect: 'anthropic', endpoint: 'chat' }
  const classified = CLASSIFICATION_PATH.exec(trimmed)?.[1]
  if (classified !== undefined) {
    return {
      dialect: 'openai',
      endpoint: 'classification',
      classification: { model: decodeSafely(classified) },
    }
  }
  return { dialect: 'openai', endpoint: 'unknown' }
}

function openAiRoute(endpoint: Route['endpoint'], path: string): Route {
  const azure = AZURE_PATH.exec(path)?.[1]
  if (azure === undefined) return { dialect: 'openai', endpoint }
  return { dialect: 'openai', endpoint, azure: azure === 'v1/' ? 'v1' : 'deployments' }
}

/**
 * Finds the credential where the route's provider reads it: OpenAI `authorization: Bearer` (plus `api-key`
 * on Azure paths), Anthropic `x-api-key` (or a Bearer token), Gemini `x-goog-api-key`, `?key=` or a Bearer
 * token. Headers are lower-case, as recorded.
 * @example findCredential(resolveRoute('POST', '/v1/messages'), { 'x-api-key': 'sk-ant' }, '') // { key: 'sk-ant', source: 'x-api-key' }
 */
export function findCredential(
  route: Route,
  headers: Record<string, string>,
  query: string,
): Credential | undefined {
  const bearer = bearerCredential(headers.authorization)
  const header = (name: 'x-api-key' | 'x-goog-api-key' | 'api-key'): Credential | undefined => {
    const key = headers[name]?.trim()
    return key ? { key, source: name } : undefined
  }
  if (route.dialect === 'anthropic') return header('x-api-key') ?? bearer
  if (route.dialect === 'gemini') {
    const key = new URLSearchParams(query).get('key')?.trim()
    return header('x-goog-api-key') ?? (key ? { key, source: 'query' } : undefined) ?? bearer
  }
  return (route.azure ? header('api-key') : undefined) ?? bearer
}

function bearerCredential(authorization: string | undefined): Credential | undefined {
  const key = /^Bearer\s+(.+)$/i.exec(authorization?.trim() ?? '')?.[1]?.trim()
  return key ? { key, source: 'authorization' } : undefined
}

/**
 * What the provider answers a call that carries no credential: 401 in each dialect's shape, except Gemini,
 * which answers 403 PERMISSION_DENIED as Google does.
 * @example missingCredential(resolveRoute('POST', '/v1/messages')).body // { type: 'error', error: { type: 'authentication_error', message: 'x-api-key header is required' } }
 */
export function missingCredential(route: Route): Refusal {
  if (route.dialect === 'anthropic') {
    return { status: 401, body: errorBody('anthropic', 401, 'x-api-key header is required') }
  }
  if (route.dialect === 'gemini') return { status: 403, body: errorBody('gemini', 403, GEMINI_NO_KEY) }
  if (route.azure === 'deployments') return { status: 401, body: azureDenied(AZURE_DENIED) }
  return {
    status: 401,
    body: { error: { message: OPENAI_NO_KEY, type: 'invalid_request_error', param: null, code: null } },
  }
}

/**
 * What the provider answers a credential it does not accept. `quote` puts the key in the message verbatim, as
 * OpenAI does (`Incorrect API key provided: sk-...`). Gemini answers an unknown API key with 400
 * INVALID_ARGUMENT (API_KEY_INVALID) and an unknown Bearer token with 401 UNAUTHENTICATED, as Google does.
 * @example rejectedCredential(resolveRoute('POST', '/v1/chat/completions'), { key: 'sk-x', source: 'authorization' }, true).status // 401
 */
export function rejectedCredential(route: Route, credential: Credential, quote: boolean): Refusal {
  const { key } = credential
  if (route.dialect === 'anthropic') {
    const message = quote ? `invalid x-api-key: ${key}` : 'invalid x-api-key'
    return { status: 401, body: errorBody('anthropic', 401, message) }
  }
  if (route.dialect === 'gemini') {
    if (credential.source === 'authorization') {
      const message = `Request had invalid authentication credentials${quote ? `: ${key}` : ''}. Expected OAuth 2 access token, login cookie or other valid authentication credential.`
      return { status: 401, body: errorBody('gemini', 401, message) }
    }
    const message = `API key not valid${quote ? `: ${key}` : ''}. Please pass a valid API key.`
    const details = [
      {
        '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
        reason: 'API_KEY_INVALID',
        domain: 'googleapis.com',
        metadata: { service: 'generativelanguage.googleapis.com' },
      },
    ]
    return { status: 400, body: { error: { code: 400, message, status: 'INVALID_ARGUMENT', details } } }
  }
  if (route.azure === 'deployments') {
    const message = quote ? AZURE_DENIED.replace('subscription key', `subscription key ${key}`) : AZURE_DENIED
    return { status: 401, body: azureDenied(message) }
  }
  const message = `Incorrect API key provided${quote ? `: ${key}` : ''}. ${OPENAI_KEYS_PAGE}`
  return { status: 401, body: errorBody('openai', 401, message) }
}

/**
 * A 401 the script asked for: the dialect's wrong-key error for the key the call carried (quoted when
 * `quote`), or its plain 401 when the call carried none. Gemini answers a bad API key with 400, so a scripted
 * 401 there is the one Google gives a bad token.
 * @example scriptedUnauthorized(route, { key: 'sk-live', source: 'authorization' }, true) // "Incorrect API key provided: sk-live. ..."
 */
export function scriptedUnauthorized(
  route: Route,
  credential: Credential | undefined,
  quote: boolean,
): unknown {
  if (credential === undefined) {
    return route.azure === 'deployments' ? azureDenied(AZURE_DENIED) : errorBody(route.dialect, 401)
  }
  const asToken =
    route.dialect === 'gemini' ? { ...credential, source: 'authorization' as const } : credential
  return rejectedCredential(route, asToken, quote).body
}

/**
 * What the provider answers a body that is not a JSON object, always 400.
 * @example invalidJsonBody(resolveRoute('POST', '/v1/chat/completions'), 'syntax').status // 400
 */
export function invalidJsonBody(route: Route, problem: 'syntax' | 'not-object'): Refusal {
  const syntax = problem === 'syntax'
  if (route.dialect === 'anthropic') {
    const message = syntax
      ? 'There was an error parsing the body of your request: it is not valid JSON.'
      : 'The request body must be a JSON object.'
    return { status: 400, body: errorBody('anthropic', 400, message) }
  }
  if (route.dialect === 'gemini') {
    const message = syntax
      ? 'Invalid JSON payload received. Unexpected token.'
      : 'Invalid JSON payload received. Expected an object.'
    return { status: 400, body: errorBody('gemini', 400, message) }
  }
  const message = syntax ? OPENAI_BAD_JSON : "Invalid type for 'body': expected an object."
  return {
    status: 400,
    body: { error: { message, type: 'invalid_request_error', param: null, code: null } },
  }
}

function azureDenied(message: string): unknown {
  return { error: { code: '401', message } }
}

/**
 * Gathers what the answer depends on: model, reply text, token counts and tool intent.
 * @example describeExchange(route, { model: 'gpt-4o', messages: [] }, '', 1, undefined).reply // 'mock reply'
 */
export function describeExchange(
  route: Route,
  request: Record<string, unknown>,
  query: string,
  sequence: number,
  replyOverride: string | undefined,
): Exchange {
  const userText = lastUserText(route.dialect, request)
  const conversation = route.dialect === 'gemini' ? request.contents : request.messages
  const system = route.dialect === 'gemini' ? request.systemInstruction : request.system
  const model =
    typeof request.model === 'string'
      ? request.model
      : (route.gemini?.model ?? route.classification?.model ?? 'mock-model')
  return {
    route,
    request,
    query,
    sequence,
    created: Math.floor(Date.now() / 1000),
    model,
    reply: continued(
      replyOverride ??
        llamaGuardReply(route, model, request) ??
        (userText ? `mock reply to: ${userText}` : 'mock reply'),
      prefillOf(route.dialect, request),
    ),
    promptTokens: countWords(textOf(conversation)) + countWords(textOf(system)),
    toolName: route.dialect === 'openai' ? requestedToolName(request, userText) : undefined,
  }
}

/**
 * Builds the success response for a recognised route, streamed when the request asks for it.
 * @example buildResponse(exchange, undefined) // { kind: 'json', body: { object: 'chat.completion', ... } }
 */
export function buildResponse(x: Exchange, malformedEventAt: number | undefined): MockResponse {
  const { dialect, endpoint } = x.route
  if (endpoint === 'embeddings') {
    return { kind: 'json', body: dialect === 'gemini' ? geminiEmbeddingsBody(x) : embeddingsBody(x) }
  }
  if (endpoint === 'models') return { kind: 'json', body: modelsBody(x.created) }
  if (endpoint === 'classification') return json(promptGuardBody(x.model, x.request.inputs))
  if (dialect === 'gemini') return geminiResponse(x, malformedEventAt)
  const streams = x.request.stream === true
  if (dialect === 'anthropic') {
    return streams ? sseResponse(anthropicEvents(x), malformedEventAt) : json(anthropicMessage(x))
  }
  return streams ? sseResponse(openAiEvents(x), malformedEventAt) : json(openAiCompletion(x))
}

/**
 * The error body each provider sends with a non-2xx status.
 * @example errorBody('anthropic', 529) // { type: 'error', error: { type: 'overloaded_error', message: ... } }
 */
export function errorBody(
  dialect: Dialect,
  status: number,
  message = `mock error (HTTP ${status})`,
): unknown {
  if (dialect === 'anthropic') return { type: 'error', error: { type: anthropicErrorType(status), message } }
  if (dialect === 'gemini') return { error: { code: status, message, status: geminiErrorStatus(status) } }
  return { error: { message, type: openAiErrorType(status), param: null, code: openAiErrorCode(status) } }
}

function decodeSafely(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

/** Collects text from any of the dialects' message shapes: strings, parts arrays, messages, Gemini contents. */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content
  if (Array.isArray(content)) return content.map(textOf).filter(Boolean).join(' ')
  if (!isRecord(content)) return ''
  if (typeof content.text === 'string') return content.text
  if (content.parts !== undefined) return textOf(content.parts)
  return textOf(content.content)
}

/**
 * The start of the answer a request gives the model to go on from: a last assistant message, for dialects
 * that continue one (Anthropic; OpenAI-compatible servers when it is marked `prefix: true`, as Mistral's).
 * @example prefillOf('anthropic', { messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'He' }] }) // 'He'
 */
export function prefillOf(dialect: Dialect, request: Record<string, unknown>): string | undefined {
  if (dialect === 'gemini' || !Array.isArray(request.messages)) return undefined
  const last: unknown = request.messages.at(-1)
  if (!isRecord(last) || last.role !== 'assistant') return undefined
  if (dialect !== 'anthropic' && last.prefix !== true) return undefined
  return textOf(last.content)
}

/** What a model given `prefill` adds to it: the rest of its answer when the prefill begins it. */
function continued(reply: string, prefill: string | undefined): string {
  if (prefill === undefined) return reply
  return reply.startsWith(prefill) ? reply.slice(prefill.length) : ' and so on.'
}

function lastUserText(dialect: Dialect, request: Record<string, unknown>): string | undefined {
  const list = dialect === 'gemini' ? request.contents : request.messages
  if (!Array.isArray(list)) return undefined
  for (const message of list.toReversed()) {
    // Gemini lets single-turn requests omit the role.
    const fromUser = isRecord(message) && (message.role === 'user' || (dialect === 'gemini' && !message.role))
    const text = fromUser ? textOf(message).trim() : ''
    if (text) return text
  }
  return undefined
}

function countWords(text: string): number {
  return text.split(/\s+/).filter((word) => word.length > 0).length
}

/** Splits text into word pieces that concatenate back to the text, like a tokenizer would stream it. */
function wordPieces(text: string): string[] {
  return text.match(/\s*\S+(?:\s+$)?/g) ?? []
}

function requestedToolName(
  request: Record<string, unknown>,
  userText: string | undefined,
): string | undefined {
  const tools = request.tools
  const choice = request.tool_choice
  if (!Array.isArray(tools) || tools.length === 0 || choice === 'none') return undefined
  if (isRecord(choice) && isRecord(choice.function) && typeof choice.function.name === 'string') {
    return choice.function.name
  }
  if (choice !== 'required' && !/\btools?\b/i.test(userText ?? '')) return undefined
  const first: unknown = tools[0]
  const name = isRecord(first) && isRecord(first.function) ? first.function.name : undefined
  return typeof name === 'string' ? name : 'tool'
}

function json(body: unknown): MockResponse {
  return { kind: 'json', body }
}

function sseData(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\n\n`
}

function withMalformed(content: string[], index: number | undefined, replacement: string): string[] {
  if (index === undefined || index < 0 || index >= content.length) return content
  return content.map((event, i) => (i === index ? replacement : event))
}

function sseResponse(parts: EventParts, malformedEventAt: number | undefined): MockResponse {
  const content = withMalformed(parts.content, malformedEventAt, MALFORMED_SSE_EVENT)
  return {
    kind: 'stream',
    contentType: 'text/event-stream',
    events: [...parts.before, ...content, ...parts.after],
    answerAt: parts.before.length,
    endsWithTerminator: parts.after.length > 0,
  }
}

/**
 * The in-band error event a provider sends after its 200 (Anthropic's `overloaded_error`, say), with
 * `type` as the dialect's error type (default: overloaded, or a server error).
 */
export function errorEvent(dialect: Dialect, type?: string): string {
  if (dialect === 'anthropic') {
    const error = { type: type ?? 'overloaded_error', message: 'Overloaded' }
    return `event: error\ndata: ${JSON.stringify({ type: 'error', error })}\n\n`
  }
  if (dialect === 'gemini') {
    const error = { code: 503, message: 'The model is overloaded.', status: type ?? 'UNAVAILABLE' }
    return sseData({ error })
  }
  return sseData({
    error: { message: 'The server had an error.', type: type ?? 'server_error', param: null, code: null },
  })
}

function completionTokens(x: Exchange): number {
  return x.toolName ? 1 : countWords(x.reply)
}

function openAiUsage(x: Exchange): Record<string, number> {
  const completion = completionTokens(x)
  return {
    prompt_tokens: x.promptTokens,
    completion_tokens: completion,
    total_tokens: x.promptTokens + completion,
  }
}

function openAiToolCall(x: Exchange, name: string): Record<string, unknown> {
  return { id: `call_mock${x.sequence}`, type: 'function', function: { name, arguments: '{}' } }
}

function openAiCompletion(x: Exchange): unknown {
  const message = x.toolName
    ? { role: 'assistant', content: null, tool_calls: [openAiToolCall(x, x.toolName)] }
    : { role: 'assistant', content: x.reply }
  const choice = { index: 0, message, logprobs: null, finish_reason: x.toolName ? 'tool_calls' : 'stop' }
  const header = {
    id: `chatcmpl-mock${x.sequence}`,
    object: 'chat.completion',
    created: x.created,
    model: x.model,
  }
  return { ...header, choices: [choice], usage: openAiUsage(x) }
}

function openAiEvents(x: Exchange): EventParts {
  const options = x.request.stream_options
  const includeUsage = isRecord(options) && options.include_usage === true
  const header = {
    id: `chatcmpl-mock${x.sequence}`,
    object: 'chat.completion.chunk',
    created: x.created,
    model: x.model,
  }
  // With include_usage, OpenAI marks every chunk but the last with `usage: null`.
  const chunk = (delta: unknown, finishReason: string | null): string =>
    sseData({
      ...header,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
      ...(includeUsage ? { usage: null } : {}),
    })
  const content = x.toolName
    ? [
        {
          tool_calls: [
            { index: 0, ...openAiToolCall(x, x.toolName), function: { name: x.toolName, arguments: '' } },
          ],
        },
        { tool_calls: [{ index: 0, function: { arguments: '{}' } }] },
      ].map((delta) => chunk(delta, null))
    : wordPieces(x.reply).map((piece) => chunk({ content: piece }, null))
  const after = [chunk({}, x.toolName ? 'tool_calls' : 'stop')]
  if (includeUsage) after.push(sseData({ ...header, choices: [], usage: openAiUsage(x) }))
  after.push('data: [DONE]\n\n')
  return { before: [chunk({ role: 'assistant', content: x.toolName ? null : '' }, null)], content, after }
}

function anthropicMessage(x: Exchange): Record<string, unknown> {
  return {
    id: `msg_mock${x.sequence}`,
    type: 'message',
    role: 'assistant',
    model: x.model,
    content: [{ type: 'text', text: x.reply }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: x.promptTokens, output_tokens: completionTokens(x) },
  }
}

function anthropicEvent(type: string, payload: Record<string, unknown>): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, ...payload })}\n\n`
}

function anthropicEvents(x: Exchange): EventParts {
  const message = { ...anthropicMessage(x), content: [], stop_reason: null }
  const started = { ...message, usage: { input_tokens: x.promptTokens, output_tokens: 1 } }
  return {
    before: [
      anthropicEvent('message_start', { message: started }),
      anthropicEvent('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
      anthropicEvent('ping', {}),
    ],
    content: wordPieces(x.reply).map((text) =>
      anthropicEvent('content_block_delta', { index: 0, delta: { type: 'text_delta', text } }),
    ),
    after: [
      anthropicEvent('content_block_stop', { index: 0 }),
      anthropicEvent('message_delta', {
        delta: { stop_reason: 'end_turn', stop_sequence: null },
        usage: { output_tokens: completionTokens(x) },
      }),
      anthropicEvent('message_stop', {}),
    ],
  }
}

function geminiUsage(x: Exchange): Record<string, number> {
  const candidates = completionTokens(x)
  return {
    promptTokenCount: x.promptTokens,
    candidatesTokenCount: candidates,
    totalTokenCount: x.promptTokens + candidates,
  }
}

function geminiChunk(x: Exchange, text: string, final: boolean): Record<string, unknown> {
  const candidate = {
    content: { role: 'model', parts: [{ text }] },
    ...(final ? { finishReason: 'STOP' } : {}),
    index: 0,
  }
  return {
    candidates: [candidate],
    ...(final ? { usageMetadata: geminiUsage(x) } : {}),
    modelVersion: x.model,
  }
}

function geminiResponse(x: Exchange, malformedEventAt: number | undefined): MockResponse {
  if (!x.route.gemini?.stream) return json(geminiChunk(x, x.reply, true))
  const pieces = wordPieces(x.reply)
  const texts = pieces.length > 0 ? pieces : ['']
  const chunks = texts.map((text, i) => geminiChunk(x, text, i === texts.length - 1))
  if (new URLSearchParams(x.query).get('alt') === 'sse') {
    return sseResponse({ before: [], content: chunks.map(sseData), after: [] }, malformedEventAt)
  }
  // Without alt=sse Gemini streams one JSON array, written element by element.
  const elements = withMalformed(
    chunks.map((chunk) => JSON.stringify(chunk)),
    malformedEventAt,
    MALFORMED_ARRAY_ELEMENT,
  )
  const events = elements.map((element, i) => `${i === 0 ? '[' : ',\r\n'}${element}`)
  return {
    kind: 'stream',
    contentType: 'application/json',
    events: [...events, ']'],
    answerAt: 0,
    endsWithTerminator: false,
  }
}

/**
 * Guard models. A chat request whose model name contains `llama-guard` (any case, any dialect) is answered
 * as Llama Guard answers, from trigger markers in the turn it assesses: the last message, or, when that
 * message holds a whole Llama Guard prompt (`<BEGIN CONVERSATION>` ... `<END CONVERSATION>`), the last
 * `User:` or `Agent:` turn inside it. So an answer is judged apart from the prompt before it, as the model
 * does it.
 *
 * | in the assessed turn                    | answer                                     |
 * | --------------------------------------- | ------------------------------------------ |
 * | `[[unsafe:S1]]`                         | `unsafe\nS1`                               |
 * | `[[unsafe:S1,S10]]`, or several markers | `unsafe\nS1,S10` (codes as written, once)  |
 * | `[[guard:malformed]]`                   | `I'm sorry, I can't help with that.`       |
 * | anything else                           | `safe`                                     |
 *
 * A `POST` to `.../models/{org}/{model}` whose model contains `prompt-guard` is answered as Hugging Face
 * text classification: `{ inputs: string }` gets `[{ label, score }, ...]` (all labels, highest first),
 * `{ inputs: string[] }` one such list per input. `[[injection]]` or `[[jailbreak]]` in an input makes that
 * label score 0.9987; otherwise `BENIGN` scores 0.9991. Models named `prompt-guard-2` answer with their two
 * labels instead, `LABEL_1` (malicious, either marker) and `LABEL_0` (benign).
 */
function llamaGuardReply(route: Route, model: string, request: Record<string, unknown>): string | undefined {
  if (route.endpoint !== 'chat' || !/llama-guard/i.test(model)) return undefined
  const list = route.dialect === 'gemini' ? request.contents : request.messages
  const turns = Array.isArray(list)
    ? list.filter((message) => isRecord(message) && message.role !== 'system')
    : []
  const text = assessedTurn(textOf(turns.at(-1)))
  if (text.includes('[[guard:malformed]]')) return "I'm sorry, I can't help with that."
  const codes = new Set<string>()
  for (const [, marked] of text.matchAll(/\[\[unsafe:([^\]]*)\]\]/gi)) {
    for (const code of (marked ?? '').split(/[\s,]+/)) if (code !== '') codes.add(code.toUpperCase())
  }
  return codes.size === 0 ? 'safe' : `unsafe\n${[...codes].join(',')}`
}

/** The last turn of the conversation block of a Llama Guard prompt, or the text itself when it holds none. */
function assessedTurn(text: string): string {
  const begin = text.indexOf('<BEGIN CONVERSATION>')
  const end = text.lastIndexOf('<END CONVERSATION>')
  if (begin === -1 || end < begin) return text
  const block = text.slice(begin, end)
  const last = Math.max(block.lastIndexOf('\n\nUser: '), block.lastIndexOf('\n\nAgent: '))
  return last === -1 ? block : block.slice(last)
}

function promptGuardBody(model: string, inputs: unknown): unknown {
  const second = /prompt-guard-2/i.test(model)
  const classify = (text: string): { label: string; score: number }[] => {
    const injection = text.includes('[[injection]]')
    const jailbreak = text.includes('[[jailbreak]]')
    if (second) {
      return injection || jailbreak
        ? [
            { label: 'LABEL_1', score: 0.9987 },
            { label: 'LABEL_0', score: 0.0013 },
          ]
        : [
            { label: 'LABEL_0', score: 0.9991 },
            { label: 'LABEL_1', score: 0.0009 },
          ]
    }
    if (!injection && !jailbreak) {
      return [
        { label: 'BENIGN', score: 0.9991 },
        { label: 'INJECTION', score: 0.0006 },
        { label: 'JAILBREAK', score: 0.0003 },
      ]
    }
    const [top, other] = injection ? ['INJECTION', 'JAILBREAK'] : ['JAILBREAK', 'INJECTION']
    return [
      { label: top, score: 0.9987 },
      { label: other, score: 0.0008 },
      { label: 'BENIGN', score: 0.0005 },
    ]
  }
  if (Array.isArray(inputs)) return inputs.map((input) => classify(typeof input === 'string' ? input : ''))
  return classify(typeof inputs === 'string' ? inputs : '')
}

/** Derives a stable unit vector from the text, so equal inputs embed equally across runs. */
function embeddingOf(text: string): number[] {
  const digest = createHash('sha256').update(text).digest()
  const raw = Array.from({ length: 8 }, (_, i) => (digest.readUInt32BE(i * 4) / 0xffffffff) * 2 - 1)
  const norm = Math.hypot(...raw) || 1
  return raw.map((value) => value / norm)
}

function embeddingInputs(input: unknown): string[] {
  if (typeof input === 'string') return [input]
  if (!Array.isArray(input)) return []
  // A flat array of numbers is one pre-tokenized input, not many.
  if (input.every((item) => typeof item === 'number')) return [JSON.stringify(input)]
  return input.map((item) => (typeof item === 'string' ? item : JSON.stringify(item)))
}

function embeddingsBody(x: Exchange): unknown {
  const inputs = embeddingInputs(x.request.input)
  const tokens = inputs.reduce((sum, input) => sum + countWords(input), 0)
  return {
    object: 'list',
    data: inputs.map((input, index) => ({ object: 'embedding', index, embedding: embeddingOf(input) })),
    model: x.model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  }
}

/** Gemini `batchEmbedContents`: one vector per request part text. */
function geminiEmbeddingsBody(x: Exchange): unknown {
  const requests = Array.isArray(x.request.requests) ? x.request.requests : []
  return {
    embeddings: requests.map((request) => ({
      values: embeddingOf(textOf(isRecord(request) ? request.content : '')),
    })),
  }
}

function modelsBody(created: number): unknown {
  return {
    object: 'list',
    data: MOCK_MODELS.map((id) => ({ id, object: 'model', created, owned_by: 'mock' })),
  }
}

function openAiErrorType(status: number): string {
  if (status === 429) return 'requests'
  if (status >= 500) return 'server_error'
  return 'invalid_request_error'
}

function openAiErrorCode(status: number): string | null {
  const codes: Record<number, string> = {
    401: 'invalid_api_key',
    404: 'not_found',
    429: 'rate_limit_exceeded',
  }
  return codes[status] ?? (status >= 500 ? 'server_error' : null)
}

function anthropicErrorType(status: number): string {
  const types: Record<number, string> = {
    400: 'invalid_request_error',
    401: 'authentication_error',
    403: 'permission_error',
    404: 'not_found_error',
    413: 'request_too_large',
    429: 'rate_limit_error',
    503: 'overloaded_error',
    529: 'overloaded_error',
  }
  return types[status] ?? 'api_error'
}

function geminiErrorStatus(status: number): string {
  const statuses: Record<number, string> = {
    400: 'INVALID_ARGUMENT',
    401: 'UNAUTHENTICATED',
    403: 'PERMISSION_DENIED',
    404: 'NOT_FOUND',
    429: 'RESOURCE_EXHAUSTED',
    500: 'INTERNAL',
    503: 'UNAVAILABLE',
    504: 'DEADLINE_EXCEEDED',
  }
  return statuses[status] ?? 'UNKNOWN'
}
