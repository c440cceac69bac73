import { GatewayError } from '../errors.js'
import { isRecord, stringifyClientJson } from '../json.js'
import { withFields } from '../objects.js'
import type { ResolvedOptions } from '../options.js'
import { CODECS } from '../providers/dialects/index.js'
import type { ChatRequest, EmbeddingsRequest } from '../providers/dialects/openai-types.js'
import type { ProviderRequest } from '../providers/dialects/types.js'
import { findProvider, locateUpstream, type ResolvedProvider } from '../providers/registry.js'
import type { TargetPolicy } from '../settings.js'
import type { Translation, UpstreamTarget } from '../target.js'
import type { GatewayContext } from '../types.js'
import { balancedOrder } from '../upstream/balance.js'
import { buildUpstreamHeaders } from '../upstream/headers.js'
import { splitQuery } from '../url.js'
import { nativeTarget } from './native.js'

const OPERATIONS: Readonly<Record<string, 'chat' | 'embeddings'>> = {
  '/chat/completions': 'chat',
  '/embeddings': 'embeddings',
}
const DEFAULT_PATHS = { chat: '/chat/completions', embeddings: '/embeddings' } as const

/** What a compat request needs besides its JSON body; the universal endpoint passes a step's own. */
export interface CompatInput {
  operation: string
  json: unknown
  headers: Readonly<Record<string, string | undefined>>
  policy: TargetPolicy
  step: number
}

/** Most models one compat request may name: its own and its fallbacks. */
export const MAX_COMPAT_MODELS = 8
// A caller's own provider key travels in these on /compat; it belongs to one provider only (`keyProviderOf`).
const CALLER_KEY_HEADERS = ['authorization', 'x-api-key', 'x-goog-api-key', 'api-key']

/**
 * A compat request's targets: its `model`, then its fallbacks, each a `{provider}/{model}` tried in turn by
 * `forward`. The fallbacks are the body's `models` list (as OpenRouter reads it), or else the gateway's
 * `fallbacks` option for that model. `models` itself is not sent upstream. A caller's own provider key
 * goes only to the provider the request names first (see `keyProviderOf`): a model on another provider
 * uses its stored key, whichever model the balance puts first.
 */
export function compatTargets(ctx: GatewayContext, input: CompatInput): UpstreamTarget[] {
  const body = requireObject(input.json)
  const names = compatModels(body, ctx.gateway.options.fallbacks)
  const models = withDeployments(ctx, names)
  if (models.length === 1 && models[0] === body.model) return [compatTarget(ctx, input)]
  const { models: _sent, ...request } = body
  const named = ctx.gateway.options.deployments[names[0]!]
  const keyProvider = keyProviderOf(
    ctx,
    (named === undefined ? [names[0]!] : deploymentModels(named)).map(providerOf),
  )
  const targets: UpstreamTarget[] = []
  for (const [step, model] of models.entries()) {
    const headers = headersFor(ctx, input.headers, providerOf(model), keyProvider)
    targets.push(
      compatTarget(ctx, withFields(input, { json: withFields(request, { model }), headers, step })),
    )
  }
  return targets
}

function compatModels(
  body: Record<string, unknown>,
  fallbacks: Readonly<Record<string, string[]>>,
): string[] {
  const { model, models } = body
  if (models === undefined) {
    const configured = typeof model === 'string' ? fallbacks[model] : undefined
    return configured === undefined ? [model as string] : [model as string, ...configured]
  }
  if (
    !Array.isArray(models) ||
    models.length === 0 ||
    !models.every((item) => typeof item === 'string' && item !== '')
  ) {
    throw new GatewayError('INVALID_REQUEST_BODY', "'models' must be a list of '{provider}/{model}' names")
  }
  // `model` first when given, then the list in its order, each once.
  const named = [...new Set(typeof model === 'string' && model !== '' ? [model, ...models] : models)]
  if (named.length > MAX_COMPAT_MODELS) {
    throw new GatewayError('INVALID_REQUEST_BODY', `'models' may name at most ${MAX_COMPAT_MODELS} models`)
  }
  return named as string[]
}

/**
 * The names of deployment groups (the `deployments` option) replaced by their deployments, in the order
 * `balance` gives them for this request: the first takes it, the others are its fallbacks. Each model is
 * tried once.
 */
function withDeployments(ctx: GatewayContext, names: readonly string[]): string[] {
  const { deployments, balance } = ctx.gateway.options
  const models = new Set<string>()
  for (const name of names) {
    const group = deployments[name]
    if (group === undefined) {
      models.add(name)
      continue
    }
    const weighted = group.map((entry) =>
      typeof entry === 'string'
        ? { item: entry, weight: 1, key: entry }
        : { item: entry.model, weight: entry.weight, key: entry.model },
    )
    for (const model of balancedOrder(weighted, balance, ctx.gateway.latency)) models.add(model)
  }
  return [...models]
}

type DeploymentGroup = ResolvedOptions['deployments'][string]

function deploymentModels(group: DeploymentGroup): string[] {
  return group.map((entry) => (typeof entry === 'string' ? entry : entry.model))
}

function providerOf(model: string): string {
  return model.slice(0, model.indexOf('/'))
}

/**
 * The provider a caller's own key is for, by its id (`grok` and `xai` are one provider): the provider of
 * the model the request names first. A name that stands for several models (a deployment group, a dynamic
 * route) names a provider only when they are all on that one; otherwise none, and every model uses its
 * stored key: which of them is drawn first is the gateway's choice, and the caller's key must not follow it
 * to a provider the caller never named.
 */
