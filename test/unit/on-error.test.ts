import { describe, expect, it } from 'vitest'
import {
  createGateway,
  type ErrorHook,
  GatewayError,
  GatewayOptionsError,
  type GatewayRequest,
  type Step,
} from '../../src/index.js'

// A host step that sets a response header and then fails the request the way a built-in step would.
const refuse: Step = async (ctx) => {
  ctx.responseHeaders['x-trace'] = 'abc'
  throw new GatewayError('RATE_LIMITED', 'too many', { headers: { 'retry-after': '5' } })
}

const answer: Step = async (ctx) => {
  ctx.response = { status: 200, headers: { 'content-type': 'text/plain' }, body: 'ok' }
}

function request(): GatewayRequest {
  return {
    method: 'POST',
    path: '/openai/chat/completions',
    search: '',
    headers: { 'content-type': 'application/json' },
    signal: new AbortController().signal,
    body: '{}',
  }
}

function gatewayWith(onError: ErrorHook | undefined, steps: Step[] = [refuse]) {
  const gateway = createGateway({ steps, logs: false, ...(onError && { onError }) })
  const errors: unknown[] = []
  gateway.events.on('error', (error) => errors.push(error))
  return { gateway, errors }
}

describe('onError', () => {
  it('replaces the rendered response with the one it returns, gateway headers added', async () => {
    const seen: Array<[string, number, string]> = []
    const { gateway, errors } = gatewayWith((error, ctx) => {
      seen.push([error.key, error.code, ctx.id])
      return { status: 503, headers: { 'content-type': 'text/plain' }, body: 'busy, try later' }
    })
    const response = await gateway.handle(request())
    expect(response).toMatchObject({
      status: 503,
      headers: { 'content-type': 'text/plain', 'x-trace': 'abc' },
      body: 'busy, try later',
    })
    expect(seen).toEqual([['RATE_LIMITED', 2003, expect.any(String)]])
    expect(errors).toEqual([])
  })

  it('does not add the gateway headers to an object the hook keeps', async () => {
    const shared = { status: 503, headers: { 'content-type': 'text/plain' }, body: 'busy' }
    const { gateway } = gatewayWith(() => shared)
    await gateway.handle(request())
    expect(shared.headers).toEqual({ 'content-type': 'text/plain' })
  })

  it('keeps the rendered response when it returns nothing, sync or async', async () => {
    const plain = await gatewayWith(undefined).gateway.handle(request())
    for (const hook of [() => {}, async () => undefined] satisfies ErrorHook[]) {
      const response = await gatewayWith(hook).gateway.handle(request())
      expect([response?.status, response?.body]).toEqual([plain?.status, plain?.body])
      expect(Object.keys(response?.headers ?? {}).sort()).toEqual(Object.keys(plain?.headers ?? {}).sort())
      expect(response).toMatchObject({ status: 429, headers: { 'retry-after': '5', 'x-trace': 'abc' } })
      expect(JSON.parse(response?.body as string)).toMatchObject({ internalCode: 2003 })
    }
  })

  it('reports a throwing hook as error and sends the rendered response', async () => {
    const boom = new Error('hook failed')
    const { gateway, errors } = gatewayWith(async () => {
      throw boom
    })
    const response = await gateway.handle(request())
    expect(response?.status).toBe(429)
    expect(JSON.parse(response?.body as string)).toMatchObject({ internalCode: 2003 })
    expect(errors).toEqual([boom])
  })

  it('reports a return that is not a response and sends the rendered one', async () => {
    const { gateway, errors } = gatewayWith(() => ({ status: 'teapot' }) as never)
    const response = await gateway.handle(request())
    expect(response?.status).toBe(429)
    expect(errors).toEqual([expect.any(TypeError)])
  })

  it('is not called when the request succeeds', async () => {
    let calls = 0
    const { gateway } = gatewayWith(() => {
      calls++
    }, [answer])
    expect((await gateway.handle(request()))?.status).toBe(200)
    expect(calls).toBe(0)
  })

  it('must be a function', () => {
    expect(() => createGateway({ onError: 'log' as never })).toThrow(GatewayOptionsError)
    expect(() => createGateway({ onError: 'log' as never })).toThrow(/onError: expected a function/)
  })
})
