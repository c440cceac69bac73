import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { GatewayError } from '../errors.js'
import type { GatewayRequest, MaybePromise, Principal, Step } from '../types.js'

/** What `authentication` accepts: fixed tokens, a callback, or both (tokens are tried first). */
export interface AuthenticationOptions {
  tokens?: readonly string[] | undefined
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
 */
export function authenticate(options: AuthenticationOptions | undefined): Step {
  if (options === undefined) {
    return function authenticate(_ctx, next) {
      return next()
    }
  }
  const matchesToken = tokenMatcher(options.tokens ?? [])
  const { verifyToken } = options
  return async function authenticate(ctx, next) {
    const token = BEARER.exec(ctx.request.headers['cf-aig-authorization'] ?? '')?.[1]
    if (token === undefined) throw new GatewayError('UNAUTHORIZED')
    if (!matchesToken(token)) {
      const verdict = verifyToken === undefined ? undefined : await verifyToken(token, ctx.request)
      if (verdict === undefined || verdict === null || verdict === false)
        throw new GatewayError('UNAUTHORIZED')
      if (typeof verdict === 'object') ctx.state.principal = verdict
    }
    await next()
  }
}

/**
 * Compares in constant time: both sides are HMAC'd under a key made at startup, so every comparison is of
 * two 32-byte digests (no early exit on length), and every configured token is compared every time.
 */
function tokenMatcher(tokens: readonly string[]): (token: string) => boolean {
  const key = randomBytes(32)
  const digest = (value: string) => createHmac('sha256', key).update(value).digest()
  const known = tokens.map(digest)
  return (token) => {
    const candidate = digest(token)
    let matched = false
    for (const expected of known) matched = timingSafeEqual(candidate, expected) || matched
    return matched
  }
}
