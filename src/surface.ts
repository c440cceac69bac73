import type { Surface } from './types.js'

/**
 * Decides, from the method and path alone, whether a request is the gateway's, before any body is read.
 * `undefined` means "not ours": the adapter hands the request to the host's next handler untouched.
 *
 * Accepted shapes (relative to the mount point), each also under Cloudflare's long form
 * `/v1/{account}/{gateway}`:
 * - `POST /`: the universal endpoint
 * - `/compat/chat/completions`, `/compat/embeddings`: the OpenAI-compatible API
 * - `/{provider}/{...rest}`: provider passthrough
 */
export function matchSurface(method: string, path: string): Surface | undefined {
  if (path.length === 0 || path.charCodeAt(0) !== 47 /* / */) return undefined
  const first = segmentAt(path, 0)
  if (first.name === 'v1') {
    const account = segmentAt(path, first.end)
    const gateway = segmentAt(path, account.end)
    if (!account.name || !gateway.name) return undefined
    return surfaceAt(method, path.slice(gateway.end) || '/', {
      account: account.name,
      gatewayName: gateway.name,
    })
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

/** The segment that starts after the `/` at `start`, and where it ends. */
function segmentAt(path: string, start: number): { name: string; end: number } {
  if (start >= path.length) return { name: '', end: start }
  const end = path.indexOf('/', start + 1)
  return end === -1
    ? { name: path.slice(start + 1), end: path.length }
    : { name: path.slice(start + 1, end), end }
}
