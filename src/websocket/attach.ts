import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { Server as TlsServer } from 'node:tls'
import type { UpgradeOptions } from './index.js'

/** What `attachWebSockets` needs of a gateway: its `upgrade`. */
export interface Upgrader {
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, options?: UpgradeOptions): boolean
}

/** A Node HTTP or HTTPS server, or anything else that emits `upgrade` as they do. */
export interface UpgradeEmitter {
  on(event: 'upgrade', listener: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): unknown
  off(event: 'upgrade', listener: (req: IncomingMessage, socket: Duplex, head: Buffer) => void): unknown
  listenerCount(event: 'upgrade'): number
}

type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void

// Every listener this function attached, by server, in the order the server calls them; and the sockets
// one of them took. Node hands an upgrade to every listener, so when a server has only these (two
// gateways, or one under two prefixes), the last of them destroys what none took.
const attachedTo = new WeakMap<UpgradeEmitter, Set<UpgradeListener>>()
const taken = new WeakSet<Duplex>()

/**
 * Serves the gateway's WebSockets on a server: an `upgrade` listener that takes the upgrades on the mount
 * (`prefix`) and leaves every other socket to the server's other `upgrade` listeners, such as the host's
 * own WebSocket servers. When its listeners are the server's only `upgrade` listeners (one gateway, or
 * several attached here), an upgrade none of them takes is destroyed, as Node does with upgrades nobody
 * listens for. Answers the function that detaches it.
 *
 * WebSockets open with an HTTP/1.1 upgrade: an HTTP/2 server over TLS serves them to HTTP/1.1 clients
 * when made with `allowHTTP1: true`; one without TLS (h2c, Fastify's `http2: true` without `https`)
 * speaks nothing but HTTP/2, so attaching to it throws rather than wait for upgrades that never come.
 *
 * @example
 * const server = app.listen(3000)
 * const detach = attachWebSockets(server, gateway, { prefix: '/ai' })
 */
export function attachWebSockets(
  server: UpgradeEmitter,
  gateway: Upgrader,
  options: UpgradeOptions = {},
): () => void {
  if (isCleartextHttp2(server)) {
    throw new TypeError(
      'an HTTP/2 server without TLS (h2c) takes no HTTP/1.1 upgrades, so it cannot serve WebSockets: use http.createServer, or http2.createSecureServer with allowHTTP1: true',
    )
  }
  const siblings = attachedTo.get(server) ?? new Set<UpgradeListener>()
  attachedTo.set(server, siblings)
  const listener: UpgradeListener = (req, socket, head) => {
    if (gateway.upgrade(req, socket, head, options)) {
      taken.add(socket)
      return
    }
    if (taken.has(socket) || server.listenerCount('upgrade') !== siblings.size) return
    if (lastOf(siblings) === listener) socket.destroy()
  }
  siblings.add(listener)
  server.on('upgrade', listener)
  return () => {
    siblings.delete(listener)
    server.off('upgrade', listener)
  }
}

// HTTP/2 servers have `updateSettings`; the one over TLS is a `tls.Server`, the h2c one is not.
function isCleartextHttp2(server: UpgradeEmitter): boolean {
  return (
    typeof (server as { updateSettings?: unknown }).updateSettings === 'function' &&
    !(server instanceof TlsServer)
  )
}

function lastOf<T>(items: Set<T>): T | undefined {
  let last: T | undefined
  for (const item of items) last = item
  return last
}
