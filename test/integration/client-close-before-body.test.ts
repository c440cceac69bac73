import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { type AddressInfo, connect } from 'node:net'
import { bodyParser } from '@koa/bodyparser'
import express from 'express'
import Fastify from 'fastify'
import Koa from 'koa'
import { afterEach, describe, expect, it } from 'vitest'
import { aiGateway as expressGateway } from '../../adapters/express.js'
import { aiGateway as fastifyGateway } from '../../adapters/fastify.js'
import { aiGateway as koaGateway } from '../../adapters/koa.js'
import { createGateway, type Gateway, type GatewayOptions, type RequestEndEvent } from '../../src/index.js'
import { closeServer, serverUrl } from '../helpers/http.js'
import { observedLogStore } from '../helpers/log-store.js'

// A client that leaves while its request waits, before the gateway has read the body or before the request
// reaches the gateway at all, must still have its request ended: answered as aborted, with its
// `request:end` and its log record, and without a call to the provider.

interface Mounted {
  readonly port: number
  close(): Promise<void>
}

/**
 * Mounts the gateway at /ai. With `hostWait`, the host reads the body with its own parser (Fastify's plugin
 * reads it itself) and then holds each request until its client has left, calling `hostWait` once it holds
 * one: the request reaches the gateway with its client gone.
 */
type Mount = (gateway: Gateway, hostWait?: () => void) => Promise<Mounted>

async function listening(server: Server): Promise<number> {
  if (!server.listening) await once(server, 'listening')
  return (server.address() as AddressInfo).port
}

const MOUNTS: Record<string, Mount> = {
  async fastify(gateway, hostWait) {
    const app = Fastify()
    if (hostWait) {
      app.addHook('onRequest', (_request, reply, done) => {
        reply.raw.once('close', () => done())
        hostWait()
      })
    }
    await app.register(fastifyGateway, { prefix: '/ai', gateway })
    await app.listen({ port: 0, host: '127.0.0.1' })
    return { port: await listening(app.server), close: () => app.close() }
  },
  async express(gateway, hostWait) {
    const app = express()
    if (hostWait) {
      app.use(express.json())
      app.use((_req, res, next) => {
        res.once('close', () => next())
        hostWait()
      })
    }
    app.use('/ai', expressGateway(gateway))
    const server = app.listen(0, '127.0.0.1')
    return { port: await listening(server), close: () => closeServer(server) }
  },
  async koa(gateway, hostWait) {
    const app = new Koa()
    if (hostWait) {
      app.use(bodyParser())
      app.use(async (ctx, next) => {
        const left = once(ctx.res, 'close')
        hostWait()
        await left
        await next()
      })
    }
    app.use(koaGateway(gateway, { prefix: '/ai' }))
    const server = app.listen(0, '127.0.0.1')
    return { port: await listening(server), close: () => closeServer(server) }
  },
}

const BODY = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })

/** A promise and the function that resolves it. */
function signalled(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((done) => {
    resolve = done
  })
  return { promise, resolve }
}

describe('a client that leaves while its request waits', () => {
  const cleanup: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const close of cleanup.splice(0).reverse()) await close()
  })

  /** A gateway whose provider counts the calls it gets, with its log store and its `request:end` event. */
  async function start(options: Partial<GatewayOptions> = {}) {
    let providerCalls = 0
    const provider = createServer((_req, res) => {
      providerCalls++
      res.writeHead(500).end()
    })
    provider.listen(0, '127.0.0.1')
    await listening(provider)
    cleanup.push(() => closeServer(provider))
    const store = observedLogStore()
    const gateway = createGateway({
      providers: { openai: { apiKey: 'sk-test', baseURL: `${serverUrl(provider)}/v1` } },
      logs: { store },
      ...options,
    })
    const ended = new Promise<RequestEndEvent>((resolve) => gateway.events.once('request:end', resolve))
    return { gateway, store, ended, providerCalls: () => providerCalls }
  }

  /** Sends the whole request, headers and body, and leaves once `waiting` resolves. */
  async function sendAndLeave(port: number, waiting: Promise<void>): Promise<void> {
    const socket = connect(port, '127.0.0.1')
    await once(socket, 'connect')
    socket.write(
      'POST /ai/openai/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n' +
        `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(BODY)}\r\n\r\n${BODY}`,
    )
    await waiting
    socket.destroy()
  }

  /** The request ended as aborted, its record says so, and the provider was never called. */
  async function expectAborted({ gateway, store, ended, providerCalls }: Awaited<ReturnType<typeof start>>) {
    const end = await ended
    expect(end).toMatchObject({ status: 499, outcome: 'aborted' })
    await gateway.flushLogs()
    const record = await store.written(end.id)
    expect(record).toMatchObject({ statusCode: 499, outcome: 'aborted', success: false })
    expect(providerCalls()).toBe(0)
  }

  for (const [name, mount] of Object.entries(MOUNTS)) {
    it(`${name}: while a step before the body read waits on the host`, async () => {
      // `identify` stands for any wait before the body is read (a host's lookup): it answers once the
      // client has left.
      const identifying = signalled()
      const started = await start({
        identify: (_host, request) => {
          identifying.resolve()
          const { signal } = request
          return new Promise((resolve) => {
            if (signal.aborted) resolve(undefined)
            else signal.addEventListener('abort', () => resolve(undefined), { once: true })
          })
        },
      })
      const app = await mount(started.gateway)
      cleanup.push(() => app.close())
      await sendAndLeave(app.port, identifying.promise)
      await expectAborted(started)
    })

    it(`${name}: while the host holds the request before the gateway`, async () => {
      const holding = signalled()
      const started = await start()
      const app = await mount(started.gateway, holding.resolve)
      cleanup.push(() => app.close())
      await sendAndLeave(app.port, holding.promise)
      await expectAborted(started)
    })
  }
})
