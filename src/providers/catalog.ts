import { defineProvider, type ProviderSpec } from './types.js'

const BEARER = { header: 'authorization', scheme: 'Bearer' } as const

/** OpenAI-compatible vendors: one line of data each. */
function openaiCompatible(id: string, baseURL: string, extra: Partial<ProviderSpec> = {}): ProviderSpec {
  return defineProvider({ id, dialect: 'openai', baseURL, auth: BEARER, ...extra })
}

// For vendors whose base URL stops above their `/v1`.
const V1_PATHS = { chat: '/v1/chat/completions', embeddings: '/v1/embeddings' }

/**
 * The providers the gateway knows, following Cloudflare AI Gateway's provider table. Upstream bases are
 * what `/{provider}` in a gateway path stands for.
 */
export const PROVIDERS: readonly ProviderSpec[] = [
  defineProvider({
    id: 'openai',
    dialect: 'openai',
    baseURL: 'https://api.openai.com/v1',
    auth: BEARER,
    forwardHeaders: ['openai-organization', 'openai-project', 'openai-beta'],
    streamUsageOnRequest: true,
  }),
  defineProvider({
    id: 'anthropic',
    dialect: 'anthropic',
    baseURL: 'https://api.anthropic.com',
    auth: { header: 'x-api-key' },
    credentialHeaders: ['x-api-key', 'authorization'],
    forwardHeaders: ['anthropic-version', 'anthropic-beta'],
    defaultHeaders: { 'anthropic-version': '2023-06-01' },
    prefill: 'message',
  }),
  defineProvider({
    id: 'google-ai-studio',
    dialect: 'gemini',
    baseURL: 'https://generativelanguage.googleapis.com',
    auth: { header: 'x-goog-api-key' },
    credentialHeaders: ['x-goog-api-key', 'authorization'],
    credentialQuery: 'key',
  }),
  defineProvider({
    id: 'azure-openai',
    dialect: 'openai',
    baseURL: 'https://{resource}.openai.azure.com/openai/deployments/{deployment}',
    pathParams: ['resource', 'deployment'],
    auth: { header: 'api-key' },
    credentialHeaders: ['api-key', 'authorization'],
    streamUsageOnRequest: true,
  }),
  defineProvider({
    id: 'workers-ai',
    dialect: 'workers-ai',
    baseURL: 'https://api.cloudflare.com/client/v4/accounts/{accountId}/ai',
    auth: BEARER,
    // Model paths (`/@cf/meta/...`) are run through `/run`; OpenAI-style paths (`/v1/...`) go as they are.
    mapPath: (path) => (path.startsWith('/@') ? `/run${path}` : path),
    compatPaths: V1_PATHS,
  }),
  defineProvider({
    id: 'cohere',
    dialect: 'cohere',
    baseURL: 'https://api.cohere.ai',
    auth: BEARER,
    // Cohere serves an OpenAI-compatible API of its own, so the compat surface needs no Cohere codec.
    compatPaths: { chat: '/compatibility/v1/chat/completions', embeddings: '/compatibility/v1/embeddings' },
  }),
  openaiCompatible('groq', 'https://api.groq.com/openai/v1', { streamUsageOnRequest: true }),
  openaiCompatible('mistral', 'https://api.mistral.ai', { compatPaths: V1_PATHS, prefill: 'prefix' }),
  openaiCompatible('deepseek', 'https://api.deepseek.com', { streamUsageOnRequest: true }),
  openaiCompatible('grok', 'https://api.x.ai', {
    compatPaths: V1_PATHS,
    aliases: ['xai'],
    streamUsageOnRequest: true,
  }),
  openaiCompatible('perplexity-ai', 'https://api.perplexity.ai', { aliases: ['perplexity'] }),
  openaiCompatible('openrouter', 'https://openrouter.ai/api', {
    compatPaths: V1_PATHS,
    prefill: 'message',
    streamUsageOnRequest: true,
  }),
  openaiCompatible('cerebras', 'https://api.cerebras.ai/v1', { streamUsageOnRequest: true }),
  openaiCompatible('fireworks', 'https://api.fireworks.ai/inference/v1', { streamUsageOnRequest: true }),
  openaiCompatible('baseten', 'https://api.baseten.co', { compatPaths: V1_PATHS }),
  defineProvider({
    id: 'huggingface',
    dialect: 'native',
    baseURL: 'https://api-inference.huggingface.co/models',
    auth: BEARER,
  }),
  defineProvider({
    id: 'replicate',
    dialect: 'native',
    baseURL: 'https://api.replicate.com/v1',
    auth: BEARER,
  }),
  defineProvider({
    id: 'cartesia',
    dialect: 'native',
    baseURL: 'https://api.cartesia.ai',
    auth: { header: 'x-api-key' },
    credentialHeaders: ['x-api-key', 'authorization'],
    forwardHeaders: ['cartesia-version'],
  }),
  defineProvider({
    id: 'elevenlabs',
    dialect: 'native',
    baseURL: 'https://api.elevenlabs.io',
    auth: { header: 'xi-api-key' },
  }),
  defineProvider({
    id: 'deepgram',
    dialect: 'native',
    baseURL: 'https://api.deepgram.com',
    auth: { header: 'authorization', scheme: 'Token' },
  }),
  defineProvider({
    id: 'fal',
    dialect: 'native',
    baseURL: 'https://fal.run',
    auth: { header: 'authorization', scheme: 'Key' },
  }),
  defineProvider({
    id: 'ideogram',
    dialect: 'native',
    baseURL: 'https://api.ideogram.ai',
    auth: { header: 'api-key' },
    credentialHeaders: ['api-key', 'authorization'],
  }),
]

export const CUSTOM_PREFIX = 'custom-'
