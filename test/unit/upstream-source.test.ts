import { once } from 'node:events'
import type { ServerResponse } from 'node:http'
import { PassThrough } from 'node:stream'
import { Agent, type Dispatcher, MockAgent } from 'undici'
import { afterAll, describe, expect, it } from 'vitest'
import { readAhead } from '../../src/upstream/body.js'
import { AttemptAbort } from '../../src/upstream/call.js'
import { dispatchUpstream, type UpstreamSource } from '../../src/upstream/source.js'
import {
  type FaultServer,
  pump,
  type RawFaultServer,
  sendHeaders,
  startFaultServer,
  startRawServer,
  writeAsync,
} from '../helpers/fault-server.js'
import { trickle } from '../helpers/gc.js'

const agent = new Agent()
const servers: (FaultServer | RawFaultServer)[] = []
afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()))
  await agent.close()
})

async function serve(handler: Parameters<typeof startFaultServer>[0]): Promise<FaultServer> {
  const server = await startFaultServer(handler)
  servers.push(server)
  return server
}

/** An answer that begins (headers and one event) and then sends nothing more. */
async function oneEventThenSilence(_request: unknown, res: ServerResponse): Promise<void> {
  sendHeaders(res, 200, { 'content-type': 'text/event-stream' })
  await writeAsync(res, 'data: 1\n\n')
}

/**
 * A server that sends a chunked answer's head, then `body` in one write once `release` is called: one read
 * of the socket for the client, while its reader is already flowing.
 */
async function afterHeaders(body: string): Promise<{ server: RawFaultServer; release: () => void }> {
  let release!: () => void
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  const server = await startRawServer(async (connection) => {
    await connection.request
    connection.socket.write(
      'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n',
    )
    await released
    connection.socket.write(body)
  })
  servers.push(server)
  return { server, release }
}

function call(origin: string, signal = new AttemptAbort()) {
  return dispatchUpstream(agent, { origin, path: '/v1/x', method: 'POST', body: '{}' }, signal)
}

/** Every chunk and how the body ended: `end`, or `error` with the error. */
function readAll(body: UpstreamSource): Promise<{ bytes: Buffer; ended: 'end' | Error }> {
  const chunks: Buffer[] = []
  body.on('data', (chunk) => chunks.push(chunk))
  const ended = new Promise<'end' | Error>((resolve) => {
    body.once('end', () => resolve('end'))
    body.once('error', resolve)
  })
  body.resume()
  return ended.then((how) => ({ bytes: Buffer.concat(chunks), ended: how }))
}

