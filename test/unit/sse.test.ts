import { describe, expect, it } from 'vitest'
import { SSEParser } from '../../src/upstream/sse.js'

function parseInPieces(text: string, size: number) {
  const parser = new SSEParser()
  const bytes = Buffer.from(text)
  const events = []
  for (let i = 0; i < bytes.length; i += size) events.push(...parser.push(bytes.subarray(i, i + size)))
  return [...events, ...parser.end()]
}

describe('SSEParser', () => {
  const stream =
    'event: message_start\ndata: {"a":"é€😀"}\n\n: comment\r\ndata: line one\r\ndata: line two\r\n\r\nid: 7\rdata:no-space\r\r'

  it.each([1, 2, 3, 5, 64, 10_000])('gives the same events whatever the chunk size (%i bytes)', (size) => {
    expect(parseInPieces(stream, size)).toEqual([
      { event: 'message_start', data: '{"a":"é€😀"}' },
      { event: undefined, data: 'line one\nline two' },
      { event: undefined, data: 'no-space' },
    ])
  })

  it('delivers a last event that lacks its blank line at the end', () => {
    expect(parseInPieces('data: tail', 4)).toEqual([{ event: undefined, data: 'tail' }])
  })

  it('refuses an event that grows past the cap', () => {
    const parser = new SSEParser()
    const big = `data: ${'x'.repeat(1024 * 1024)}\n`
    expect(() => {
      for (let i = 0; i < 5; i++) parser.push(big)
    }).toThrow(expect.objectContaining({ code: 2115 }))
  })
})
