import type { Server } from 'node:http'
import express from 'express'
import { aiGateway } from '../../adapters/express.js'
import { createGateway, type Gateway, type GatewayOptions } from '../../src/index.js'
import { closeServer, serverUrl } from './http.js'

/** A gateway mounted at `/ai` in Express 5 on a free loopback port, as the client tests run it. */
export interface MountedGateway {
  /** The server's origin; the gateway answers under `${url}/ai`. */
  readonly url: string
  readonly gateway: Gateway
  /** Closes the server, then the gateway. */
  close(): Promise<void>
}

export async function mountGateway(options: GatewayOptions): Promise<MountedGateway> {
  const gateway = createGateway(options)
  const app = express()
  app.use('/ai', aiGateway(gateway))
  const server: Server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  return {
    url: serverUrl(server),
    gateway,
    async close() {
      await closeServer(server)
      await gateway.close()
    },
  }
}
