import { Readable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RequestEndEvent } from '../../src/events.js'
import { createGateway, type GatewayOptions, type GatewayRequest, type Step } from '../../src/index.js'
import { createMockProvider, type MockProvider } from '../../src/testing/index.js'

let mock: MockProvider
beforeAll(async () => {
  mock = await createMockProvider()
})
afterAll(() => mock.close())

function gatewayFor(options: GatewayOptions = {}) {
  return createGateway({
    providers: { openai: { apiKey: 'sk-stored', baseURL: `${mock.url}/v1` } },
    ...options,
  })
}

function chatRequest(body: object, extra: Partial<GatewayRequest> = {}): GatewayRequest {
  return {
    method: 'POST',
    path: '/openai/chat/completions',
    search: '',
    headers: { 'content-type': 'application/json' },
    signal: new AbortController().signal,
    body: JSON.stringify(body),
    ...extra,
  }
}

const hello = { model: 'm', messages: [{ role: 'user', content: 'hello' }] }

async function drain(body: unknown): Promise<string> {
  if (!(body instanceof Readable)) return String(body)
  let text = ''
  for await (const chunk of body) text += chunk
  return text
}

describe('createGateway().handle()', () => {
  it('resolves undefined for paths that are not the gateway’s', async () => {
    const gateway = gatewayFor()
    expect(await gateway.handle(chatRequest(hello, { method: 'GET', path: '/' }))).toBeUndefined()
    await gateway.close()
  })

  it('emits request:start, upstream:request, upstream:response and request:end in order, with sizes', async () => {
    const gateway = gatewayFor()
    const seen: string[] = []
    let end: RequestEndEvent | undefined
    gateway.events.on('request:start', (e) => seen.push(`start ${e.surface}`))
    gateway.events.on('upstream:request', (e) => seen.push(`upstream ${e.method} ${e.url} #${e.attempt}`))
    gateway.events.on('upstream:response', (e) => seen.push(`response ${e.status}`))
    gateway.events.on('request:end', (e) => {
      seen.push('end')
      end = e
    })
    const body = JSON.stringify(hello)
    const response = await gateway.handle(chatRequest(hello, { search: '?key=secret' }))
    expect(seen).toEqual([
      'start provider',
      `upstream POST ${mock.url}/v1/chat/completions #1`,
      'response 200',
      'end',
    ])
    expect(end).toMatchObject({ status: 200, provider: 'openai', outcome: 'completed', bytesIn: body.length })
    expect(end?.bytesOut).toBe(Buffer.byteLength(String(response?.body)))
    await gateway.close()
  })

  it('emits request:end for a stream only once it has been read to the end', async () => {
    const gateway = gatewayFor()
    const ends: RequestEndEvent[] = []
    gateway.events.on('request:end', (e) => ends.push(e))
    const response = await gateway.handle(chatRequest({ ...hello, stream: true }))
    expect(ends).toHaveLength(0)
    const text = await drain(response?.body)
    await new Promise((resolve) => setImmediate(resolve))
    expect(ends).toHaveLength(1)
    expect(ends[0]).toMatchObject({ outcome: 'completed', bytesOut: Buffer.byteLength(text) })
    await gateway.close()
  })

  it('reports a throwing listener as an error event and still answers', async () => {
    const gateway = gatewayFor()
    const errors: unknown[] = []
    gateway.events.on('request:start', () => {
      throw new Error('listener bug')
    })
    gateway.events.on('error', (error) => errors.push(error))
    const response = await gateway.handle(chatRequest(hello))
    expect(response?.status).toBe(200)
    expect(errors).toEqual([expect.objectContaining({ message: 'listener bug' })])
    await gateway.close()
  })

  it('runs the next listener after one that throws', async () => {
    const gateway = gatewayFor()
    const seen: string[] = []
    gateway.events.on('request:start', () => {
      throw new Error('listener bug')
    })
    gateway.events.on('request:start', (e) => seen.push(e.surface))
    gateway.events.on('error', () => {})
    await gateway.handle(chatRequest(hello))
    expect(seen).toEqual(['provider'])
    await gateway.close()
  })

  it('calls a once listener for the first event only, then drops it', async () => {
    const gateway = gatewayFor()
    let starts = 0
    gateway.events.once('request:start', () => starts++)
    await gateway.handle(chatRequest(hello))
    await gateway.handle(chatRequest(hello))
    expect(starts).toBe(1)
    expect(gateway.events.listenerCount('request:start')).toBe(0)
    await gateway.close()
  })

  it('calls a once error listener for the first error only', async () => {
    const gateway = gatewayFor()
    gateway.events.on('request:start', () => {
      throw new Error('listener bug')
    })
    const errors: unknown[] = []
    gateway.events.once('error', (error) => errors.push(error))
    await gateway.handle(chatRequest(hello))
    await gateway.handle(chatRequest(hello))
    expect(errors).toHaveLength(1)
    await gateway.close()
  })

  it('calls a listener with the context it was registered with', async () => {
    const gateway = gatewayFor()
    const context = { name: 'dashboard' }
    const seen: unknown[] = []
    gateway.events.on(
      'request:start',
      function (this: unknown) {
        seen.push(this)
      },
      context,
    )
    gateway.events.on(
      'error',
      function (this: unknown) {
        seen.push(this)
      },
      context,
    )
    gateway.events.on('request:end', () => {
      throw new Error('listener bug')
    })
    await gateway.handle(chatRequest(hello))
    expect(seen).toEqual([context, context])
    await gateway.close()
  })

  it('runs host steps before the built-in ones, or where a function puts them', async () => {
    const trace: string[] = []
    const tag: Step = async function tag(ctx, next) {
      trace.push(`tag sees ${ctx.state.targets ? 'targets' : 'no targets'}`)
      await next()
      if (ctx.response) ctx.response.headers['x-tagged'] = 'yes'
    }
    const first = gatewayFor({ steps: [tag] })
    const before = await first.handle(chatRequest(hello))
    const second = gatewayFor({
      steps: (builtIn) => {
        const at = builtIn.findIndex((step) => step.name === 'forward')
        return [...builtIn.slice(0, at), tag, ...builtIn.slice(at)]
      },
    })
    const beforeForward = await second.handle(chatRequest(hello))
    expect(trace).toEqual(['tag sees no targets', 'tag sees targets'])
    expect([before?.headers['x-tagged'], beforeForward?.headers['x-tagged']]).toEqual(['yes', 'yes'])
    await Promise.all([first.close(), second.close()])
  })

  it('lets a step answer without calling the provider', async () => {
    mock.reset()
    const deny: Step = async (ctx) => {
      ctx.response = { status: 403, headers: {}, body: 'no' }
    }
    const gateway = gatewayFor({ steps: [deny] })
    const response = await gateway.handle(chatRequest(hello))
    expect(response?.status).toBe(403)
    expect(response?.headers['cf-aig-request-id']).toBeDefined()
    expect(mock.calls).toHaveLength(0)
    await gateway.close()
  })

  it('answers 500 with code 2110 for a bug in a step and emits it as error', async () => {
    const errors: unknown[] = []
    const buggy: Step = async () => {
      throw new TypeError('undefined is not a function')
    }
    const gateway = gatewayFor({ steps: [buggy] })
    gateway.events.on('error', (error) => errors.push(error))
    const response = await gateway.handle(chatRequest(hello))
    expect(response?.status).toBe(500)
    expect(JSON.parse(String(response?.body))).toMatchObject({ error: [{ code: 2110 }] })
    expect(String(response?.body)).not.toContain('undefined is not a function')
    expect(errors).toEqual([expect.any(TypeError)])
    await gateway.close()
  })

  it('answers 500 with code 2111 when a step calls next() twice, calling the provider once', async () => {
    mock.reset()
    const twice: Step = async function twice(_ctx, next) {
      await next()
      await next()
    }
    const gateway = gatewayFor({ steps: [twice] })
    gateway.events.on('error', () => {})
    const response = await gateway.handle(chatRequest(hello))
    expect(response?.status).toBe(500)
    expect(JSON.parse(String(response?.body))).toMatchObject({ error: [{ code: 2111 }] })
    expect(mock.calls).toHaveLength(1)
    await gateway.close()
  })

  it('closes once: a second close(), and two at once, resolve with the first', async () => {
    const gateway = gatewayFor({ metrics: true })
    // An answered request leaves a kept-alive connection in the gateway's own dispatcher.
    expect((await gateway.handle(chatRequest(hello)))?.status).toBe(200)
    await Promise.all([gateway.close(), gateway.close()])
    await expect(gateway.close()).resolves.toBeUndefined()
  })

  it('caps a body handed over whole, too', async () => {
    const gateway = gatewayFor({ maxBodyBytes: 10 })
    const response = await gateway.handle(chatRequest(hello))
    expect(response?.status).toBe(413)
    // The connection stays open so the Node bridge can drain what the client is still sending.
    expect(response?.headers.connection).toBeUndefined()
    await gateway.close()
  })
})
