import { once } from 'node:events'
import { PassThrough, type Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { GatewayError } from '../../src/errors.js'
import { CHAT_STREAM } from '../../src/providers/dialects/openai-dialect.js'
import { createScrubber } from '../../src/secrets.js'
import { type BodyPolicy, type CommitRule, UpstreamBody } from '../../src/upstream/body.js'
import { trickle } from '../helpers/gc.js'

const POLICY: BodyPolicy = {
  events: true,
  terminalDialect: 'openai',
  grammar: CHAT_STREAM,
  judgesEnd: true,
  usageExpected: false,
  hideUsage: false,
  keepUsage: false,
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

  it('holds an unfinished event fed a byte at a time in a few Buffers, and passes it on byte for byte', async () => {
    const { source, body } = start()
    const done = collect(body)
    const event = `data: {"choices":[{"delta":{"content":"${'x'.repeat(10_000)}"}}]}\n\n`
    const { kept } = trickle(source, event.slice(0, -1))
    expect(await kept()).toBeLessThan(100)
    source.end('\ndata: [DONE]\n\n')
    expect((await done).text).toBe(`${event}data: [DONE]\n\n`)
  })

  it('ends an event whose CRLF blank line comes a byte at a time', async () => {
    const { source, body } = start()
    const first = new Promise<string>((resolve) =>
      body.once('data', (chunk: Buffer) => resolve(String(chunk))),
    )
    for (const byte of Buffer.from('data: {"a":1}\r\n\r\n')) source.write(Buffer.of(byte))
    // Passed on while the stream is still open: the blank line was found across the bytes held before it.
    expect(await first).toBe('data: {"a":1}\r\n\r\n')
    source.end()
  })

  it('cuts a plain body past its cap with a stream error, never a terminal event', async () => {
    const { source, body } = start({
      events: false,
      terminalDialect: undefined,
      grammar: undefined,
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
      grammar: undefined,
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

describe('UpstreamBody.hold', () => {
  const RULE: CommitRule = { whole: false, holdMs: 0, maxHeldBytes: 64 * 1024, firstTokenMs: undefined }
  const role = 'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n'
  const token = 'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n'
  const finish = 'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\n'

  it('holds the preamble until the answer begins, then gives the client everything in order', async () => {
    const { source, body } = start()
    let committed = false
    const held = body.hold(RULE).then(() => {
      committed = true
    })
    source.write(role)
    // Let the role chunk be read: it must not commit the stream.
    await new Promise((resolve) => setImmediate(resolve))
    expect(committed).toBe(false)
    source.write(token)
    await held
    const done = collect(body)
    source.end(`${finish}data: [DONE]\n\n`)
    expect((await done).text).toBe(`${role}${token}${finish}data: [DONE]\n\n`)
    expect(body.outcome).toEqual({ complete: true })
  })

  it('rejects on an in-band error before the answer began, with the key scrubbed, and cancels the provider', async () => {
    const key = 'sk-stored-0123456789abcdefghij'
    const { source, body, cancelled } = start({ scrubber: createScrubber([key]) })
    const held = body.hold(RULE)
    source.write(role)
    source.write(`data: {"error":{"message":"bad key ${key}","type":"server_error","code":null}}\n\n`)
    const error = (await held.catch((caught: unknown) => caught)) as GatewayError
    expect(error.key).toBe('UPSTREAM_STREAM_ERROR')
    expect(error.message).toContain('[REDACTED]')
    expect(error.message).not.toContain(key.slice(0, 12))
    expect(cancelled.map((e) => e.key)).toEqual(['UPSTREAM_STREAM_ERROR'])
    expect(body.destroyed).toBe(true)
  })

  it('checks held events up to the commit, however the provider split its bytes into batches', async () => {
    const broken = 'data: {broken\n\n'
    // In one batch: a broken event before the first token fails the attempt, and a retry may save it...
    const early = start()
    const heldEarly = early.body.hold(RULE)
    early.source.write(role + broken + token)
    await expect(heldEarly).rejects.toMatchObject({ key: 'INVALID_PROVIDER_RESPONSE' })

    // ...one after it is past the commit: relayed unread, as it would be had it come in a later batch.
    const late = start()
    const heldLate = late.body.hold(RULE)
    late.source.write(role + token + broken)
    await heldLate
    const done = collect(late.body)
    late.source.end(`${finish}data: [DONE]\n\n`)
    expect((await done).text).toBe(`${role}${token}${broken}${finish}data: [DONE]\n\n`)

    // Held to completion, every event is held, so every one is checked.
    const whole = start()
    const heldWhole = whole.body.hold({ ...RULE, whole: true })
    whole.source.write(role + token + broken)
    await expect(heldWhole).rejects.toMatchObject({ key: 'INVALID_PROVIDER_RESPONSE' })
  })

  it('takes back an in-band error up to the commit, and ends with one past it, however the batches fell', async () => {
    const overloaded = 'data: {"error":{"message":"Overloaded","type":"server_error","code":null}}\n\n'
    // In one batch: an error before the first token fails the attempt, and a retry may save the answer...
    const early = start()
    const heldEarly = early.body.hold(RULE)
    early.source.write(role + overloaded + token)
    await expect(heldEarly).rejects.toMatchObject({ key: 'UPSTREAM_STREAM_ERROR' })
    expect(early.body.outcome).toMatchObject({ complete: false, error: { key: 'UPSTREAM_STREAM_ERROR' } })

    // ...one after it is past the commit: the client gets the answer so far and the provider's error, as it
    // would had the error come in a later batch, and the answer is a failure.
    const late = start()
    const heldLate = late.body.hold(RULE)
    const done = collect(late.body)
    late.source.write(role + token + overloaded)
    await heldLate
    expect((await done).text).toBe(`${role}${token}${overloaded}`)
    expect(late.body.outcome).toMatchObject({ complete: false, error: { key: 'UPSTREAM_STREAM_ERROR' } })
    expect(late.cancelled.map((error) => error.key)).toEqual(['UPSTREAM_STREAM_ERROR'])

    // The same at the stream's end, in the unfinished last event: what followed the first token is past it.
    const atEnd = start()
    const heldAtEnd = atEnd.body.hold(RULE)
    const doneAtEnd = collect(atEnd.body)
    atEnd.source.end(role + token + overloaded.trimEnd())
    await heldAtEnd
    expect((await doneAtEnd).text).toBe(`${role}${token}${overloaded.trimEnd()}`)
    expect(atEnd.body.outcome).toMatchObject({ complete: false, error: { key: 'UPSTREAM_STREAM_ERROR' } })
  })

  it('rejects when the stream ends before the answer began, and when the first-token clock runs out', async () => {
    const cut = start()
    const heldCut = cut.body.hold(RULE)
    cut.source.end(role)
    await expect(heldCut).rejects.toMatchObject({ key: 'UPSTREAM_INTERRUPTED' })

    const slow = start()
    const heldSlow = slow.body.hold({ ...RULE, firstTokenMs: 1 })
    slow.source.write(role)
    await expect(heldSlow).rejects.toMatchObject({ key: 'UPSTREAM_FIRST_TOKEN_TIMEOUT' })
    expect(slow.source.destroyed).toBe(true)
  })

  it('holds a whole answer until it completed; a finished stream without [DONE] is given one', async () => {
    const { source, body } = start()
    let committed = false
    const held = body.hold({ ...RULE, whole: true }).then(() => {
      committed = true
    })
    source.write(role + token + finish)
    await new Promise((resolve) => setImmediate(resolve))
    expect(committed).toBe(false)
    source.end()
    await held
    expect((await collect(body)).text).toBe(`${role}${token}${finish}data: [DONE]\n\n`)
  })

  it('holds a stream of tiny events in a few Buffers, and gives the client every byte', async () => {
    const { source, body } = start()
    const held = body.hold(RULE)
    source.write(role)
    const pings = ':\n\n'.repeat(3000)
    const { kept } = trickle(source, pings, 3)
    expect(await kept()).toBeLessThan(100)
    source.write(token)
    await held
    const done = collect(body)
    source.end(`${finish}data: [DONE]\n\n`)
    expect((await done).text).toBe(`${role}${pings}${token}${finish}data: [DONE]\n\n`)
  })

  it('commits once maxHeldBytes are held, whatever else', async () => {
    const { source, body } = start()
    const held = body.hold({ ...RULE, whole: true, maxHeldBytes: role.length * 2 })
    source.write(role)
    source.write(role)
    await held
    const done = collect(body)
    source.end(`${token}${finish}data: [DONE]\n\n`)
    expect((await done).text).toBe(`${role}${role}${token}${finish}data: [DONE]\n\n`)
  })

  it('shows a watcher every byte the provider sent, before the usage is cut; none once the body began', async () => {
    const { source, body } = start({ hideUsage: true, keepUsage: true })
    const withUsage = (event: string) => event.replace('}]}', '}],"usage":null}')
    let seen = ''
    expect(body.watchSource((chunk) => (seen += chunk.toString()))).toBe(true)
    const held = body.hold(RULE)
    source.write(withUsage(role) + withUsage(token))
    await held
    expect(body.watchSource(() => {})).toBe(false)
    const done = collect(body)
    const usage = 'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\n'
    source.end(withUsage(finish) + usage)
    expect((await done).text).toBe(`${role}${token}${finish}data: [DONE]\n\n`)
    expect(seen).toBe(withUsage(role) + withUsage(token) + withUsage(finish) + usage)
    // The event that carried the usage, as the provider sent it.
    expect(body.usageText()).toBe(usage)
  })
})
