import type { ResolvedProvider } from '../providers/registry.js'
import type { UpstreamTarget } from '../target.js'
import { credentialOf } from '../upstream/headers.js'
import type { RealtimeKeyPlacement, ResolvedWebSocketOptions } from './options.js'

/** What the gateway knows of a provider's realtime endpoint beyond its HTTP base URL. */
export interface RealtimeSpec {
  /** The path below the base a connection naming none goes to. */
  readonly path?: string | undefined
  /** Where the stored key goes: the provider's header (default), a query parameter or a subprotocol. */
  readonly key?: RealtimeKeyPlacement | undefined
  /**
   * Subprotocols a browser carries its own provider key in (`openai-insecure-api-key.<key>`): the key is
   * read from there as if it came in the provider's key header, and the subprotocol is not offered on.
   */
  readonly keyProtocols?: readonly string[] | undefined
  /** Query parameters a client may carry its key in besides the provider's own, renamed to it (Google's `api_key`). */
  readonly keyQueryAliases?: readonly string[] | undefined
}

/**
 * The catalog's realtime endpoints: OpenAI Realtime (`/openai?model=…` reaches `wss://api.openai.com/v1/realtime`)
 * and Gemini Live (`/google-ai-studio`, or `/google` as the reference names it, reaches
 * `BidiGenerateContent`). Others are reached at the path the client names below their base URL.
 */
const CATALOG: Readonly<Record<string, RealtimeSpec>> = {
  openai: { path: '/realtime', keyProtocols: ['openai-insecure-api-key.'] },
  // Google documents its WebSocket endpoints with the key in `?key=`.
  'google-ai-studio': {
    path: '/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent',
    key: { query: 'key' },
    keyQueryAliases: ['api_key'],
  },
  elevenlabs: { keyProtocols: ['xi-api-key.'] },
  fal: { keyProtocols: ['fal-api-key.'] },
}

/** Realtime path names the reference uses for providers this gateway names otherwise. */
const ALIASES: Readonly<Record<string, string>> = { google: 'google-ai-studio' }

/**
 * The gateway's slug for a provider named in a realtime path (`google` → `google-ai-studio`).
 *
 * @example
 * realtimeSlug('google', providers) // 'google-ai-studio'
 */
export function realtimeSlug(name: string, providers: ReadonlyMap<string, ResolvedProvider>): string {
  return providers.has(name) ? name : (ALIASES[name] ?? name)
}

/**
 * A provider's realtime spec: the host's `websockets.providers` entry over the catalog's.
 *
 * @example
 * realtimeSpec('openai', options) // { path: '/realtime', keyProtocols: ['openai-insecure-api-key.'] }
 */
export function realtimeSpec(slug: string, options: ResolvedWebSocketOptions): RealtimeSpec {
  const own = options.providers[slug]
  const known = CATALOG[slug] ?? {}
  return own === undefined ? known : { ...known, ...own }
}

/**
 * Where a session goes, as the pipeline sees it: the provider's slug and the path below it, the spec's
 * default path when the client named none (`/openai` → `/openai/realtime`).
 *
 * @example
 * sessionPath('/openai', 'openai', '', spec) // '/openai/realtime'
 */
export function sessionPath(prefix: string, slug: string, rest: string, spec: RealtimeSpec): string {
  const path = rest === '' || rest === '/' ? (spec.path ?? rest) : rest
  return `${prefix}/${slug}${path}`
}

/**
 * The query string with each key alias renamed to the provider's own parameter (`api_key` → `key`).
 *
 * @example
 * renameKeyQuery('?api_key=AIza…', spec, googleAiStudio) // '?key=AIza…'
 */
export function renameKeyQuery(search: string, spec: RealtimeSpec, provider: ResolvedProvider): string {
  const own = provider.spec.credentialQuery
  if (search === '' || own === undefined || spec.keyQueryAliases === undefined) return search
  const params = new URLSearchParams(search)
  let renamed = false
  for (const alias of spec.keyQueryAliases) {
    const value = params.get(alias)
    if (value === null) continue
    params.delete(alias)
    if (!params.has(own)) params.set(own, value)
    renamed = true
  }
  return renamed ? `?${params.toString()}` : search
}

/**
 * Splits the client's subprotocols into those offered on to the provider and a provider key a browser
 * carried in one (see `RealtimeSpec.keyProtocols`); the gateway token's subprotocol is never offered on.
 *
 * @example
 * splitProtocols(['realtime', 'openai-insecure-api-key.sk-…'], openaiSpec, 'cf-aig-authorization.')
 * // { upstream: ['realtime'], key: 'sk-…' }
 */
export function splitProtocols(
  protocols: readonly string[],
  spec: RealtimeSpec,
  gatewayPrefix: string,
): { upstream: string[]; key: string | undefined } {
  const upstream: string[] = []
  let key: string | undefined
  for (const protocol of protocols) {
    if (protocol.startsWith(gatewayPrefix)) continue
    const prefix = spec.keyProtocols?.find((candidate) => protocol.startsWith(candidate))
    if (prefix === undefined) upstream.push(protocol)
    else key ??= protocol.slice(prefix.length)
  }
  return { upstream, key }
}

/**
 * The target's `ws:`/`wss:` URL: its origin's scheme swapped, then its path and query as `route` built them.
 *
 * @example
 * webSocketUrl(target) // 'wss://api.openai.com/v1/realtime?model=gpt-realtime'
 */
export function webSocketUrl(target: UpstreamTarget): string {
  const origin = target.origin.replace(/^http/, 'ws')
  return `${origin}${target.path}`
}

/**
 * Moves the key `route` put in the provider's header to where the realtime endpoint takes it (a query
 * parameter or a subprotocol), when the spec says so. Answers the target as it is to be sent and the
 * subprotocol to offer, if any.
 *
 * @example
 * placeKey(target, { key: { query: 'key' } }).target.path // '/ws/…BidiGenerateContent?key=AIza…'
 */
export function placeKey(
  target: UpstreamTarget,
  spec: RealtimeSpec,
): { target: UpstreamTarget; protocol: string | undefined } {
  const placement = spec.key ?? 'header'
  if (placement === 'header') return { target, protocol: undefined }
  const { header } = target.provider.spec.auth
  const key = credentialOf(target.headers[header])
  if (key === undefined) return { target, protocol: undefined }
  const headers = { ...target.headers }
  delete headers[header]
  if ('protocol' in placement)
    return { target: { ...target, headers }, protocol: `${placement.protocol}${key}` }
  const query = target.path.indexOf('?')
  const params = new URLSearchParams(query === -1 ? '' : target.path.slice(query))
  params.set(placement.query, key)
  const base = query === -1 ? target.path : target.path.slice(0, query)
  return { target: { ...target, headers, path: `${base}?${params.toString()}` }, protocol: undefined }
}

/**
 * The model a session's URL names (`?model=gpt-realtime`), as OpenAI's realtime endpoint takes it.
 *
 * @example
 * modelFromQuery('/v1/realtime?model=gpt-realtime') // 'gpt-realtime'
 */
export function modelFromQuery(path: string): string | undefined {
  const query = path.indexOf('?')
  if (query === -1) return undefined
  const params = new URLSearchParams(path.slice(query))
  return params.get('model') ?? params.get('deployment') ?? undefined
}
