import { GatewayError } from '../errors.js'
import { CUSTOM_PREFIX, PROVIDERS } from './catalog.js'
import type { Dialect, Prefill, ProviderSpec } from './types.js'

/**
 * What the gateway does with a provider key a caller sends itself: `forward` it (the reference's
 * precedence: the caller's key wins over a stored one), `ignore` it and use the stored key, or `refuse` the
 * request (400, code 2122). A gateway token sent in a provider's key header is never a provider key.
 */
export type CallerKeys = 'forward' | 'ignore' | 'refuse'

/** Per-provider settings from the gateway options. */
export interface ProviderConfig {
  apiKey?: string | undefined
  apiKeys?: readonly (string | { key: string; weight?: number | undefined })[] | undefined
  /** This provider's policy for callers' own keys; default: the gateway's `callerKeys`. */
  callerKeys?: CallerKeys | undefined
  baseURL?: string | undefined
  params?: Record<string, string> | undefined
  headers?: Record<string, string> | undefined
  /** How this provider continues a prefilled answer (`ProviderSpec.prefill`); `false`: it does not. */
  prefill?: Prefill | false | undefined
}

export interface CustomProviderConfig extends ProviderConfig {
  baseURL: string
  /** The dialect the upstream speaks (usage, stream terminator, compat translation); default `openai`. */
  dialect?: Dialect | undefined
  auth?: { header: string; scheme?: string | undefined } | undefined
}

/** Request headers any provider may receive; everything else is dropped unless a spec or option allows it. */
const COMMON_FORWARD_HEADERS = ['accept', 'content-type', 'content-encoding', 'user-agent', 'idempotency-key']

/** A provider with its options applied and its base URL pre-parsed where it does not depend on the request. */
export interface ResolvedProvider {
  readonly spec: ProviderSpec
  readonly apiKey: string | undefined
  /** The `apiKeys` pool: keys for the `default` alias, each with its weight (1 unless given). */
  readonly keyPool: readonly { readonly key: string; readonly weight: number }[] | undefined
  readonly callerKeys: CallerKeys
  readonly staticHeaders: Readonly<Record<string, string>>
  /** How it continues a prefilled answer: the spec's, unless the options say otherwise. */
  readonly prefill: Prefill | undefined
  readonly credentialHeaders: readonly string[]
  /** Where a request may carry a key for it: its auth header and its credential headers, once each. */
  readonly keyHeaders: readonly string[]
  readonly forwardHeaders: readonly string[]
  readonly base: ResolvedBase
}

type ResolvedBase =
  | { readonly fixed: true; readonly origin: string; readonly basePath: string }
  | { readonly fixed: false; readonly template: string; readonly params: Readonly<Record<string, string>> }

export interface UpstreamLocation {
  origin: string
  /** Path and query string, ready for the request line. */
  path: string
}

