import { once } from 'node:events'
import { PassThrough, type Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { GatewayError } from '../../src/errors.js'
import { wrappedBody } from '../../src/upstream/wrapped-body.js'

/** A wrapper as the gateway's are: what it reads, changed; a failure of the source ends it with a last chunk. */
async function* upper(source: Readable): AsyncGenerator<string> {
  try {
    for await (const chunk of source) yield String(chunk).toUpperCase()
  } catch (error) {
    if (error instanceof GatewayError && error.key === 'CLIENT_CLOSED') throw error
    yield 'FAILED'
  }
}

describe('wrappedBody', () => {
  it('fails at once with the error of a source that gave up on its reader, while the wrapper waits at a yield', async () => {
    const source = new PassThrough({ objectMode: true })
    const body = wrappedBody(upper(source), source)
    source.write('a')
    source.write('b')
    // One chunk read, then no more: the next waits unread, the wrapper parked at its yield.
    await new Promise((resolve) => body.once('data', resolve))
    body.pause()
    await new Promise((resolve) => setImmediate(resolve))
    expect(body.readableLength).toBe(1)
    const stalled = new GatewayError('CLIENT_CLOSED', 'the client read nothing for 50 ms')
    source.destroy(stalled)
    const [error] = await once(body, 'error')
    expect(error).toBe(stalled)
  })

  it('leaves any other failure of the source to the wrapper, which ends its stream in its own words', async () => {
    const source = new PassThrough()
    const body = wrappedBody(upper(source), source)
    const read: string[] = []
    body.on('data', (chunk: string) => {
      read.push(chunk)
      if (read.length === 1) source.destroy(new GatewayError('UPSTREAM_INTERRUPTED'))
    })
    source.write('a')
    await once(body, 'end')
    expect(read).toEqual(['A', 'FAILED'])
  })

  it('closes a body nobody reads yet without an error no one would hear', async () => {
    const source = new PassThrough()
    const body = wrappedBody(upper(source), source)
    // Listened for by hand: `once` would listen for 'error' too.
    const closed = new Promise((resolve) => body.on('close', resolve))
    source.destroy(new GatewayError('CLIENT_CLOSED'))
    await closed
    expect(body.errored).toBeNull()
  })

  it('stops its source once it closes, as when the client leaves', async () => {
    const source = new PassThrough()
    const body = wrappedBody(upper(source), source)
    body.destroy()
    await once(source, 'close')
    expect(source.destroyed).toBe(true)
  })
})
