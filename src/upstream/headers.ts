import type { ResolvedProvider } from '../providers/registry.js'

// RFC 9110 §7.6.1 hop-by-hop headers, plus set-cookie: a provider's cookies are not the host's to hand out.
const RESPONSE_HEADERS_DROPPED = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'set-cookie',
])

/**
 * Request headers for the provider, built from an allowlist rather than by copying and deleting, so that
 * `cf-aig-*`, hop-by-hop, Host, cookies and anything a client invents never leave. A credential the client
 * sent itself is kept; a stored one is added later, by `attachStoredKeys`, only when there is none.
 */
export function buildUpstreamHeaders(
  incoming: Readonly<Record<string, string | undefined>>,
  provider: ResolvedProvider,
): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const name of provider.forwardHeaders) {
    const value = incoming[name]
    if (value !== undefined) headers[name] = value
  }
  for (const name of provider.credentialHeaders) {
    const value = incoming[name]
    if (value !== undefined) headers[name] = value
  }
  for (const name in provider.staticHeaders) {
    if (headers[name] === undefined) headers[name] = provider.staticHeaders[name]!
  }
  // The gateway reads every answer it relays (usage, last events, secrets): plain bytes, whatever the
  // client accepts. Compression towards the client is the host's (its compression middleware).
  headers['accept-encoding'] = 'identity'
  return headers
}

/** Whether an upstream request already carries a provider credential: a header, or Google's `?key=`. */
export function carriesCredential(
  headers: Readonly<Record<string, string>>,
  path: string,
  provider: ResolvedProvider,
): boolean {
  if (headers[provider.spec.auth.header] !== undefined) return true
  for (const name of provider.credentialHeaders) if (headers[name] !== undefined) return true
  const query = path.indexOf('?')
  return query !== -1 && hasCredentialQuery(path.slice(query), provider.spec.credentialQuery)
}

/** Adds a stored key in the provider's own scheme (`authorization: Bearer …`, `x-api-key: …`). */
export function injectKey(headers: Record<string, string>, provider: ResolvedProvider, key: string): void {
  const { header, scheme } = provider.spec.auth
  headers[header] = scheme ? `${scheme} ${key}` : key
}

function hasCredentialQuery(search: string, name: string | undefined): boolean {
  return name !== undefined && search.length > 1 && new URLSearchParams(search).has(name)
}

/**
 * The provider's response headers minus hop-by-hop ones (and any the provider nominated in `Connection`).
 * Event streams also get `no-transform` and `x-accel-buffering: no`, so that compression middleware and
 * nginx pass events through as they come instead of holding them back.
 */
export function filterResponseHeaders(
  raw: Readonly<Record<string, string | string[] | undefined>>,
): Record<string, string> {
  const nominated =
    typeof raw.connection === 'string' ? raw.connection.toLowerCase().split(/\s*,\s*/) : undefined
  const headers: Record<string, string> = {}
  for (const name in raw) {
    const value = raw[name]
    if (value === undefined || RESPONSE_HEADERS_DROPPED.has(name) || nominated?.includes(name)) continue
    headers[name] = typeof value === 'string' ? value : value.join(', ')
  }
  if (isEventStream(headers['content-type'])) {
    const cacheControl = headers['cache-control']
    if (!cacheControl) headers['cache-control'] = 'no-cache, no-transform'
    else if (!cacheControl.includes('no-transform'))
      headers['cache-control'] = `${cacheControl}, no-transform`
    headers['x-accel-buffering'] = 'no'
  }
  return headers
}

export function isEventStream(contentType: string | undefined): boolean {
  return contentType?.startsWith('text/event-stream') === true
}
