import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { GatewayError } from '../errors.js'
import { authenticationOptions, parseWith } from '../options.js'
import type { GatewayRequest, MaybePromise, Principal, Step } from '../types.js'
import { credentialOf } from '../upstream/headers.js'

/** A fixed gateway token with a name: the name is the principal id its holders are known by. */
export interface NamedToken {
  /** A slug (a-z, 0-9, -): the principal id for cache scope, `principal` limits and logs. */
  readonly name: string
  readonly token: string
}

/** What `authentication` accepts: fixed tokens, a callback, or both (tokens are tried first). */
export interface AuthenticationOptions {
  /**
   * Accepted gateway tokens, plain or named. Each is its own principal: `{ id: name }` for a named one,
   * `{ id: 'token:' + the first 12 hex characters of its SHA-256 }` for a plain one.
   */
  tokens?: readonly (string | NamedToken)[] | undefined
  /** Returns a principal (or `true`) for a valid token, anything else for an invalid one. */
  verifyToken?:
    | ((token: string, request: GatewayRequest) => MaybePromise<Principal | boolean | null | undefined>)
    | undefined
}

const BEARER = /^Bearer +(\S+)\s*$/i

/**
 * Where the official SDKs put their `apiKey`: OpenAI's and most others' `authorization: Bearer`,
 * Anthropic's `x-api-key`, Google's `x-goog-api-key`, Azure OpenAI's `api-key`. A request without
 * `cf-aig-authorization` may carry the gateway token there instead (`new OpenAI({ apiKey: token })`).
 */
const SDK_KEY_HEADERS = ['authorization', 'x-api-key', 'x-goog-api-key', 'api-key'] as const

/**
 * Gateway authentication, as the reference's authenticated gateway: every request carries
 * `cf-aig-authorization: Bearer <token>`. A missing or wrong token is a 401 with code 2009 and nothing
 * else, so a guesser learns nothing about why. The header never goes upstream (the provider allowlist
 * leaves every `cf-aig-*` header out), and the token is never logged.
 *
 * Without that header, the token may come where an SDK puts its API key (`authorization: Bearer`,
 * `x-api-key`, `x-goog-api-key`, `api-key`), so an official SDK given the gateway token as its key works
 * with no custom headers. Either way the token is kept in `ctx.state.gatewayToken`: a provider key header
 * that carries it is the gateway token, never forwarded, and the stored key goes in its place.
 *
 * A fixed token makes its holder a principal of its own (see `tokenPrincipal`), so two tokens never share
 * cache entries or `principal` limit counters; `identify` can still name someone else (see `identify`).
 *
 * @example
 * authenticate({ tokens: ['ci-token-0123456789abcdef', { name: 'ci', token: process.env.CI_TOKEN! }] })
 */
export function authenticate(options?: AuthenticationOptions): Step {
  if (options === undefined) {
    return function authenticate(_ctx, next) {
      return next()
    }
  }
  // The `authentication` option's schema: a wrong token list throws here, naming the entry.
  options = parseWith(authenticationOptions, options, 'authenticate() options') as AuthenticationOptions
  const matchToken = tokenMatcher(options.tokens ?? [])
  const { verifyToken } = options
  async function verify(token: string, request: GatewayRequest): Promise<Principal | true | undefined> {
    const principal = matchToken(token)
    if (principal !== undefined) return principal
    const verdict = verifyToken === undefined ? undefined : await verifyToken(token, request)
    return verdict === true || (typeof verdict === 'object' && verdict !== null) ? verdict : undefined
  }
  return async function authenticate(ctx, next) {
    const { headers } = ctx.request
    const header = headers['cf-aig-authorization']
    const candidates = header === undefined ? sdkKeys(headers) : [BEARER.exec(header)?.[1]]
    for (const token of candidates) {
      if (token === undefined) continue
      const verdict = await verify(token, ctx.request)
      if (verdict === undefined) continue
      if (verdict !== true) ctx.state.principal = verdict
      ctx.state.gatewayToken = token
      // Awaited rather than returned: an async function returning a promise takes two more turns to settle.
      return await next()
    }
    throw new GatewayError('UNAUTHORIZED')
  }
}

/** The keys a request carries in the SDKs' key headers, scheme removed, each once. */
function sdkKeys(headers: GatewayRequest['headers']): string[] {
  const keys: string[] = []
  for (const name of SDK_KEY_HEADERS) {
    const key = credentialOf(headers[name])
    if (key !== undefined && !keys.includes(key)) keys.push(key)
  }
  return keys
}

/**
 * The principal a fixed token stands for: `{ id: name }` for a named token; for a plain one an id that is
 * the same on every instance and after every restart (so a shared cache or limit store keeps working) but
 * does not give the token away: `token:` and the first 12 hex characters (48 bits) of its SHA-256.
 *
 * @example
 * tokenPrincipal({ name: 'ci', token: '…' }) // { id: 'ci' }
 * tokenPrincipal('gw-token-0123456789abcdef') // { id: 'token:3f0c9a…' } (12 hex characters)
 */
export function tokenPrincipal(entry: string | NamedToken): Principal {
  if (typeof entry !== 'string') return Object.freeze({ id: entry.name })
  const digest = createHash('sha256').update(entry).digest('hex')
  return Object.freeze({ id: `token:${digest.slice(0, 12)}` })
}

/** The secret of a token entry, plain or named (for scrubbing logs of every configured secret). */
export function tokenSecret(entry: string | NamedToken): string {
  return typeof entry === 'string' ? entry : entry.token
}

/**
 * Compares in constant time: both sides are HMAC'd under a key made at startup, so every comparison is of
 * two 32-byte digests (no early exit on length), and every configured token is compared every time.
 * Answers the matching token's principal (made once, here), or `undefined` when none matches.
 */
export function tokenMatcher(
  tokens: readonly (string | NamedToken)[],
): (token: string) => Principal | undefined {
  const key = randomBytes(32)
  const digest = (value: string) => createHmac('sha256', key).update(value).digest()
  const known = tokens.map((entry) => ({
    digest: digest(tokenSecret(entry)),
    principal: tokenPrincipal(entry),
  }))
  return (token) => {
    const candidate = digest(token)
    let matched: Principal | undefined
    for (const expected of known) {
      const equal = timingSafeEqual(candidate, expected.digest)
      matched = equal ? expected.principal : matched
    }
    return matched
  }
}
