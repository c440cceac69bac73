import { createHash, createHmac } from 'node:crypto'
import { isRecord } from '../json.js'
import type { UpstreamTarget } from '../target.js'
import type { Principal } from '../types.js'
import { splitQuery } from '../url.js'

// Bumped when the key's inputs change, so entries written by an older version are never read as current.
const KEY_VERSION = 'aigw-cache-v2'
// Used when the host gives no `keySecret`: the fingerprint is then a domain-separated hash, still one-way.
const PUBLIC_FINGERPRINT_KEY = 'ai-gateway-middleware/credential-fingerprint'

export interface CacheKeyInput {
  /** The gateway's name: instances of different gateways sharing a store never share entries. */
  readonly gateway: string
  /** Whose entries these are: `cacheScope(principal)`. */
  readonly scope: string
  readonly targets: readonly UpstreamTarget[]
  /** The client's request body (`undefined` for bodyless requests). */
  readonly body: Buffer | undefined
  /** The same body as JSON (`ctx.readJson()`), hashed in canonical form so key order does not matter. */
  readonly json: unknown
  /** `cf-aig-cache-key`, which replaces the body in the key (never the scope). */
  readonly customKey: string | undefined
  readonly fingerprintSecret: string | undefined
}

/**
 * The cache key: SHA-256 over length-prefixed fields, so no two different inputs can run together into
 * the same string. What goes in: gateway, principal scope, and per target the provider, method, endpoint
 * (credential query parameter removed), model, stream flag and a keyed fingerprint of the credential; then
 * the canonical body (object keys sorted) or the custom key. Metadata is left out, as the reference does.
 *
 * @example
 * cacheKey({
 *   gateway: 'default', scope: 'tenant:acme', targets, body, json, customKey: undefined, fingerprintSecret,
 * })
 * // 'f3a1…' (64 hex characters)
 */
export function cacheKey(input: CacheKeyInput): string {
  const hash = createHash('sha256')
  const field = (value: string | Buffer) => {
    hash.update(`${Buffer.byteLength(value)}:`)
    hash.update(value)
  }
  field(KEY_VERSION)
  field(input.gateway)
  field(input.scope)
  const { json } = input
  field(String(input.targets.length))
  for (const target of input.targets) {
    const { path, credential } = withoutCredentialQuery(target)
    field(target.provider.spec.id)
    field(target.method)
    field(path)
    field(target.model ?? '')
    field(target.stream ? 'stream' : 'whole')
    field(credentialFingerprint(target, credential, input.fingerprintSecret))
  }
  if (input.customKey !== undefined) {
    field('custom')
    field(input.customKey)
  } else {
    field('body')
    field(json === undefined ? (input.body ?? '') : canonicalOrRaw(json, input.body ?? ''))
  }
  return hash.digest('hex')
}

/**
 * Whose entries a request reads and writes: its principal's tenant, else its id, else `''` (anonymous
 * callers share). Tagged with the field, so a tenant and a user that happen to share a name (`7` and `7`)
 * never share entries. An empty value names no one, as `identify` reads it. Ids are keyed as text: a host
 * in plain JavaScript may hand over its database's numbers.
 *
 * @example
 * cacheScope({ id: 'ann', tenant: 'acme' }) // 'tenant:acme'
 */
export function cacheScope(principal: Principal | undefined): string {
  if (principal === undefined) return ''
  for (const field of ['tenant', 'id'] as const) {
    const value: unknown = principal[field]
    if (value !== undefined && value !== null && value !== '') return `${field}:${String(value)}`
  }
  return ''
}

/**
 * `canonicalJson`, or the body's own bytes for JSON nested too deeply to walk (the stack overflows some
 * thousands deep) or holding an integer past 2^53: such a request is keyed as it was sent.
 */
function canonicalOrRaw<B>(json: unknown, body: B): string | B {
  try {
    return canonicalJson(json)
  } catch (error) {
    if (error instanceof RangeError) return body
    throw error
  }
}

/**
 * JSON with object keys sorted at every depth, so that key order never splits one request into two entries.
 * Throws a RangeError for an integer past 2^53: parsed, `9007199254740993` reads as `…992`, while a
 * provider that keeps integers whole (a `seed`) reads two requests, which must not share one entry.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (isRecord(value)) {
    const keys = Object.keys(value).sort()
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`).join(',')}}`
  }
  if (typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value)) {
    throw new RangeError(`${value} is past the integers JSON.parse keeps exact`)
  }
  return JSON.stringify(value) ?? 'null'
}

function withoutCredentialQuery(target: UpstreamTarget): { path: string; credential: string } {
  const name = target.provider.spec.credentialQuery
  const { path, search } = splitQuery(target.path)
  if (name === undefined || search === '') return { path: target.path, credential: '' }
  const params = new URLSearchParams(search)
  const credential = params.get(name) ?? ''
  params.delete(name)
  const rest = params.toString()
  return { path: rest === '' ? path : `${path}?${rest}`, credential }
}

/** HMAC of every credential the target carries: two keys never share entries, and no key is stored. */
function credentialFingerprint(
  target: UpstreamTarget,
  queryCredential: string,
  secret: string | undefined,
): string {
  const hmac = createHmac('sha256', secret ?? PUBLIC_FINGERPRINT_KEY)
  const { auth } = target.provider.spec
  const names = new Set([auth.header, ...target.provider.credentialHeaders])
  for (const name of names) {
    const value = target.headers[name]
    if (value !== undefined) hmac.update(`${name}:${Buffer.byteLength(value)}:${value}`)
  }
  hmac.update(`query:${queryCredential}`)
  return hmac.digest('hex')
}
