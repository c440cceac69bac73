import type { ResolvedProvider } from '../providers/registry.js'
import type { Scrubber } from '../secrets.js'

/**
 * RFC 9110 §7.6.1: headers that describe one connection, never the message a proxy passes on. Plus
 * `http2-settings`, the h2c upgrade's (RFC 7540 §3.2.1): an HTTP/2 host's `writeHead` throws on it as on
 * the others, so a provider's copy would leave the client without an answer.
 */
export const HOP_BY_HOP_HEADERS = [
  'connection',
  'http2-settings',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
] as const

// The hop-by-hop headers, plus set-cookie: a provider's cookies are not the host's to hand out.
// And date: the answer goes out with the host server's own, as nginx's proxy and a cache hit send it. Node
// writes its own from a clock read once a second, where a provider's is one more header to check and copy
// (some 1.5k instructions a response).
const RESPONSE_HEADERS_DROPPED = new Set(['date', ...HOP_BY_HOP_HEADERS, 'set-cookie'])

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

/** A credential a request carries, and every value in it that could be a key. */
export interface CarriedCredential {
  readonly header?: string
  readonly query?: string
  readonly values: readonly string[]
}

/**
 * The provider credentials a request carries: its key headers (`authorization`, `x-api-key`, …) and
 * Google's `?key=`. A header's values are its words (`Bearer sk-…` is two; a repeated header arrives as
 * one, its values joined by `, `); the query parameter's are all it has (`?key=a&key=b` is two).
 */
export function credentialsOf(
  headers: Readonly<Record<string, string>>,
  path: string,
  provider: ResolvedProvider,
): CarriedCredential[] {
  const found: CarriedCredential[] = []
  for (const header of provider.keyHeaders) {
    const value = headers[header]
    const values = value === undefined ? [] : wordsOf(value)
    if (values.length > 0) found.push({ header, values })
  }
  const query = provider.spec.credentialQuery
  const search = path.indexOf('?')
  if (query !== undefined && search !== -1) {
    const values = new URLSearchParams(path.slice(search)).getAll(query).filter(Boolean)
    if (values.length > 0) found.push({ query, values })
  }
  return found
}

/** A header value's words, and the pieces of a word with commas in it (a repeated header's values). */
function wordsOf(value: string): string[] {
  const words = value.split(/\s+/).filter(Boolean)
  return words.flatMap((word) => (word.includes(',') ? [word, ...word.split(',').filter(Boolean)] : word))
}

/** The path without the query parameter `name` (Google's `?key=`), the rest of the query kept as it was. */
export function withoutQueryParam(path: string, name: string): string {
  const search = path.indexOf('?')
  if (search === -1) return path
  const kept = path
    .slice(search + 1)
    .split('&')
    .filter((pair) => queryName(pair) !== name)
  return kept.length === 0 ? path.slice(0, search) : `${path.slice(0, search)}?${kept.join('&')}`
}

/**
 * A query pair's name, decoded. A malformed escape (`%zz`) is left as it is, as `URLSearchParams` (which
 * found the credential) leaves it, rather than thrown: the client's query goes on as it came.
 */
function queryName(pair: string): string {
  const name = pair.split('=')[0]!.replace(/\+/g, ' ')
  try {
    return decodeURIComponent(name)
  } catch {
    return name
  }
}

/**
 * The credential in a key header's value: the value itself, or its second word when it has a scheme
 * (`Bearer sk-…`, `Token …`).
 *
 * @example
 * credentialOf('Bearer sk-test') // 'sk-test'
 * credentialOf('sk-ant-test') // 'sk-ant-test'
 */
export function credentialOf(value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  const words = value.trim().split(/ +/)
  if (words.length > 2) return undefined
  return words[words.length - 1] || undefined
}

/** Adds a stored key in the provider's own scheme (`authorization: Bearer …`, `x-api-key: …`). */
export function injectKey(headers: Record<string, string>, provider: ResolvedProvider, key: string): void {
  const { header, scheme } = provider.spec.auth
  headers[header] = scheme ? `${scheme} ${key}` : key
}

/**
 * The provider's response headers minus hop-by-hop ones (and any the provider nominated in `Connection`),
 * each value scrubbed of the secrets the gateway sent (`scrubber`): providers quote the key they refuse in
 * `www-authenticate`, a redirect's `location` or a header of their own, as well as in the body.
 * Event streams also get `no-transform` and `x-accel-buffering: no`, so that compression middleware and
 * nginx pass events through as they come instead of holding them back.
 */
export function filterResponseHeaders(
  raw: Readonly<Record<string, string | string[] | undefined>>,
  scrubber?: Scrubber,
): Record<string, string> {
  const nominated =
    typeof raw.connection === 'string' ? raw.connection.toLowerCase().split(/\s*,\s*/) : undefined
  const headers: Record<string, string> = {}
  for (const name in raw) {
    const value = raw[name]
    if (value === undefined || RESPONSE_HEADERS_DROPPED.has(name) || nominated?.includes(name)) continue
    const text = typeof value === 'string' ? value : value.join(', ')
    headers[name] = scrubber === undefined ? text : scrubber.scrubText(text)
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
