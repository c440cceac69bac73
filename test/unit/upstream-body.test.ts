import { once } from 'node:events'
import { PassThrough, type Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { GatewayError } from '../../src/errors.js'
import { createScrubber } from '../../src/secrets.js'
import { type BodyPolicy, UpstreamBody } from '../../src/upstream/body.js'

const POLICY: BodyPolicy = {
  events: true,
  terminalDialect: 'openai',
  terminator: 'data: [DONE]',
  hideUsage: false,
  scrubber: undefined,
  maxBytes: 1024 * 1024,
  maxEventBytes: 64 * 1024,
  writeStallMs: 30_000,
}

function start(policy: Partial<BodyPolicy> = {}) {
  const source = new PassThrough()
  const cancelled: GatewayError[] = []
  const body = new UpstreamBody(
    source,
    { chunks: [], size: 0, ended: false },
    { ...POLICY, ...policy },
    {
      cancel: (error) => cancelled.push(error),
      explain: (error) => (error instanceof GatewayError ? error : new GatewayError('UPSTREAM_INTERRUPTED')),
    },
  )
  return { source, body, cancelled }
}

async function collect(body: Readable): Promise<{ text: string; error: Error | undefined }> {
  let text = ''
  let error: Error | undefined
  body.on('data', (chunk: Buffer) => {
    text += chunk.toString()
  })
  body.on('error', (failure) => {
    error = failure
  })
  // Not events.once: it rejects on 'error', which is one of the outcomes under test.
  await new Promise((resolve) => body.once('close', resolve))
  return { text, error }
}

describe('UpstreamBody', () => {
  it('forwards whole events only, however the provider cut them, and judges the stream complete', async () => {
    const { source, body } = start()
    const done = collect(body)
    const stream = 'data: {"a":1}\r\n\r\ndata: {"b":2}\n\ndata: [DONE]\n\n'
    // Cut between every pair of bytes of a CRLF blank line, and inside the terminator.
    for (const piece of ['data: {"a":1}\r', '\n', '\r', '\ndata: {"b', '":2}\n', '\ndata: [DO', 'NE]\n\n'])
      source.write(piece)
    source.end()
    const { text, error } = await done
    expect(text).toBe(stream)
    expect(error).toBeUndefined()
    expect(body.outcome).toEqual({ complete: true })
  })

  it('ends a stream without its last event with the terminal error event, and a cut one too', async () => {
    const cut = start()
    const done = collect(cut.body)
    cut.source.end('data: {"a":1}\n\ndata: {"unfinished"')
    const { text } = await done
    expect(text).toBe(
      'data: {"a":1}\n\ndata: {"error":{"message":"Provider response was interrupted: the stream ended before its last event","type":"gateway_error","param":null,"code":2108}}\n\n',
    )
    expect(cut.body.outcome).toMatchObject({ complete: false, error: { key: 'UPSTREAM_INTERRUPTED' } })

    const failed = start()
    const failedDone = collect(failed.body)
    failed.source.write('data: {"a":1}\n\ndata: {"half')
    await once(failed.body, 'data')
    failed.source.destroy(new GatewayError('UPSTREAM_IDLE_TIMEOUT'))
    const result = await failedDone
    expect(result.text).toMatch(
      /^data: \{"a":1\}\n\ndata: \{"error":\{"message":"Provider stopped sending data"/,
    )
    expect(result.error).toBeUndefined()
  })

  it('gives up on an event over the cap in one pass, cancelling the provider', async () => {
    const { source, body, cancelled } = start({ maxEventBytes: 1000 })
    const done = collect(body)
    source.write('data: {"a":1}\n\ndata: ')
    for (let i = 0; i < 20; i++) source.write('x'.repeat(100))
    const { text } = await done
    expect(text).toMatch(
      /^data: \{"a":1\}\n\ndata: \{"error":\{"message":"Provider response exceeded a size limit: an event exceeded 1000 bytes".*"code":2121\}\}\n\n$/,
    )
    expect(cancelled.map((error) => error.key)).toEqual(['RESPONSE_TOO_LARGE'])
    expect(source.destroyed).toBe(true)
  })

  it('cuts a plain body past its cap with a stream error, never a terminal event', async () => {
    const { source, body } = start({
      events: false,
      terminalDialect: undefined,
      terminator: undefined,
      maxBytes: 10,
    })
    const done = collect(body)
    source.write('{"long":"')
    source.write('answer"}')
    const { text, error } = await done
    expect(text).toBe('{"long":"')
    expect((error as GatewayError).key).toBe('RESPONSE_TOO_LARGE')
  })

  it('scrubs secrets and hides the usage it asked for, event by event', async () => {
    const key = 'sk-stored-0123456789abcdefghij'
    const { source, body } = start({ hideUsage: true, scrubber: createScrubber([key]) })
    const done = collect(body)
    source.write(`data: {"choices":[{"delta":{"content":"${key.slice(0, 8)}`)
    source.write(`${key.slice(8)}"}}],"usage":null}\n\n`)
    source.end('data: {"choices":[],"usage":{"prompt_tokens":1}}\n\ndata: [DONE]\n\n')
    const { text } = await done
    expect(text).toBe('data: {"choices":[{"delta":{"content":"[REDACTED]"}}]}\n\ndata: [DONE]\n\n')
  })

  it('gives up on a reader that leaves a full buffer unread past writeStallMs', async () => {
    const { source, body } = start({
      events: false,
      terminalDialect: undefined,
      terminator: undefined,
      writeStallMs: 50,
    })
    body.once('readable', () => {})
    // Nobody reads: the provider fills the buffer until the body stops asking, then the clock runs.
    const piece = Buffer.alloc(64 * 1024)
    while (source.write(piece)) {}
    const [error] = (await once(body, 'error')) as [GatewayError]
    expect(error.key).toBe('CLIENT_CLOSED')
    expect(source.destroyed).toBe(true)
    expect(body.outcome).toMatchObject({ complete: false, error: { key: 'CLIENT_CLOSED' } })
  })

  it('never lets a late error from an abandoned source escape', async () => {
    const { source, body } = start()
    body.destroy()
    await new Promise((resolve) => body.once('close', resolve))
    // Without a listener of its own this would throw out of emit().
    expect(() => source.emit('error', new Error('late'))).not.toThrow()
    expect(body.outcome).toMatchObject({ complete: false, error: { key: 'CLIENT_CLOSED' } })
  })
})
