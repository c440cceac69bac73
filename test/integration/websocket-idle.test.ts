import { createServer, type Server, type ServerResponse } from 'node:http'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { attachWebSockets, createGateway } from '../../src/index.js'
import { startFaultServer } from '../helpers/fault-server.js'
import { closed, connect, openaiStep } from './websocket-helpers.js'

/**
 * A universal socket's idle clock, on a fake clock. In a file of its own: faking `setTimeout` while the
 * gateway calls a provider leaves undici's shared timer on the fake clock for the rest of the file.
 */
describe('WebSocket idle clock', () => {
  it('counts a universal socket idle from its last answer, not from the message that asked for it', async () => {
    let held: ServerResponse | undefined
    let arrived!: () => void
    const arrival = new Promise<void>((resolve) => {
      arrived = resolve
    })
    const provider = await startFaultServer((request, res) => {
      if (request.text.includes('"slow"')) {
        held = res
        arrived()
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end('{"ok":true}')
    })
    onTestFinished(() => provider.close())
    const gateway = createGateway({
      providers: { openai: { apiKey: 'sk-stored', baseURL: `${provider.url}/v1` } },
      websockets: { idleTimeoutMs: 60_000 },
    })
    const server: Server = createServer((_req, res) => res.writeHead(404).end())
    attachWebSockets(server, gateway, { prefix: '/ai' })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    onTestFinished(async () => {
      await gateway.close()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    })
    const { port } = server.address() as { port: number }
    // The socket's clocks run on a fake clock; the sockets and the provider on real time.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    onTestFinished(() => {
      vi.useRealTimers()
    })
    const { socket, messages } = await connect(`ws://127.0.0.1:${port}/ai`)
    const answered = (eventId: string) =>
      messages.next((m) => (m.metadata as { eventId?: string } | undefined)?.eventId === eventId)
    socket.send(
      JSON.stringify({ type: 'universal.create', request: { eventId: 'slow', ...openaiStep('slow') } }),
    )
    await arrival
    // Past the idle time with the request in flight: not idle. Its answer comes just before the next check.
    vi.advanceTimersByTime(60_000)
    vi.advanceTimersByTime(59_000)
    held!.writeHead(200, { 'content-type': 'application/json' })
    held!.end('{"ok":"slow"}')
    await answered('slow')
    vi.advanceTimersByTime(1_000)
    socket.send(
      JSON.stringify({ type: 'universal.create', request: { eventId: 'next', ...openaiStep('next') } }),
    )
    const outcome = await Promise.race([
      closed(socket).then(({ code }) => `closed with ${code}`),
      answered('next').then(({ type }) => String(type)),
    ])
    expect(outcome).toBe('universal.created')
    socket.close()
    await closed(socket)
  })
})
