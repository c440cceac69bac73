import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** The message every bench server sends its parent once it accepts connections. */
export interface ReadyMessage {
  port: number
}

/** Where every proxy under test sends its requests (set by the runner for each child). */
export function upstreamUrl(): string {
  const url = process.env.UPSTREAM_URL
  if (!url) throw new Error('UPSTREAM_URL is not set: start this server through bench/run.ts')
  return url
}

/** The gateway's options, the same for all three framework mounts. */
export function gatewayOptions() {
  return {
    providers: {
      openai: { apiKey: 'sk-bench', baseURL: `${upstreamUrl()}/v1` },
      // Anthropic's base stops above `/v1`: compat requests go to `/v1/messages` on the same fake upstream.
      anthropic: { apiKey: 'sk-ant-bench', baseURL: upstreamUrl() },
    },
  }
}

/** Listens on a free loopback port, then tells the parent which one. */
export function listenAndReport(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      reportListening(server)
      resolve()
    })
  })
}

/** For servers a framework started itself (Fastify's `listen`). */
export function reportListening(server: Server): void {
  const { port } = server.address() as AddressInfo
  const message: ReadyMessage = { port }
  if (process.send) process.send(message)
  else console.log(`listening on http://127.0.0.1:${port}`)
}

// A server orphaned by a crashed or killed runner would hold its port and CPU: leave with the parent.
process.on('disconnect', () => process.exit(0))
// Exiting normally (rather than dying of the signal) is what lets `--cpu-prof` write its profile.
process.on('SIGTERM', () => process.exit(0))