// Values that end up inside an upstream URL: no separators, no dot segments, nothing that can move the host.
const URL_PARAM = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/
// A segment ends at `/`, and, for a server that reads the target as a URL, at `?` or `#` too: `/v1/..#` is `/`.
// A server that decodes the path before resolving it (as `%2e` is checked for) decodes `%2f` and `%5c` with it.
const DOT_SEGMENT = /(?:^|\/|%2f|%5c)(?:\.|%2e){1,2}(?:[/?#]|%2f|%5c|$)/i
const PLACEHOLDER = /\{([A-Za-z][A-Za-z0-9]*)\}/g

/** Builds the provider table once, at construction: catalog entries plus `custom-{slug}` providers. */
export function createProviderRegistry(options: {
  readonly providers: Readonly<Record<string, ProviderConfig>>
  readonly customProviders: Readonly<Record<string, CustomProviderConfig>>
  readonly forwardHeaders: readonly string[]
  readonly callerKeys: CallerKeys
}): ReadonlyMap<string, ResolvedProvider> {
  const registry = new Map<string, ResolvedProvider>()
  for (const spec of PROVIDERS)
    registry.set(spec.id, resolveProvider(spec, options.providers[spec.id] ?? {}, options))
  for (const [slug, config] of Object.entries(options.customProviders)) {
    const spec: ProviderSpec = {
      id: `${CUSTOM_PREFIX}${slug}`,
      dialect: config.dialect ?? 'openai',
      baseURL: config.baseURL,
      auth: customAuth(config.auth),
    }
    registry.set(spec.id, resolveProvider(spec, config, options))
  }
  return registry
}

function customAuth(auth: CustomProviderConfig['auth']): ProviderSpec['auth'] {
  if (!auth) return { header: 'authorization', scheme: 'Bearer' }
  return auth.scheme ? { header: auth.header, scheme: auth.scheme } : { header: auth.header }
}

function resolveProvider(
  spec: ProviderSpec,
  config: ProviderConfig,
  defaults: { readonly forwardHeaders: readonly string[]; readonly callerKeys: CallerKeys },
): ResolvedProvider {
  const credentialHeaders = spec.credentialHeaders ?? [spec.auth.header]
  const extraForwardHeaders = defaults.forwardHeaders
  return {
    spec,
    apiKey: config.apiKey,
    keyPool: config.apiKeys?.map((entry) =>
      typeof entry === 'string' ? { key: entry, weight: 1 } : { key: entry.key, weight: entry.weight ?? 1 },
    ),
    callerKeys: config.callerKeys ?? defaults.callerKeys,
    staticHeaders: { ...spec.defaultHeaders, ...config.headers },
    prefill: config.prefill === false ? undefined : (config.prefill ?? spec.prefill),
    credentialHeaders,
    keyHeaders: [...new Set([spec.auth.header, ...credentialHeaders])],
    forwardHeaders: [
      ...new Set([...COMMON_FORWARD_HEADERS, ...(spec.forwardHeaders ?? []), ...extraForwardHeaders]),
    ],
    base: resolveBase(config.baseURL ?? spec.baseURL, config.params ?? {}),
  }
}

function resolveBase(template: string, params: Readonly<Record<string, string>>): ResolvedBase {
  if (!template.includes('{')) {
    const url = new URL(template)
    return { fixed: true, origin: url.origin, basePath: url.pathname.replace(/\/$/, '') }
  }
  return { fixed: false, template, params }
}

/**
 * Where a passthrough request goes: the provider's base plus the path remainder and query, as they came.
 * Leading segments named in `pathParams` (Azure's `/{resource}/{deployment}`) are consumed into the base.
 */
export function locateUpstream(
  provider: ResolvedProvider,
  remainder: string,
  search: string,
  account?: string | undefined,
): UpstreamLocation {
  let rest = remainder
  if (DOT_SEGMENT.test(rest) || rest.includes('\\')) {
    throw new GatewayError('INVALID_PROVIDER_PATH', 'dot segments and backslashes are not allowed')
  }
  const { base, spec } = provider
  let origin: string
  let basePath: string
  if (base.fixed) {
    origin = base.origin
    basePath = base.basePath
  } else {
    const values: Record<string, string> = { ...base.params }
    if (account !== undefined && values.accountId === undefined) values.accountId = account
    for (const name of spec.pathParams ?? []) {
      const end = rest.indexOf('/', 1)
      const segment = end === -1 ? rest.slice(1) : rest.slice(1, end)
      if (!URL_PARAM.test(segment) || segment.includes('..')) {
        const shape = (spec.pathParams ?? []).map((p) => `/{${p}}`).join('')
        throw new GatewayError('INVALID_PROVIDER_PATH', `${spec.id} paths look like /${spec.id}${shape}/...`)
      }
      values[name] = segment
      rest = end === -1 ? '' : rest.slice(end)
    }
    const url = new URL(fillTemplate(spec.id, base.template, values))
    origin = url.origin
    basePath = url.pathname.replace(/\/$/, '')
  }
  const path = `${basePath}${spec.mapPath ? spec.mapPath(rest) : rest}` || '/'
  return { origin, path: path + search }
}

/**
 * An endpoint as clients strip it from a provider URL (`v1/chat/completions` from
 * `https://api.openai.com/v1/chat/completions`) may repeat the base path the gateway already adds; drop it.
 */
export function withoutBasePath(provider: ResolvedProvider, path: string): string {
  const { base } = provider
  if (!base.fixed || base.basePath === '') return path
  return path.startsWith(`${base.basePath}/`) ? path.slice(base.basePath.length) : path
}

/** Finds a provider by slug or alias (`perplexity` → `perplexity-ai`), for compat model prefixes. */
export function findProvider(
  registry: ReadonlyMap<string, ResolvedProvider>,
  name: string,
): ResolvedProvider | undefined {
  const direct = registry.get(name)
  if (direct !== undefined) return direct
  for (const provider of registry.values()) if (provider.spec.aliases?.includes(name)) return provider
  return undefined
}

function fillTemplate(
  providerId: string,
  template: string,
  values: Readonly<Record<string, string>>,
): string {
  return template.replace(PLACEHOLDER, (_, name: string) => {
    const value = values[name]
    if (value === undefined) {
      throw new GatewayError(
        'PROVIDER_NOT_CONFIGURED',
        `${providerId} needs providers['${providerId}'].params.${name} in the gateway options`,
      )
    }
    if (!URL_PARAM.test(value)) {
      throw new GatewayError('INVALID_PROVIDER_PATH', `${providerId} ${name} '${value}' is not allowed`)
    }
    return value
  })
}

/** Validates a custom base URL or an override at construction; `{params}` may stand anywhere. */
export function isValidBaseURL(value: string): boolean {
  try {
    const url = new URL(value.replace(PLACEHOLDER, 'x'))
    return (
      (url.protocol === 'https:' || url.protocol === 'http:') && !url.search && !url.hash && !url.username
    )
  } catch {
    return false
  }
}
