import type { Surface } from './types.js'

/**
 * Decides, from the method and path alone, whether a request is the gateway's, before any body is read.
 * `undefined` means "not ours": the adapter hands the request to the host's next handler untouched.
 *
 * Accepted shapes (relative to the mount point):
 * - `/{provider}/{...rest}`: provider passthrough
 * - `/v1/{account}/{gateway}/{provider}/{...rest}`: Cloudflare's long form of the same
 */
export function matchSurface(path: string): Surface | undefined {
  if (path.length < 2 || path.charCodeAt(0) !== 47 /* / */) return undefined
  const first = segmentAt(path, 0)
  if (first.name === 'v1') {
    const account = segmentAt(path, first.end)
    const gateway = segmentAt(path, account.end)
    const provider = segmentAt(path, gateway.end)
    if (!account.name || !gateway.name || !provider.name) return undefined
    return {
      kind: 'provider',
      provider: provider.name,
      rest: path.slice(provider.end),
      account: account.name,
      gatewayName: gateway.name,
    }
  }
  return { kind: 'provider', provider: first.name, rest: path.slice(first.end) }
}

/** The segment that starts after the `/` at `start`, and where it ends. */
function segmentAt(path: string, start: number): { name: string; end: number } {
  if (start >= path.length) return { name: '', end: start }
  const end = path.indexOf('/', start + 1)
  return end === -1
    ? { name: path.slice(start + 1), end: path.length }
    : { name: path.slice(start + 1, end), end }
}
