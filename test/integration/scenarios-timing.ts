import { EventEmitter, once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { expect, it } from 'vitest'
import { closeServer, send } from '../helpers/http.js'
import { chat, type World } from './scenarios.js'

const CHAT = '/ai/openai/chat/completions'
// `gateway;dur=<ms>`, then `upstream;dur=<ms>` when a provider was called, then the provider's own metrics.
const SERVER_TIMING = /^gateway;dur=(\d+\.\d{3})(?:, upstream;dur=(\d+\.\d{3}))?(?:, (.+))?$/
// Durations are written to the microsecond: a figure may read up to half of one lower than it was.
const ROUNDING_MS = 0.0005
/** How long the test holds the provider's answer back; only ever a lower bound of what it measures. */
const HOLD_MS = 20

interface ServerTiming {
  gateway: number
  upstream: number | undefined
  /** What follows the gateway's metrics: the provider's own. */
  rest: string | undefined
}

function serverTimingOf(headers: Record<string, string>): ServerTiming {
  const value = headers['server-timing'] ?? ''
  const match = SERVER_TIMING.exec(value)
  if (match === null) throw new Error(`not the gateway's Server-Timing: '${value}'`)
  return {
    gateway: Number(match[1]),
    upstream: match[2] === undefined ? undefined : Number(match[2]),
    rest: match[3],
  }
}

/** A request that reached the held provider, and how to let its answer go. */
interface Hold {
  /** `performance.now()` when the whole request had arrived: after the gateway sent it. */
  readonly arrivedAt: number
  release(): void
}

/**
 * An OpenAI stand-in on node:http that answers each chat request only when the test releases it: the
 * wait for its headers is then as long as the test decides, by its own sequencing. Emits `request` with a
 * `Hold` once a request's body has arrived. Its answers carry a `Server-Timing` of its own.
 */
async function startHeldProvider() {
  const arrivals = new EventEmitter()
  const server = createServer((req, res) => {
    req.resume()
    req.once('end', () => {
      const hold: Hold = {
        arrivedAt: performance.now(),
        release: () => {
          const body = JSON.stringify({
            object: 'chat.completion',
            choices: [{ index: 0, message: { role: 'assistant', content: 'held' }, finish_reason: 'stop' }],
          })
          res.writeHead(200, { 'content-type': 'application/json', 'server-timing': 'provider;dur=7' })
          res.end(body)
        },
      }
      arrivals.emit('request', hold)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { baseURL: `http://127.0.0.1:${port}/v1`, arrivals, close: () => closeServer(server) }
}

/** `Server-Timing` (the `serverTiming` option): the same table for every framework. */
export function timingScenarios(world: World): void {
  it('server timing: off by default, on no answer', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start()
    const ok = await send(`${url}${CHAT}`, { body: chat('hi') })
    const refused = await send(`${url}/ai/not-a-provider/chat/completions`, { body: chat('hi') })
    expect([ok.status, refused.status]).toEqual([200, 400])
    expect(ok.headers['server-timing']).toBeUndefined()
    expect(refused.headers['server-timing']).toBeUndefined()
  })

  it("server timing: the gateway's own time, and the upstream wait at least as long as the provider was held", async () => {
    const provider = await startHeldProvider()
    try {
      const url = await world.start({
        serverTiming: true,
        providers: { openai: { apiKey: 'sk-stored', baseURL: provider.baseURL } },
      })
      const arrived = once(provider.arrivals, 'request') as Promise<[Hold]>
      const sentAt = performance.now()
      const pending = send(`${url}${CHAT}`, { body: chat('hold on') })
      const [hold] = await arrived
      // The answer goes only once the provider has held it this long: the upstream wait began before the
      // request arrived and ends after the release, whatever else the machine is doing.
      await sleep(HOLD_MS)
      const heldMs = performance.now() - hold.arrivedAt
      hold.release()
      const res = await pending
      const elapsedMs = performance.now() - sentAt
      expect(res.status).toBe(200)
      const timing = serverTimingOf(res.headers)
      expect(timing.upstream).toBeGreaterThanOrEqual(heldMs - ROUNDING_MS)
      expect(timing.gateway).toBeGreaterThanOrEqual(0)
      // Two stretches of the request's time in the gateway, apart: together no longer than the client waited.
      expect(timing.gateway + timing.upstream!).toBeLessThanOrEqual(elapsedMs + 2 * ROUNDING_MS)
      expect(timing.rest).toBe('provider;dur=7')
    } finally {
      await provider.close()
    }
  })

  it('server timing: on a stream, on a cache hit without upstream, and on a gateway-made error', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start({ serverTiming: true, cache: { ttl: 600 } })
    const stream = await send(`${url}${CHAT}`, { body: chat('stream', { stream: true }) })
    expect(stream.headers['content-type']).toBe('text/event-stream')
    expect(serverTimingOf(stream.headers).upstream).toEqual(expect.any(Number))

    const miss = await send(`${url}${CHAT}`, { body: chat('cache me') })
    const hit = await send(`${url}${CHAT}`, { body: chat('cache me') })
    expect([miss.headers['cf-aig-cache-status'], hit.headers['cf-aig-cache-status']]).toEqual(['MISS', 'HIT'])
    expect(serverTimingOf(miss.headers).upstream).toEqual(expect.any(Number))
    expect(serverTimingOf(hit.headers)).toEqual({
      gateway: expect.any(Number),
      upstream: undefined,
      rest: undefined,
    })

    const refused = await send(`${url}/ai/not-a-provider/chat/completions`, { body: chat('hi') })
    expect(refused.status).toBe(400)
    expect(serverTimingOf(refused.headers)).toEqual({
      gateway: expect.any(Number),
      upstream: undefined,
      rest: undefined,
    })
    expect(mock.calls).toHaveLength(2)
  })
}
