import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { GatewayRequest, MaybePromise } from '../types.js'

/** Checks a bearer token the `token` list does not hold; only `true` admits the request. */
export type VerifyAdminToken = (token: string, request: GatewayRequest) => MaybePromise<boolean>

/** Admits or refuses one request; `undefined` from `createAuthorizer` means the admin is open. */
export type Authorize = (request: GatewayRequest) => Promise<boolean>

// Both sides of every comparison are HMAC digests under this key, drawn once per process: the compared
// buffers always have the same length, and how far a guess matches says nothing about the token.
const compareKey = randomBytes(32)

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i

function digest(value: string): Buffer {
  return createHmac('sha256', compareKey).update(value).digest()
}

/**
 * The token of an `authorization: Bearer <token>` header, or undefined without one.
 *
 * @example
 * bearerToken('Bearer s3cr3t-admin-token') // 's3cr3t-admin-token'
 */
export function bearerToken(header: string | undefined): string | undefined {
  return header === undefined ? undefined : BEARER.exec(header)?.[1]
}

/** Checks one token, however it arrived: in a bearer header, or typed into the dashboard's login page. */
export type CheckAdminToken = (token: string, request: GatewayRequest) => Promise<boolean>

/**
 * Builds the admin's token check: the token must equal one of `tokens` or be accepted by `verify`. Without
 * either, there is nothing to check and the result is `undefined`.
 *
 * @example
 * const check = createTokenCheck(['s3cr3t-admin-token'], undefined)
 * await check?.('s3cr3t-admin-token', request) // true
 */
export function createTokenCheck(
  tokens: readonly string[],
  verify: VerifyAdminToken | undefined,
): CheckAdminToken | undefined {
  if (tokens.length === 0 && verify === undefined) return undefined
  const known = tokens.map(digest)
  return async function checkToken(token, request) {
    if (matchesAny(known, digest(token))) return true
    return verify !== undefined && (await verify(token, request)) === true
  }
}

/**
 * Builds the admin's request check: the bearer token must pass `check` (see `createTokenCheck`). Without a
 * check the admin is open and the result is `undefined`.
 *
 * @example
 * const authorize = createAuthorizer(createTokenCheck(['s3cr3t-admin-token'], undefined))
 * await authorize?.(request) // true only with `authorization: Bearer s3cr3t-admin-token`
 */
export function createAuthorizer(check: CheckAdminToken | undefined): Authorize | undefined {
  if (check === undefined) return undefined
  return async function authorize(request) {
    const token = bearerToken(request.headers.authorization)
    return token !== undefined && check(token, request)
  }
}

function matchesAny(known: readonly Buffer[], candidate: Buffer): boolean {
  let matched = false
  // Every token is compared, so the time taken does not tell which one matched.
  for (const digestOfToken of known) matched = timingSafeEqual(digestOfToken, candidate) || matched
  return matched
}