describe('dispatchUpstream', () => {
  it('hands the body on whole and in order, then ends and closes', async () => {
    const pieces = Array.from({ length: 50 }, (_, i) => `piece ${i};`)
    const server = await serve(async (_request, res) => {
      sendHeaders(res, 200, { 'content-type': 'text/plain' })
      for (const piece of pieces) await writeAsync(res, piece)
      res.end()
    })
    const response = await call(server.origin)
    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toBe('text/plain')
    const closed = once(response.body, 'close')
    const { bytes, ended } = await readAll(response.body)
    expect([bytes.toString(), ended]).toEqual([pieces.join(''), 'end'])
    await closed
    expect([response.body.readableEnded, response.body.closed]).toEqual([true, true])
  })

  it('sends nothing on while paused, the end included, and stops reading the socket past its buffer', async () => {
    const total = 4 * 1024 * 1024
    let written = 0
    const server = await serve((_request, res) => {
      sendHeaders(res, 200, { 'content-type': 'application/octet-stream' })
      void pump(res, () => Buffer.alloc(16 * 1024, 7), { total, onWrite: (bytes) => (written = bytes) })
    })
    const { body } = await call(server.origin)
    let seen = 0
    body.on('data', (chunk) => {
      seen += chunk.length
    })
    let ended = false
    body.once('end', () => (ended = true))
    // Paused from the start: the server fills the socket's buffers and undici's, then has to wait.
    const { socket } = await server.request(0)
    await new Promise<void>((resolve) => {
      const check = () => (socket.writableNeedDrain ? resolve() : setImmediate(check))
      check()
    })
    expect([seen, ended]).toEqual([0, false])
    expect(written).toBeLessThan(total)
    const { bytes, ended: how } = await readAll(body)
    expect([how, ended, bytes.length]).toEqual(['end', true, total])
  })

  it('keeps the end of a body that came whole with its headers until it is resumed', async () => {
    const server = await startRawServer(async (connection) => {
      await connection.request
      connection.socket.write('HTTP/1.1 302 Found\r\nlocation: /elsewhere\r\ncontent-length: 2\r\n\r\nok')
    })
    servers.push(server)
    const response = await call(server.origin)
    expect([response.statusCode, response.body.readableEnded]).toEqual([302, false])
    expect(await readAll(response.body)).toEqual({ bytes: Buffer.from('ok'), ended: 'end' })
  })

  it('works with a dispatcher a host gives: a MockAgent, and an Agent with an interceptor', async () => {
    const mock = new MockAgent()
    mock.disableNetConnect()
    mock.get('http://provider.test').intercept({ path: '/v1/x', method: 'POST' }).reply(200, 'mocked')
    const mocked = await dispatchUpstream(
      mock,
      { origin: 'http://provider.test', path: '/v1/x', method: 'POST', body: '{}' },
      new AttemptAbort(),
    )
    expect((await readAll(mocked.body)).bytes.toString()).toBe('mocked')
    await mock.close()

    const server = await serve((_request, res) => void res.end('through'))
    let intercepted = 0
    const composed = agent.compose((dispatch) => (options, handler) => {
      intercepted++
      return dispatch(options, handler)
    })
    const { body } = await dispatchUpstream(
      composed,
      { origin: server.origin, path: '/v1/x', method: 'POST', body: '{}' },
      new AttemptAbort(),
    )
    expect([(await readAll(body)).bytes.toString(), intercepted]).toEqual(['through', 1])
  })

  it('resolves with the answer after an informational one', async () => {
    const server = await startRawServer(async (connection) => {
      await connection.request
      connection.socket.write('HTTP/1.1 103 Early Hints\r\nlink: </a>; rel=preload\r\n\r\n')
      connection.socket.end('HTTP/1.1 201 Created\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok')
    })
    servers.push(server)
    const response = await call(server.origin)
    expect(response.statusCode).toBe(201)
    expect((await readAll(response.body)).bytes.toString()).toBe('ok')
  })

  it('fails with undici’s error when the connection resets mid-body, after the bytes that came', async () => {
    const server = await startRawServer(async (connection) => {
      await connection.request
      connection.socket.write(
        'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n6\r\nhello\n\r\n',
        () => connection.socket.resetAndDestroy(),
      )
    })
    servers.push(server)
    const { body } = await call(server.origin)
    const { bytes, ended } = await readAll(body)
    expect(bytes.toString()).toBe('hello\n')
    expect(ended).toBeInstanceOf(Error)
    // undici's socket error, or the reset itself, by Node version.
    expect((ended as Error & { code?: string }).code).toMatch(/^(?:UND_ERR_SOCKET|ECONNRESET)$/)
  })

  it('hands out what one read of the socket brought as one chunk, then the end that came with it', async () => {
    const { server, release } = await afterHeaders(
      '5\r\none\n\n\r\n5\r\ntwo\n\n\r\n7\r\nthree\n\n\r\n0\r\n\r\n',
    )
    const { body } = await call(server.origin)
    const chunks: string[] = []
    body.on('data', (chunk) => chunks.push(chunk.toString()))
    const ended = once(body, 'end')
    body.resume()
    release()
    await ended
    expect(chunks).toEqual(['one\n\ntwo\n\nthree\n\n'])
  })

  it('hands out what came before undici failed to parse the rest of the read, then fails', async () => {
    // A chunk, then a chunk size that is not hex.
    const { server, release } = await afterHeaders('6\r\nhello\n\r\nzz\r\n')
    const { body } = await call(server.origin)
    const reading = readAll(body)
    release()
    const { bytes, ended } = await reading
    expect(bytes.toString()).toBe('hello\n')
    expect(ended).toBeInstanceOf(Error)
  })

  it('hands out what came before a failure reported in the same go, as a dispatcher a host gives may', async () => {
    let handler!: Dispatcher.DispatchHandler
    const dispatcher = {
      dispatch(_options: Dispatcher.DispatchOptions, given: Dispatcher.DispatchHandler) {
        handler = given
        given.onConnect?.(() => {})
        given.onHeaders?.(200, [], () => {}, 'OK')
        return true
      },
    } as unknown as Dispatcher
    const { body } = await dispatchUpstream(
      dispatcher,
      { origin: 'http://provider.test', path: '/v1/x', method: 'POST' },
      new AttemptAbort(),
    )
    const reading = readAll(body)
    const failure = new Error('the parse failed')
    handler.onData?.(Buffer.from('hello\n'))
    handler.onError?.(failure)
    expect(await reading).toEqual({ bytes: Buffer.from('hello\n'), ended: failure })
  })

  it('keeps a failure that came before anyone listened for the first reader, and throws nothing', async () => {
    const server = await serve(oneEventThenSilence)
    const signal = new AttemptAbort()
    const { body } = await call(server.origin, signal)
    const reason = new Error('deadline')
    signal.abort(reason)
    // Past the ticks a Readable would have emitted its error in, with no listener: an uncaught 'error'.
    await new Promise((resolve) => setImmediate(resolve))
    expect((await readAll(body)).ended).toBe(reason)
  })

  it('rejects with the abort reason before the answer, and the provider sees the request dropped', async () => {
    const server = await serve(() => {})
    const signal = new AttemptAbort()
    const pending = call(server.origin, signal)
    await server.request(0)
    const reason = new Error('deadline')
    signal.abort(reason)
    await expect(pending).rejects.toBe(reason)
    await server.connectionClosed(0)
  })

  it('rejects at once for a handle aborted before the call, sending nothing', async () => {
    const server = await serve(() => {})
    const signal = new AttemptAbort()
    const reason = new Error('gone')
    signal.abort(reason)
    await expect(call(server.origin, signal)).rejects.toBe(reason)
    expect(server.requests).toHaveLength(0)
  })

  it('fails the body with the abort reason once the answer began, and cancels the call', async () => {
    const server = await serve(oneEventThenSilence)
    const signal = new AttemptAbort()
    const { body } = await call(server.origin, signal)
    const first = once(body, 'data')
    const reading = readAll(body)
    await first
    const reason = new Error('client left')
    signal.abort(reason)
    expect((await reading).ended).toBe(reason)
    await server.connectionClosed(0)
  })

  it('keeps an answer that came whole from an abort that comes before it is read', async () => {
    // undici's mock dispatcher hands over the headers, the body and the end in one go.
    const mock = new MockAgent()
    mock.disableNetConnect()
    mock.get('http://provider.test').intercept({ path: '/v1/x', method: 'POST' }).reply(200, 'whole')
    const signal = new AttemptAbort()
    const { body } = await dispatchUpstream(
      mock,
      { origin: 'http://provider.test', path: '/v1/x', method: 'POST', body: '{}' },
      signal,
    )
    // The deadline passes before anyone read the answer: it came whole, and is not failed for it.
    signal.abort(new Error('deadline'))
    expect(await readAll(body)).toEqual({ bytes: Buffer.from('whole'), ended: 'end' })
    await mock.close()
  })

  it('closes without an error when destroyed without one, and cancels the call', async () => {
    const server = await serve(oneEventThenSilence)
    const { body } = await call(server.origin)
    let failed: unknown
    body.on('error', (error) => (failed = error))
    body.destroy()
    await once(body, 'close')
    expect([failed, body.destroyed]).toEqual([undefined, true])
    await server.connectionClosed(0)
  })
})

