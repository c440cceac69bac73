import type { Server } from 'node:http'
import express from 'express'
import { expect } from 'vitest'
import { aiGateway } from '../../adapters/express.js'
import { createGateway, type Gateway, type GatewayOptions } from '../../src/index.js'
import { createMockProvider, type MockCall, type MockProvider } from '../../src/testing/index.js'
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

/** A mounted gateway with the mock provider behind OpenAI, Anthropic and Google AI Studio, no stored keys. */
export interface MockBackedGateway extends MountedGateway {
  readonly mock: MockProvider
  /** The one call the mock received; fails the test when there were more or none. */
  onlyCall(): MockCall
}

export async function mountOnMock(): Promise<MockBackedGateway> {
  const mock = await createMockProvider()
  const mounted = await mountGateway({
    providers: {
      openai: { baseURL: `${mock.url}/v1` },
      anthropic: { baseURL: mock.url },
      'google-ai-studio': { baseURL: mock.url },
    },
  })
  return {
    ...mounted,
    mock,
    onlyCall() {
      expect(mock.calls).toHaveLength(1)
      return mock.calls[0]!
    },
    async close() {
      await mounted.close()
      await mock.close()
    },
  }
}
