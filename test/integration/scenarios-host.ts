import { gzipSync } from 'node:zlib'
import { expect, it } from 'vitest'
import { send } from '../helpers/http.js'
import { chat, type World } from './scenarios.js'

const BROKEN = '{"model": "openai/gpt-4o-mini", "messages": ['

/** An answer with its per-request ids taken out, so answers to two requests can be compared whole. */
function comparable(res: { status: number; headers: Record<string, string>; text: string }) {
  return {
    status: res.status,
    contentType: res.headers['content-type'],
    body: JSON.parse(res.text) as unknown,
  }
}

/** Methods the gateway refuses and host body parsers in front of it: the same table for every framework. */
export function hostScenarios(world: World): void {
  it('methods: compat and the universal endpoint answer another method with 405, code 2119 and allow: POST', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start()
    for (const [method, path] of [
      ['GET', '/ai/compat/chat/completions'],
      ['GET', '/ai/compat/embeddings'],
      ['PUT', '/ai/v1/acct-1/default/compat/chat/completions'],
      ['DELETE', '/ai/compat/embeddings'],
    ] as const) {
      const res = await send(`${url}${path}`, { method })
      expect(res.status, `${method} ${path}`).toBe(405)
      expect(res.headers.allow).toBe('POST')
      expect(res.headers['content-type']).toBe('application/json')
      // Compat errors come in OpenAI's shape, which the OpenAI SDKs read.
      expect(res.json()).toMatchObject({
        error: { code: 2119, message: expect.stringContaining('accepts POST') },
        name: 'AiGatewayError',
        httpCode: 405,
      })
    }
    const universal = await send(`${url}/ai/v1/acct-1/default`, { method: 'GET' })
    expect(universal.status).toBe(405)
    expect(universal.headers.allow).toBe('POST')
    expect(universal.json()).toMatchObject({ error: [{ code: 2119 }], internalCode: 2119 })
    const head = await send(`${url}/ai/compat/chat/completions`, { method: 'HEAD' })
    expect([head.status, head.headers.allow, head.text]).toEqual([405, 'POST', ''])
    expect(mock.calls).toHaveLength(0)
  })

  it('methods: passthrough takes any method, and the bare mount root stays the host’s', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start()
    const models = await send(`${url}/ai/openai/models`)
    expect(models.status).toBe(200)
    expect(mock.calls[0]?.method).toBe('GET')
    const root = await send(`${url}/ai/`, { method: 'GET' })
    expect(root.text).toMatch(/^host:/)
  })

  it('bodies: JSON nested 100,000 deep is refused on compat (2112) and universal (2114), and forwarded on passthrough', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start({ cache: { ttl: 60 } })
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`
    const compat = await send(`${url}/ai/compat/chat/completions`, {
      body: `{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"x":${deep}}`,
    })
    expect([compat.status, compat.json()]).toMatchObject([400, { error: { code: 2112 } }])
    const universal = await send(`${url}/ai`, {
      body: `[{"provider":"openai","endpoint":"chat/completions","headers":{},"query":${deep}}]`,
    })
    expect([universal.status, universal.json()]).toMatchObject([400, { error: [{ code: 2114 }] }])
    expect(mock.calls).toHaveLength(0)
    // The provider judges what passes through; the cache keys it by its bytes.
    const body = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"x":${deep}}`
    const passthrough = await send(`${url}/ai/openai/chat/completions`, { body })
    expect(passthrough.status).toBe(200)
    expect(mock.calls[0]?.body).toBe(body)
  })

  it('host parser: broken JSON gets the answer the gateway gives without a parser, on compat and universal', async () => {
    const { mock } = world
    mock.reset()
    const plain = await world.start({}, { bodyParser: false })
    const parsed = await world.start({}, { bodyParser: true })
    for (const path of ['/ai/compat/chat/completions', '/ai/compat/embeddings', '/ai']) {
      const without = await send(`${plain}${path}`, { body: BROKEN })
      const behind = await send(`${parsed}${path}`, { body: BROKEN })
      expect(comparable(behind), path).toEqual(comparable(without))
      expect(behind.status).toBe(400)
      expect(behind.headers['cf-aig-request-id']).toEqual(expect.any(String))
    }
    const compat = await send(`${parsed}/ai/compat/chat/completions`, { body: BROKEN })
    expect(compat.json()).toMatchObject({ error: { code: 2112 }, internalCode: 2112 })
    const universal = await send(`${parsed}/ai`, { body: BROKEN })
    expect(universal.json()).toMatchObject({ error: [{ code: 2114 }], internalCode: 2114 })
    expect(mock.calls).toHaveLength(0)
  })

  it('host parser: broken JSON on passthrough is forwarded byte for byte, as without a parser', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start({}, { bodyParser: true })
    const res = await send(`${url}/ai/openai/chat/completions`, { body: BROKEN })
    // The provider judges the body: the mock refuses what is not JSON, as real providers do.
    expect(res.status).toBe(400)
    expect(res.text).not.toContain('AiGatewayError')
    expect(mock.calls[0]?.body).toBe(BROKEN)
  })

  it('host parser: a gzip body it inflated goes on without its content-encoding', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start({}, { bodyParser: true })
    const body = chat('zipped')
    const res = await send(`${url}/ai/openai/chat/completions`, {
      body: gzipSync(JSON.stringify(body)),
      headers: { 'content-encoding': 'gzip' },
    })
    const call = mock.calls[0]!
    // A parser that read the body (Express's, Koa's) leaves inflated bytes: the header must go with it. Fastify
    // reads the mount's bodies itself and forwards the bytes as they came, coded (the mock reads no gzip).
    if (call.headers['content-encoding'] === undefined) {
      expect(call.json).toEqual(body)
      expect(res.status).toBe(200)
    } else expect([call.headers['content-encoding'], call.json]).toEqual(['gzip', undefined])
  })

  it('host parser: a body it cannot inflate gets the gateway’s 400 (code 2112), never the framework’s page', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start({}, { bodyParser: true })
    const zipped = gzipSync(JSON.stringify(chat('cut short')))
    for (const [encoding, body] of [
      ['gzip', zipped.subarray(0, zipped.length - 8)],
      ['br', Buffer.from('not brotli at all')],
      ['zstd2', Buffer.from('{}')],
    ] as const) {
      const res = await send(`${url}/ai/compat/chat/completions`, {
        body,
        headers: { 'content-encoding': encoding },
      })
      expect(res.status, encoding).toBe(400)
      expect(res.json(), encoding).toMatchObject({ error: { code: 2112 }, name: 'AiGatewayError' })
    }
    expect(mock.calls).toHaveLength(0)
  })

  it('host parser: the refusal is logged and goes through onError like any gateway error', async () => {
    const seen: number[] = []
    const url = await world.start(
      {
        onError: (error) => {
          seen.push(error.code)
        },
      },
      { bodyParser: true },
    )
    const res = await send(`${url}/ai/compat/chat/completions`, { body: BROKEN })
    expect(seen).toEqual([2112])
    await world.gateway!.flushLogs()
    const record = await world.gateway!.logs!.get(res.headers['cf-aig-log-id']!)
    expect(record).toMatchObject({ statusCode: 400, errorCode: 2112, outcome: 'gateway_error' })
  })

  it('host parser: a body over the parser’s limit gets the gateway’s coded error or goes through, never the framework’s page', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start({}, { bodyParser: true })
    // Over express.json()'s 100 kB and @koa/bodyparser's 1 MB; Fastify's parsers never run on the mount.
    const big = JSON.stringify(chat('x'.repeat(2 * 1024 * 1024)))
    const res = await send(`${url}/ai/openai/chat/completions`, { body: big })
    expect(res.headers['content-type']).toBe('application/json')
    if (res.status === 413) {
      expect(res.json()).toMatchObject({ error: [{ code: 2101 }], name: 'AiGatewayError', httpCode: 413 })
      expect(res.json()).toMatchObject({ message: expect.stringContaining("host's body parser allows") })
      expect(mock.calls).toHaveLength(0)
    } else {
      expect(res.status).toBe(200)
      expect(mock.calls[0]?.body).toBe(big)
    }
  })

  it('host reader: a body the host read and kept nowhere the gateway looks is a 500 with code 2110 saying so, never sent on empty', async () => {
    const { mock } = world
    mock.reset()
    const url = await world.start({}, { bodyParser: false, bodyReader: true })
    for (const [path, body] of [
      ['/ai/openai/chat/completions', chat('lost')],
      ['/ai/compat/chat/completions', chat('lost', { model: 'openai/gpt-4o-mini' })],
    ] as const) {
      const res = await send(`${url}${path}`, { body })
      expect(res.status, path).toBe(500)
      expect(res.text, path).toContain('2110')
      expect(res.text, path).toContain('read before the gateway')
    }
    // A bodyless request is not refused: there was nothing to lose.
    expect((await send(`${url}/ai/openai/models`)).status).toBe(200)
    expect(mock.calls.map((call) => call.path)).toEqual(['/v1/models'])
  })

  it('host parser: broken JSON outside the mount is left to the host’s own error handling', async () => {
    const url = await world.start({}, { bodyParser: true })
    const res = await send(`${url}/elsewhere`, { body: BROKEN })
    expect(res.text).not.toContain('AiGatewayError')
    expect(res.headers['cf-aig-request-id']).toBeUndefined()
  })
}