describe('readAhead on an upstream source', () => {
  /** The listeners a reader may leave behind, by event. */
  const listeners = (body: UpstreamSource) =>
    (['data', 'end', 'error'] as const).map((event) => body.listenerCount(event))

  it('resolves with the whole answer when it is within the bytes asked, and takes its listeners off', async () => {
    const server = await serve(async (_request, res) => {
      sendHeaders(res, 200, { 'content-type': 'application/json' })
      await writeAsync(res, '{"a":')
      res.end('1}')
    })
    const { body } = await call(server.origin)
    const ahead = await readAhead(body, 1024, 4096)
    expect([Buffer.concat(ahead.chunks).toString(), ahead.size, ahead.ended]).toEqual(['{"a":1}', 7, true])
    expect(listeners(body)).toEqual([0, 0, 0])
  })

  it('stops once the bytes asked came, paused, and the rest is still read after it', async () => {
    const { server, release } = await afterHeaders('4\r\nabcd\r\n')
    const { body } = await call(server.origin)
    const reading = readAhead(body, 2, 4096)
    release()
    const ahead = await reading
    expect([Buffer.concat(ahead.chunks).toString(), ahead.ended]).toEqual(['abcd', false])
    expect(listeners(body)).toEqual([0, 0, 0])
    const rest = readAll(body)
    server.connections[0]!.socket.end('5\r\nefghi\r\n0\r\n\r\n')
    expect(await rest).toEqual({ bytes: Buffer.from('efghi'), ended: 'end' })
  })

  it('keeps an answer read a byte at a time in a few Buffers, byte for byte', async () => {
    const source = new PassThrough()
    const reading = readAhead(source, 1024 * 1024, 2 * 1024 * 1024)
    const answer = `{"content":"${'x'.repeat(10_000)}"}`
    trickle(source, answer)
    source.end()
    const ahead = await reading
    expect(ahead.chunks.length).toBeLessThan(100)
    expect([Buffer.concat(ahead.chunks).toString(), ahead.size, ahead.ended]).toEqual([
      answer,
      answer.length,
      true,
    ])
  })

  it('rejects an answer past the most bytes allowed, and destroys the source', async () => {
    const server = await serve((_request, res) => {
      sendHeaders(res, 200, { 'content-type': 'application/json' })
      res.end('x'.repeat(100))
    })
    const { body } = await call(server.origin)
    await expect(readAhead(body, 1024, 10)).rejects.toMatchObject({ key: 'RESPONSE_TOO_LARGE' })
    expect(body.destroyed).toBe(true)
    expect(listeners(body)).toEqual([0, 0, 0])
  })

  it('rejects with the error that cut the answer, and takes its listeners off', async () => {
    const server = await startRawServer(async (connection) => {
      await connection.request
      connection.socket.write(
        'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{"\r\n',
        () => connection.socket.resetAndDestroy(),
      )
    })
    servers.push(server)
    const { body } = await call(server.origin)
    const failure = await readAhead(body, 1024, 4096).catch((error: unknown) => error)
    expect((failure as Error & { code?: string }).code).toMatch(/^(?:UND_ERR_SOCKET|ECONNRESET)$/)
    expect(listeners(body)).toEqual([0, 0, 0])
  })
})
