import { createHash, timingSafeEqual } from 'node:crypto'
import { GatewayError } from '../errors.js'
import { reportStoreError } from '../events.js'
import { withFields } from '../objects.js'
import type { ResolvedProvider } from '../providers/registry.js'
import { addRequestSecret } from '../secrets.js'
import { tokenMatcher } from '../steps/authenticate.js'
import { callStore } from '../stores/call.js'
import type { UpstreamTarget } from '../target.js'
import type { GatewayContext } from '../types.js'
import { balancedOrder } from '../upstream/balance.js'
import { breakerKey } from '../upstream/breaker.js'
import { credentialsOf, injectKey, withoutQueryParam } from '../upstream/headers.js'

/** A stored-key lookup never holds a request longer than this; past it the request is refused (503). */
const KEY_LOOKUP_TIMEOUT_MS = 1000
const DEFAULT_ALIAS = 'default'

/**
 * Credential precedence, as the reference documents it: a key the request carries is used as it is; else
 * the stored key named by `cf-aig-byok-alias` (default `default`: the provider's `apiKey` option, then the
 * key ring); an alias with nothing stored is a 400 (2040) naming the configured aliases, never their
 * values; no credential at all is a 400 (2044) when `requireCredentials` is on, else the request goes as
 * it is (a local model may need none).
 *
 * Two things come first. A credential that holds a gateway token (a configured one, or the one the request
 * authenticated with: an SDK given it as its API key) is the gateway token, so it is removed, never
 * forwarded, wherever it is and whatever else it holds. And the provider's
 * `callerKeys` policy decides what a caller's own key does: `forward` it (the precedence above), `ignore`
 * it (removed, the stored key used), or `refuse` the request (2122).
 *
 * Answers the targets as they are to be sent: a target whose `?key=` was removed is a new object. The answer
 * is a promise only when a key had to be looked up in a store: the usual request (the provider's `apiKey`,
 * or a key of the caller's own) then takes no turn of the microtask queue here.
 */
export function attachStoredKeys(
  ctx: GatewayContext,
  targets: readonly UpstreamTarget[],
): UpstreamTarget[] | Promise<UpstreamTarget[]> {
  const sent: UpstreamTarget[] = []
  // Lookups run one after another, in the targets' order, as each waits on the one before.
  let lookups: Promise<void> | undefined
  for (const given of targets) {
    const { target, keyLeft } = withoutCallerKeys(ctx, given)
    // The pool is the `default` alias, whether the request names it or not.
    const alias = target.policy.keyAlias ?? DEFAULT_ALIAS
    const pool = keyLeft || alias !== DEFAULT_ALIAS ? undefined : target.provider.keyPool
    if (pool !== undefined) {
      sent.push(...pooledTargets(ctx, target, pool))
      continue
    }
    sent.push(target)
    if (keyLeft) continue
    lookups =
      lookups === undefined ? attachStoredKey(ctx, target) : lookups.then(() => attachStoredKey(ctx, target))
  }
  return lookups === undefined ? sent : lookups.then(() => sent)
}

/**
 * A target sent with a pool of keys becomes one target per key, in the order `balance` gives: the first
 * takes the request, the others stand by as its fallbacks (a 429 on one key moves on to the next, and a key
 * whose breaker is open is skipped).
 */
function pooledTargets(
  ctx: GatewayContext,
  target: UpstreamTarget,
  pool: NonNullable<ResolvedProvider['keyPool']>,
): UpstreamTarget[] {
  const { provider } = target
  const candidates = pool.map(({ key, weight }) => {
    const headers = { ...target.headers }
    injectKey(headers, provider, key)
    addRequestSecret(ctx, key)
    const keyed = withFields(target, { headers })
    return { item: keyed, weight, key: breakerKey(keyed) }
  })
  return balancedOrder(candidates, ctx.gateway.options.balance, ctx.gateway.latency)
}

/**
 * The target without the credentials that must not go upstream: the gateway token wherever it is, and
 * every caller key unless the provider forwards them (the same target when nothing was removed); and
 * whether a credential is left in it.
 */
function withoutCallerKeys(
  ctx: GatewayContext,
  target: UpstreamTarget,
): { target: UpstreamTarget; keyLeft: boolean } {
  const { provider } = target
  const found = credentialsOf(target.headers, target.path, provider)
  if (found.length === 0) return { target, keyLeft: false }
  const isGatewayToken = gatewayTokenTest(ctx)
  const callers =
    isGatewayToken === undefined ? found : found.filter(({ values }) => !values.some(isGatewayToken))
  if (callers.length > 0 && provider.callerKeys === 'refuse') {
    const id = provider.spec.id
    throw new GatewayError(
      'CALLER_KEY_REFUSED',
      `this gateway sends its own ${id} key; send the request without one (or with the gateway token)`,
    )
  }
  const removed =
    provider.callerKeys === 'ignore' ? found : found.filter((credential) => !callers.includes(credential))
  const keyLeft = removed.length < found.length
  if (removed.length === 0) return { target, keyLeft }
  let { path } = target
  for (const { header, query } of removed) {
    if (header !== undefined) delete target.headers[header]
    if (query !== undefined) path = withoutQueryParam(path, query)
  }
  return { target: path === target.path ? target : withFields(target, { path }), keyLeft }
}

