import { describe, expect, it } from 'vitest'
import { eventsOf, SSEParser } from '../../src/upstream/sse.js'

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

describe('eventsOf', () => {
  // Texts made of the pieces where a walk of lines can go wrong: every line end, a `\r` that may or may not
  // be followed by `\n`, fields without a colon or a value, comments, several data lines, and the end.
  const PIECES = [
    'data',
    'data:',
    'data: x',
    ' y',
    'event: e',
    'event',
    ':c',
    'id: 1',
    'dat',
    ':',
    ' ',
    '\n',
    '\r',
    '\r\n',
    '\n\n',
    'é',
  ]

  function randomText(random: () => number): string {
    let text = ''
    const length = Math.floor(random() * 12)
    for (let i = 0; i < length; i++) text += PIECES[Math.floor(random() * PIECES.length)]
    return text
  }

  function parsedWhole(text: string) {
    const parser = new SSEParser()
    return [...parser.push(text), ...parser.end()]
  }

  it('gives what a parser given the whole text and its end gives, for any text', () => {
    // A fixed seed: a failure names a text that fails again.
    let seed = 12345
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed / 2147483648
    }
    for (let i = 0; i < 20_000; i++) {
      const text = randomText(random)
      expect(eventsOf(text), JSON.stringify(text)).toEqual(parsedWhole(text))
    }
  })

  it('reads a text in one pass, however few of its lines have a colon', () => {
    // Characters that `indexOf` looks through, counted while the walk runs: a search per line to the end of
    // the text would look through some 10^8 of them here, a pass about twice its length.
    const text = `${'x\n'.repeat(10_000)}\ndata: y\n\n`
    const indexOf = String.prototype.indexOf
    let looked = 0
    String.prototype.indexOf = function (this: string, search: string, from = 0) {
      const at = indexOf.call(this, search, from)
      looked += (at === -1 ? this.length : at) - from
      return at
    }
    try {
      expect(eventsOf(text)).toEqual([{ event: undefined, data: 'y' }])
    } finally {
      String.prototype.indexOf = indexOf
    }
    expect(looked).toBeLessThan(4 * text.length)
  })

  it('reads the events of a stream and its unfinished last event', () => {
    expect(eventsOf('event: ping\ndata: {}\n\ndata: [DONE]')).toEqual([
      { event: 'ping', data: '{}' },
      { event: undefined, data: '[DONE]' },
    ])
    expect(eventsOf(': c\r\ndata: one\r\ndata:two\r\rid: 7\rdata\r')).toEqual([
      { event: undefined, data: 'one\ntwo' },
      { event: undefined, data: '' },
    ])
  })
})
