import { GatewayError } from './errors.js'
import type { Surface } from './types.js'

/**
 * Decides, from the method and path alone, whether a request is the gateway's, before any body is read.
 * `undefined` means "not ours": the adapter hands the request to the host's next handler untouched.
 *
 * Accepted shapes (relative to the mount point), each also under Cloudflare's long form
 * `/v1/{account}/{gateway}`:
 * - `POST /`: the universal endpoint. Other methods on the bare mount root are left to the host (it may
 *   serve a page there); under the long form the path is unmistakably the gateway's, so they are matched
 *   and then refused by {@link methodNotAllowed}.
 * - `/compat/chat/completions`, `/compat/embeddings`: the OpenAI-compatible API (any method is matched;
 *   only POST is served, see {@link methodNotAllowed})
 * - `/{provider}/{...rest}`: provider passthrough, any method (the provider decides)
 */
export function matchSurface(method: string, path: string): Surface | undefined {
  if (path.length === 0 || path.charCodeAt(0) !== 47 /* / */) return undefined
  const first = segmentAt(path, 0)
  if (first.name === 'v1') {
    const account = segmentAt(path, first.end)
    const gateway = segmentAt(path, account.end)
    if (!account.name || !gateway.name) return undefined
    const rest = path.slice(gateway.end) || '/'
    const scope = { account: account.name, gatewayName: gateway.name }
    return rest === '/' ? { kind: 'universal', ...scope } : surfaceAt(method, rest, scope)
  }
  return surfaceAt(method, path, {})
}

type Scope = { account?: string; gatewayName?: string }

function surfaceAt(method: string, path: string, scope: Scope): Surface | undefined {
  if (path === '/') return method === 'POST' ? { kind: 'universal', ...scope } : undefined
  const first = segmentAt(path, 0)
  if (first.name === 'compat') {
    return { kind: 'compat', operation: path.slice(first.end), ...scope }
  }
  return { kind: 'provider', provider: first.name, rest: path.slice(first.end), ...scope }
}

/** The compat operations the gateway serves; any other is answered by the compat route itself. */
const COMPAT_OPERATIONS = new Set(['/chat/completions', '/embeddings'])

/**
 * The 405 for a method the surface does not serve (with `allow`), or undefined when it does. The universal
 * endpoint and the compat operations take POST only; passthrough takes every method. Checked before any
 * step runs, as a router would: the request is refused, not served, so it is neither logged nor evented.
 *
 * @example
 * methodNotAllowed('GET', { kind: 'compat', operation: '/chat/completions' })
 * // GatewayError METHOD_NOT_ALLOWED (405, code 2119), headers { allow: 'POST' }
 */
export function methodNotAllowed(method: string, surface: Surface): GatewayError | undefined {
  if (method === 'POST' || surface.kind === 'provider') return undefined
  if (surface.kind === 'compat' && !COMPAT_OPERATIONS.has(surface.operation)) return undefined
  const endpoint = surface.kind === 'compat' ? `/compat${surface.operation}` : 'the universal endpoint'
  return new GatewayError('METHOD_NOT_ALLOWED', `${endpoint} accepts POST, not ${method}`, {
    headers: { allow: 'POST' },
  })
}

/** The segment that starts after the `/` at `start`, and where it ends. */
function segmentAt(path: string, start: number): { name: string; end: number } {
  if (start >= path.length) return { name: '', end: start }
  const end = path.indexOf('/', start + 1)
  return end === -1
    ? { name: path.slice(start + 1), end: path.length }
    : { name: path.slice(start + 1, end), end }
}
