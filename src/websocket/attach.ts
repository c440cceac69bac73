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

/**
 * Serves the gateway's WebSockets on a server: an `upgrade` listener that takes the upgrades on the mount
 * (`prefix`) and leaves every other socket to the server's other `upgrade` listeners, such as the host's
 * own WebSocket servers. When it is the server's only `upgrade` listener, an upgrade it does not take is
 * destroyed, as Node does with upgrades nobody listens for. Answers the function that detaches it.
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
  const listener = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (gateway.upgrade(req, socket, head, options)) return
    if (server.listenerCount('upgrade') === 1) socket.destroy()
  }
  server.on('upgrade', listener)
  return () => {
    server.off('upgrade', listener)
  }
}
