/** Every dialect name, for validating options (`customProviders.*.dialect`). */
export const DIALECTS = ['openai', 'anthropic', 'gemini', 'cohere', 'workers-ai', 'native'] as const

/**
 * The API dialect a provider speaks; only non-OpenAI dialects need translation code. What the gateway knows
 * of each (usage, stream terminator, model field, …) is its `DialectSpec`, found by `dialectOf(dialect)`.
 */
export type Dialect = (typeof DIALECTS)[number]

/**
 * A provider described as data. Adding an OpenAI-compatible vendor is one entry in `catalog.ts`.
 *
 * @example
 * defineProvider({ id: 'groq', dialect: 'openai', baseURL: 'https://api.groq.com/openai/v1', auth: BEARER })
 */
export interface ProviderSpec {
  /** Slug used in paths (`/groq/...`) and in compat model names (`groq/llama-3.3-70b`). */
  readonly id: string
  readonly dialect: Dialect
  /**
   * Upstream base the path remainder is appended to. `{name}` placeholders are filled from provider options
   * (`params`) or, for names listed in `pathParams`, from the leading path segments.
   */
  readonly baseURL: string
  /** How a key from options is sent: header name, and an optional scheme put before it. */
  readonly auth: { readonly header: string; readonly scheme?: string }
  /** Headers that carry a client's own credential; if any is present, no stored key is injected. */
  readonly credentialHeaders?: readonly string[]
  /** A query parameter that carries a client's own credential (Google's `?key=`). */
  readonly credentialQuery?: string
  /** Provider-specific request headers allowed upstream, besides the common ones. */
  readonly forwardHeaders?: readonly string[]
  /** Headers sent when the client did not send them (e.g. `anthropic-version`). */
  readonly defaultHeaders?: Readonly<Record<string, string>>
  /** Leading path segments consumed into `baseURL` placeholders, in order (Azure's resource and deployment). */
  readonly pathParams?: readonly string[]
  /** Paths of the OpenAI-compatible API below `baseURL`, when not `/chat/completions` and `/embeddings`. */
  readonly compatPaths?: { readonly chat?: string; readonly embeddings?: string }
  /** Other names accepted as the compat model prefix (`perplexity/…` for `perplexity-ai`). */
  readonly aliases?: readonly string[]
  /**
   * The provider's streamed chat completions carry usage only when asked (`stream_options.include_usage`),
   * and it accepts being asked. The gateway then asks for every stream, to cost it, and hides the answer
   * from clients that did not ask. Left unset for servers that might refuse an unknown field.
   */
  readonly streamUsageOnRequest?: boolean
  /**
   * How the provider continues an answer it is given the start of (an assistant prefill), so that a stream
   * that failed after part of it reached the client can be carried on here: `message`, a last assistant
   * message (Anthropic, OpenRouter); `prefix`, a last assistant message marked `prefix: true` (Mistral).
   * Without it a fallback answers the original request, and only an answer that begins with the part
   * already sent is carried on.
   */
  readonly prefill?: Prefill
  /** Rewrites the path remainder before it is appended (Workers AI's `/@cf/...` → `/run/@cf/...`). */
  readonly mapPath?: (path: string) => string
}

/** See `ProviderSpec.prefill`. */
export type Prefill = 'message' | 'prefix'

/** Identity function that types a provider spec, for catalogs and custom providers. */
export function defineProvider<const T extends ProviderSpec>(spec: T): T {
  return spec
}
