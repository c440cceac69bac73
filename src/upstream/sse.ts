import { StringDecoder } from 'node:string_decoder'
import { GatewayError } from '../errors.js'
import type { SSEEvent } from '../providers/dialects/types.js'

/** Largest single event accepted; a provider sending more without a blank line is broken or hostile. */
const MAX_EVENT_BYTES = 4 * 1024 * 1024

/**
 * Incremental server-sent-events parser (WHATWG rules): chunks may split lines, events and UTF-8 code points
 * anywhere; lines end in `\n`, `\r\n` or `\r`; `data:` lines join with `\n`; comments and unknown fields are
 * skipped. It never throws on content, only when one event outgrows the cap.
 *
 * @example
 * const parser = new SSEParser()
 * for (const event of parser.push(chunk)) handle(event)
 */
export class SSEParser {
  #decoder = new StringDecoder('utf8')
  #buffer = ''
  #event: string | undefined = undefined
  #data: string[] = []
  #dataLength = 0
  #pendingCR = false

  push(chunk: Buffer | string): SSEEvent[] {
    let text = typeof chunk === 'string' ? chunk : this.#decoder.write(chunk)
    // A `\r` at the end of the last chunk may have been the first half of `\r\n`.
    if (this.#pendingCR && text.startsWith('\n')) text = text.slice(1)
    this.#pendingCR = false
    // What is held has no line end in it: only the new text is searched, and the held text is not even
    // flattened until a line ends, so a long line arriving in many chunks costs one pass, not one per chunk.
    const held = this.#buffer.length
    const buffer = this.#buffer + text
    const find = (char: string, from: number) => {
      const at = text.indexOf(char, from - held)
      return at === -1 ? -1 : at + held
    }
    const events: SSEEvent[] = []
    let start = 0
    let lf = find('\n', held)
    let cr = find('\r', held)
    while (lf !== -1 || cr !== -1) {
      const end = lf === -1 ? cr : cr === -1 ? lf : Math.min(lf, cr)
      this.#line(buffer.slice(start, end), events)
      start = end + 1
      if (buffer[end] === '\r') {
        if (end + 1 === buffer.length) this.#pendingCR = true
        else if (buffer[end + 1] === '\n') start = end + 2
      }
      // Each search resumes where the last one stopped, so a chunk of many lines is scanned once.
      if (lf !== -1 && lf < start) lf = find('\n', start)
      if (cr !== -1 && cr < start) cr = find('\r', start)
    }
    this.#buffer = start === 0 ? buffer : buffer.slice(start)
    if (this.#buffer.length + this.#dataLength > MAX_EVENT_BYTES) {
      throw new GatewayError(
        'INVALID_PROVIDER_RESPONSE',
        `a server-sent event exceeded ${MAX_EVENT_BYTES} bytes`,
      )
    }
    return events
  }

  /** Events still held when the stream ends without a final blank line. */
  end(): SSEEvent[] {
    const events: SSEEvent[] = []
    this.#buffer += this.#decoder.end()
    if (this.#buffer) this.#line(this.#buffer, events)
    this.#buffer = ''
    this.#line('', events)
    return events
  }

  #line(line: string, events: SSEEvent[]): void {
    if (line === '') {
      if (this.#data.length > 0) events.push({ event: this.#event, data: this.#data.join('\n') })
      this.#event = undefined
      this.#data = []
      this.#dataLength = 0
      return
    }
    if (line.startsWith(':')) return
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'data') {
      this.#data.push(value)
      this.#dataLength += value.length
    } else if (field === 'event') this.#event = value
  }
}

const SPACE = 0x20
const COLON = 0x3a

/**
 * The events of a text read to its end, an unfinished last event included: what `push(text)` then `end()`
 * of a new `SSEParser` give, without its state or its decoder. For the few events the gateway parses of
 * every stream (the held ones it checks, the ones that carry usage), where a parser per call cost four
 * times the walk. The text is bounded by whoever framed it, so no event cap is checked here.
 *
 * @example
 * eventsOf('event: ping\ndata: {}\n\ndata: [DONE]')
 * // [{ event: 'ping', data: '{}' }, { event: undefined, data: '[DONE]' }]
 */
export function eventsOf(text: string): SSEEvent[] {
  const events: SSEEvent[] = []
  let event: string | undefined
  let data: string | undefined
  // The next of each line end and of `:` from `start` on, searched again only once passed: a text with no
  // `\r` is searched for one once, not once per line, and lines without a colon do not each search the
  // rest of the text for one (which made a text of such lines cost its length squared).
  let lf = -1
  let cr = -1
  let colon = -1
  for (let start = 0; ; ) {
    if (lf !== text.length && lf < start) lf = indexOrEnd(text, '\n', start)
    if (cr !== text.length && cr < start) cr = indexOrEnd(text, '\r', start)
    const end = Math.min(lf, cr)
    if (end === start) {
      if (data !== undefined) events.push({ event, data })
      event = undefined
      data = undefined
    } else if (text.charCodeAt(start) !== COLON) {
      if (colon !== text.length && colon < start) colon = indexOrEnd(text, ':', start)
      const nameEnd = Math.min(colon, end)
      let value = nameEnd === end ? end : nameEnd + 1
      if (value < end && text.charCodeAt(value) === SPACE) value++
      if (nameEnd - start === 4 && text.startsWith('data', start)) {
        const line = text.slice(value, end)
        data = data === undefined ? line : `${data}\n${line}`
      } else if (nameEnd - start === 5 && text.startsWith('event', start)) event = text.slice(value, end)
    }
    if (end === text.length) break
    start = end + (end === cr && text.charCodeAt(end + 1) === 0x0a ? 2 : 1)
  }
  if (data !== undefined) events.push({ event, data })
  return events
}

function indexOrEnd(text: string, char: string, from: number): number {
  const at = text.indexOf(char, from)
  return at === -1 ? text.length : at
}
