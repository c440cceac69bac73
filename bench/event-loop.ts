/**
 * How long one very long server-sent event holds the host's event loop, measured with
 * `perf_hooks.monitorEventLoopDelay` while it passes through the gateway. A provider sends an OpenAI chat
 * stream whose second event is one `data:` line of N MiB with no newline until its end; the gateway asked
 * for usage on the client's behalf (logs are on), so the stream goes through the same path every default
 * OpenAI stream takes. Run: `npx tsx --conditions=ai-gateway-source bench/event-loop.ts`.
 *
 * Two settings per size: default options, where `maxEventBytes` (1 MiB) cuts the event and cancels the
 * provider, and `maxEventBytes` raised above the event, where it passes whole to the client.
 */
import { createServer, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createGateway, type GatewayOptions } from '../src/index.js'
import { toGatewayRequest, writeNodeResponse } from '../src/node/index.js'
import { OPENAI_KEY } from './lib/keys.js'

const CHUNK = 64 * 1024
// One buffer written again and again, so the fake provider (in this process) costs next to nothing.
const FILLER = Buffer.alloc(CHUNK, 'x')

function listen(server: ReturnType<typeof createServer>): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  )
}

async function measure(
  eventMiB: number,
  options: GatewayOptions,
): Promise<{ maxMs: number; received: number }> {
  const provider = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write('data: {"choices":[{"delta":{"content":"a"}}],"usage":null}\n\n')
    let left = eventMiB * 1024 * 1024
    res.write('data: {"choices":[{"delta":{"content":"')
    const pump = () => {
      while (left > 0) {
        left -= CHUNK
        if (!res.write(FILLER)) return void res.once('drain', pump)
      }
      res.end('"}}],"usage":null}\n\ndata: [DONE]\n\n')
    }
    res.on('close', () => {
      left = 0
    })
    pump()
  })
  const providerPort = await listen(provider)
  const gateway = createGateway({
    providers: { openai: { apiKey: OPENAI_KEY, baseURL: `http://127.0.0.1:${providerPort}/v1` } },
    ...options,
  })
  const host = createServer((req, res) => {
    void gateway.handle(toGatewayRequest(req, res, { url: req.url ?? '/' })).then((answer) => {
      if (answer) return writeNodeResponse(res, answer)
      res.writeHead(404).end()
    })
  })
  const hostPort = await listen(host)
  const delay = monitorEventLoopDelay({ resolution: 1 })
  delay.enable()
  const received = await new Promise<number>((resolve, reject) => {
    const req = request(
      {
        port: hostPort,
        path: '/openai/chat/completions',
        method: 'POST',
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let bytes = 0
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length
        })
        res.on('end', () => resolve(bytes))
        res.on('error', reject)
      },
    )
    req.end(
      JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    )
  })
  delay.disable()
  host.closeAllConnections()
  provider.closeAllConnections()
  await Promise.all([
    new Promise((r) => host.close(r)),
    new Promise((r) => provider.close(r)),
    gateway.close(),
  ])
  return { maxMs: delay.max / 1e6, received }
}

console.log('event size | options | bytes to client | event-loop delay max')
for (const mib of [8, 64]) {
  for (const [label, options] of [
    ['default (maxEventBytes 1 MiB)', {}],
    ['maxEventBytes 128 MiB', { maxEventBytes: 128 * 1024 * 1024 }],
  ] as const) {
    const { maxMs, received } = await measure(mib, options)
    console.log(`${mib} MiB | ${label} | ${received} | ${maxMs.toFixed(1)} ms`)
  }
}
