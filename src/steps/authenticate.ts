import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { GatewayError } from '../errors.js'
import { authenticationOptions, parseWith } from '../options.js'
import type { GatewayRequest, MaybePromise, Principal, Step } from '../types.js'

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
 * Gateway authentication, as the reference's authenticated gateway: every request carries
 * `cf-aig-authorization: Bearer <token>`. A missing or wrong token is a 401 with code 2009 and nothing
 * else, so a guesser learns nothing about why. The header never goes upstream (the provider allowlist
 * leaves every `cf-aig-*` header out), and the token is never logged.
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
  return async function authenticate(ctx, next) {
    const token = BEARER.exec(ctx.request.headers['cf-aig-authorization'] ?? '')?.[1]
    if (token === undefined) throw new GatewayError('UNAUTHORIZED')
    const principal = matchToken(token)
    if (principal !== undefined) {
      ctx.state.principal = principal
    } else {
      const verdict = verifyToken === undefined ? undefined : await verifyToken(token, ctx.request)
      if (verdict === undefined || verdict === null || verdict === false)
        throw new GatewayError('UNAUTHORIZED')
      if (typeof verdict === 'object') ctx.state.principal = verdict
    }
    await next()
  }
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
function tokenMatcher(tokens: readonly (string | NamedToken)[]): (token: string) => Principal | undefined {
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