export function keyProviderOf(ctx: GatewayContext, providers: readonly string[]): string | undefined {
  let shared: string | undefined
  for (const name of providers) {
    const id = findProvider(ctx.gateway.providers, name)?.spec.id
    if (id === undefined || (shared !== undefined && id !== shared)) return undefined
    shared = id
  }
  return shared
}

/** The request's headers for a model on `provider`: with the caller's own key only when it is that provider's. */
export function headersFor(
  ctx: GatewayContext,
  headers: Readonly<Record<string, string | undefined>>,
  provider: string,
  keyProvider: string | undefined,
): Readonly<Record<string, string | undefined>> {
  const owner =
    keyProvider !== undefined && findProvider(ctx.gateway.providers, provider)?.spec.id === keyProvider
  return owner ? headers : withoutCallerKeys(headers)
}

function withoutCallerKeys(
  headers: Readonly<Record<string, string | undefined>>,
): Readonly<Record<string, string | undefined>> {
  const kept = { ...headers }
  for (const name of CALLER_KEY_HEADERS) delete kept[name]
  return kept
}

/**
 * `/compat/chat/completions` and `/compat/embeddings`: `model: "{provider}/{model}"` picks the provider.
 * OpenAI-compatible providers get the body as it came with the prefix taken off `model`; Anthropic and
 * Gemini get it translated by their codec, and the answer is translated back on the way out.
 */
export function compatTarget(ctx: GatewayContext, input: CompatInput): UpstreamTarget {
  const operation = OPERATIONS[input.operation]
  if (operation === undefined) {
    throw new GatewayError(
      'INVALID_PROVIDER_PATH',
      'the compat surface serves /compat/chat/completions and /compat/embeddings',
    )
  }
  const body = requireObject(input.json)
  const { provider, model } = splitModel(ctx, body.model)
  if (operation === 'chat' && !Array.isArray(body.messages)) {
    throw new GatewayError('INVALID_REQUEST_BODY', "'messages' must be an array of chat messages")
  }
  const request = withFields(body, { model })
  const { upstream, translation } = buildProviderRequest(provider, operation, request)
  const target = splitQuery(upstream.path)
  const { origin, path } = locateUpstream(provider, target.path, target.search, ctx.surface.account)
  const draft = {
    provider,
    origin,
    path,
    method: 'POST',
    headers: compatHeaders(input.headers, provider),
    body: Buffer.from(stringifyClientJson(upstream.body, 'INVALID_REQUEST_BODY')),
    step: input.step,
    policy: input.policy,
    clientDialect: 'openai' as const,
  }
  // A translated request is read back by its translation; an OpenAI-compatible one is sent as it came.
  if (translation === undefined) return nativeTarget(ctx, draft, upstream.body)
  return withFields(draft, { translation, model: translation.model, stream: translation.stream })
}

function buildProviderRequest(
  provider: ResolvedProvider,
  operation: 'chat' | 'embeddings',
  request: Record<string, unknown> & { model: string },
): { upstream: ProviderRequest; translation: Translation | undefined } {
  const { spec } = provider
  const codec = CODECS[spec.dialect]
  if (codec === undefined) {
    if (spec.dialect !== 'openai' && spec.compatPaths === undefined) {
      throw new GatewayError(
        'INVALID_PROVIDER',
        `${spec.id} has no chat completions API the compat surface can use`,
      )
    }
    const path = spec.compatPaths?.[operation] ?? DEFAULT_PATHS[operation]
    return { upstream: { path, body: request }, translation: undefined }
  }
  const translation: Translation = {
    codec,
    operation,
    model: request.model,
    stream: request.stream === true,
    includeUsage: isRecord(request.stream_options) && request.stream_options.include_usage === true,
    base64Embeddings: request.encoding_format === 'base64',
  }
  if (operation === 'chat') {
    return { upstream: codec.toProviderRequest(request as ChatRequest), translation }
  }
  if (codec.embeddings === undefined) {
    throw new GatewayError('UNSUPPORTED_PARAMETER', `${spec.id} has no embeddings API`)
  }
  return { upstream: codec.embeddings.toProviderRequest(request as EmbeddingsRequest), translation }
}

function splitModel(ctx: GatewayContext, model: unknown): { provider: ResolvedProvider; model: string } {
  if (typeof model !== 'string' || model === '') {
    throw new GatewayError('INVALID_REQUEST_BODY', "'model' must be a string like 'openai/gpt-4o-mini'")
  }
  const slash = model.indexOf('/')
  const provider = slash > 0 ? findProvider(ctx.gateway.providers, model.slice(0, slash)) : undefined
  if (provider === undefined || slash === model.length - 1) {
    const known = [...ctx.gateway.providers.keys()].join(', ')
    throw new GatewayError(
      'INVALID_PROVIDER',
      `model '${model}' must be '{provider}/{model}' with a provider among: ${known}`,
    )
  }
  return { provider, model: model.slice(slash + 1) }
}

/**
 * The OpenAI SDKs send the provider key as `authorization: Bearer …`; a provider that takes its key in
 * another header (Anthropic's `x-api-key`, Google's `x-goog-api-key`) gets it there.
 */
function compatHeaders(
  incoming: Readonly<Record<string, string | undefined>>,
  provider: ResolvedProvider,
): Record<string, string> {
  const headers = buildUpstreamHeaders(incoming, provider)
  headers['content-type'] = 'application/json'
  delete headers['content-encoding']
  const { header } = provider.spec.auth
  const bearer = headers.authorization
  if (header !== 'authorization' && bearer?.startsWith('Bearer ')) {
    headers[header] ??= bearer.slice(7)
    delete headers.authorization
  }
  return headers
}

function requireObject(json: unknown): Record<string, unknown> {
  if (!isRecord(json)) throw new GatewayError('INVALID_REQUEST_BODY', 'expected a JSON object')
  return json
}
