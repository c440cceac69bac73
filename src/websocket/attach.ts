import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
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
 * @example
 * const server = app.listen(3000)
 * const detach = attachWebSockets(server, gateway, { prefix: '/ai' })
 */
export function attachWebSockets(
  server: UpgradeEmitter,
  gateway: Upgrader,
  options: UpgradeOptions = {},
): () => void {
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

function lastOf<T>(items: Set<T>): T | undefined {
  let last: T | undefined
  for (const item of items) last = item
  return last
}