/** Attaches the target's key: at once when it is the provider's `apiKey`, else once found in a store. */
function attachStoredKey(ctx: GatewayContext, target: UpstreamTarget): Promise<void> | undefined {
  const { provider } = target
  const named = target.policy.keyAlias
  if ((named ?? DEFAULT_ALIAS) === DEFAULT_ALIAS && provider.apiKey !== undefined) {
    attachKey(ctx, target, provider.apiKey)
    return undefined
  }
  return attachKeyFromStore(ctx, target, named)
}

function attachKey(ctx: GatewayContext, target: UpstreamTarget, key: string): void {
  injectKey(target.headers, target.provider, key)
  addRequestSecret(ctx, key)
}

async function attachKeyFromStore(
  ctx: GatewayContext,
  target: UpstreamTarget,
  named: string | undefined,
): Promise<void> {
  const { provider } = target
  const key = await storedKey(ctx, provider, named ?? DEFAULT_ALIAS)
  if (key !== undefined) {
    attachKey(ctx, target, key)
    return
  }
  if (named !== undefined) throw await unknownAlias(ctx, provider, named)
  if (ctx.gateway.options.requireCredentials) {
    throw new GatewayError(
      'MISSING_PROVIDER_CREDENTIALS',
      `the request has no ${provider.spec.id} credential and none is stored`,
    )
  }
}

// The matcher of a gateway's configured tokens, made at its first request that carries a credential.
const configuredTokens = new WeakMap<GatewayContext['gateway'], ReturnType<typeof tokenMatcher>>()

/**
 * Whether a value is a gateway token: one of the configured `tokens` (matched as `authenticate` matches
 * them, in constant time), or the one this request authenticated with (the only one `verifyToken` is asked
 * about: a host's lookup is not made once per header). `undefined` when the gateway has no token to find.
 */
function gatewayTokenTest(ctx: GatewayContext): ((value: string) => boolean) | undefined {
  const { gateway } = ctx
  const tokens = gateway.options.authentication?.tokens ?? []
  const own = ctx.state.gatewayToken
  if (tokens.length === 0 && own === undefined) return undefined
  let configured = configuredTokens.get(gateway)
  if (configured === undefined) {
    configured = tokenMatcher(tokens)
    configuredTokens.set(gateway, configured)
  }
  const ownDigest = own === undefined ? undefined : digestOf(own)
  return (value) =>
    configured(value) !== undefined ||
    (ownDigest !== undefined && timingSafeEqual(digestOf(value), ownDigest))
}

function digestOf(value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

function storedKey(
  ctx: GatewayContext,
  provider: ResolvedProvider,
  alias: string,
): Promise<string | undefined> | undefined {
  const ring = ctx.gateway.options.keys
  if (ring === undefined) return undefined
  return fromKeyRing(ctx, provider, 'get', () => ring.getSecret(provider.spec.id, alias))
}

/**
 * A key ring's answer, bounded by `KEY_LOOKUP_TIMEOUT_MS`. Failing closed: a ring that fails or is slow
 * refuses the request (503), as one sent without its key would be refused upstream, or billed to the wrong
 * key. The failure is reported as `store:error`: the answer says only that keys could not be read, and
 * the operator needs to tell a store that is down from a record under a master key the ring lacks.
 */
async function fromKeyRing<T>(
  ctx: GatewayContext,
  provider: ResolvedProvider,
  operation: 'get' | 'aliases',
  lookup: () => Promise<T>,
): Promise<T> {
  try {
    return await callStore(lookup, KEY_LOOKUP_TIMEOUT_MS)
  } catch (error) {
    reportStoreError(ctx, 'keys', operation, error)
    throw new GatewayError('KEY_STORE_UNAVAILABLE', `stored keys for ${provider.spec.id} could not be read`, {
      cause: error,
    })
  }
}

async function unknownAlias(
  ctx: GatewayContext,
  provider: ResolvedProvider,
  alias: string,
): Promise<GatewayError> {
  const id = provider.spec.id
  const ring = ctx.gateway.options.keys
  const stored = ring === undefined ? [] : await fromKeyRing(ctx, provider, 'aliases', () => ring.aliases(id))
  const configured = provider.apiKey !== undefined || provider.keyPool !== undefined
  const aliases = new Set(configured ? [DEFAULT_ALIAS] : [])
  for (const name of stored) aliases.add(name)
  const list = aliases.size === 0 ? 'none' : [...aliases].sort().join(', ')
  return new GatewayError(
    'UNKNOWN_KEY_ALIAS',
    `provider '${id}' has no stored key named '${alias}'; configured aliases: ${list}`,
  )
}
