import { GatewayError } from '../errors.js'
import type { ResolvedProvider } from '../providers/registry.js'
import { addRequestSecret } from '../secrets.js'
import { callStore } from '../stores/call.js'
import type { UpstreamTarget } from '../target.js'
import type { GatewayContext } from '../types.js'
import { carriesCredential, injectKey } from '../upstream/headers.js'

/** A stored-key lookup never holds a request longer than this; past it the request is refused (503). */
const KEY_LOOKUP_TIMEOUT_MS = 1000
const DEFAULT_ALIAS = 'default'

/**
 * Credential precedence, as the reference documents it: a key the request carries is used as it is; else
 * the stored key named by `cf-aig-byok-alias` (default `default`: the provider's `apiKey` option, then the
 * key ring); an alias with nothing stored is a 400 (2040) naming the configured aliases, never their
 * values; no credential at all is a 400 (2044) when `requireCredentials` is on, else the request goes as
 * it is (a local model may need none).
 */
export async function attachStoredKeys(
  ctx: GatewayContext,
  targets: readonly UpstreamTarget[],
): Promise<void> {
  for (const target of targets) {
    const { provider } = target
    if (carriesCredential(target.headers, target.path, provider)) continue
    const named = target.policy.keyAlias
    const alias = named ?? DEFAULT_ALIAS
    const key =
      alias === DEFAULT_ALIAS && provider.apiKey !== undefined
        ? provider.apiKey
        : await storedKey(ctx, provider, alias)
    if (key !== undefined) {
      injectKey(target.headers, provider, key)
      addRequestSecret(ctx, key)
      continue
    }
    if (named !== undefined) throw await unknownAlias(ctx, provider, named)
    if (ctx.gateway.options.requireCredentials) {
      throw new GatewayError(
        'MISSING_PROVIDER_CREDENTIALS',
        `the request has no ${provider.spec.id} credential and none is stored`,
      )
    }
  }
}

async function storedKey(
  ctx: GatewayContext,
  provider: ResolvedProvider,
  alias: string,
): Promise<string | undefined> {
  const ring = ctx.gateway.options.keys
  if (ring === undefined) return undefined
  try {
    return await callStore(() => ring.getSecret(provider.spec.id, alias), KEY_LOOKUP_TIMEOUT_MS)
  } catch (error) {
    // Failing closed: a request sent without its key would be refused upstream, or billed to the wrong key.
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
  const stored = await Promise.resolve(ctx.gateway.options.keys?.aliases(id)).catch(() => undefined)
  const aliases = new Set(provider.apiKey === undefined ? [] : [DEFAULT_ALIAS])
  for (const name of stored ?? []) aliases.add(name)
  const list = aliases.size === 0 ? 'none' : [...aliases].sort().join(', ')
  return new GatewayError(
    'UNKNOWN_KEY_ALIAS',
    `provider '${id}' has no stored key named '${alias}'; configured aliases: ${list}`,
  )
}
