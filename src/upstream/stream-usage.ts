import { isRecord } from '../json.js'
import type { UpstreamTarget } from '../target.js'
import { splitQuery } from '../url.js'

const STREAM_OPTIONS_FIELD = Buffer.from(',"stream_options":{"include_usage":true}')

/**
 * The client's bytes with one more field before the object's closing brace: what it sent stays as it
 * sent it, and the body is not parsed and written out again.
 */
function withFieldAppended(body: Buffer, field: Buffer): Buffer {
  const end = body.lastIndexOf(0x7d)
  // Copied in three parts into one new Buffer: `Buffer.concat` of two views would make the views first.
  const out = Buffer.allocUnsafe(body.length + field.length)
  body.copy(out, 0, 0, end)
  field.copy(out, end)
  body.copy(out, end + field.length, end)
  return out
}

/** What asking a provider for a stream's usage changes in a target. */
export interface StreamUsageAsk {
  /** `asked`: the client asked itself, and gets the usage; `hidden`: the gateway asked, and takes it out. */
  readonly streamUsage: 'asked' | 'hidden'
  /** The body with the ask added, and headers with its length, when the gateway asked. */
  readonly body?: Buffer
  readonly headers?: Record<string, string>
}

const ASKED: StreamUsageAsk = { streamUsage: 'asked' }

/**
 * An OpenAI-dialect streamed chat completion carries usage only when the client asked for it
 * (`stream_options.include_usage`). To cost and count every stream, the gateway asks for it anyway, and
 * `withoutUsage` then takes out of the client's stream exactly what that option added. For a target in
 * the provider's own dialect, before it is built: what the ask changes in it, or undefined when it changes
 * nothing (not a stream, or not one of a provider that needs the ask).
 */
export function askForStreamUsage(
  target: Pick<UpstreamTarget, 'provider' | 'method' | 'path' | 'headers' | 'body'>,
  json: unknown,
): StreamUsageAsk | undefined {
  // Cheapest first: most requests are not streams, and end here.
  if (!isRecord(json) || json.stream !== true) return undefined
  if (!target.provider.spec.streamUsageOnRequest) return undefined
  if (target.method !== 'POST' || !splitQuery(target.path).path.endsWith('/chat/completions'))
    return undefined
  const options = isRecord(json.stream_options) ? json.stream_options : undefined
  if (options?.include_usage === true) return ASKED
  const body =
    json.stream_options === undefined
      ? withFieldAppended(target.body!, STREAM_OPTIONS_FIELD)
      : Buffer.from(JSON.stringify({ ...json, stream_options: { ...options, include_usage: true } }))
  const headers = { ...target.headers }
  if (headers['content-length'] !== undefined) headers['content-length'] = String(body.length)
  return { streamUsage: 'hidden', body, headers }
}

// The key's name is searched without its opening quote, which is checked apart: V8 looks for a needle's
// first character before comparing the rest, and `"` is everywhere in JSON (measured on a 5.6 KB OpenAI
// batch: 3.5 µs for `"usage":`, 0.8 µs for `usage":`).
const USAGE_NAME = 'usage'
const METADATA = 'Metadata"'
const QUOTE = 0x22
const COMMA = 0x2c
const COLON = 0x3a
const SPACE = 0x20
const OPEN_BRACE = 0x7b
const EMPTY_CHOICES = '"choices":[],'

/**
 * The client's view of whole events from a stream the gateway asked usage for: without the final
 * usage-only chunk and without the `"usage":null` every other chunk then carries (with the comma that
 * joined it to its neighbour). Inside JSON strings quotes are escaped, so the literal can only be that
 * field. `text` is the bytes as a latin1 string (`UpstreamBody` makes it once per batch of events, for
 * all its searches), so its offsets are the bytes'; the usage-only chunk (one per stream, near its end) is
 * cut out whole.
 *
 * Every usage key is visited here anyway, so the events with a usage object go to `usage` from here too,
 * as `UsageEvents.push` would find them: a stream whose usage is hidden is not searched for it twice.
 *
 * `events` is changed in place and a view of its start returned: the batch is the gateway's own, and a new
 * Buffer over 4 KiB (a batch of a few dozen events) is an allocation of its own, which costs several times
 * the cut.
 */
export function withoutUsage(
  events: Buffer,
  text: string = events.toString('latin1'),
  usage?: UsageEvents,
): Buffer {
  let found = text.indexOf(USAGE_NAME, 1)
  if (found === -1) return events
  // Each kept part is moved down over what was cut before it: a memmove, with no view or string per part.
  // Written out in the loop and compared a character at a time, not with a helper closure and `startsWith`:
  // this runs on every batch of every stream the gateway asked usage for, and those cost a third of it.
  let kept = 0
  let from = 0
  let firstUsage = -1
  let lastUsage = -1
  // The first usage object's event, when it was cut out.
  let firstStart = -1
  let firstEnd = -1
  while (found !== -1) {
    const at = found - 1
    let next = found + USAGE_NAME.length
    // Where the key's value starts; `next + 2` for `usage":`, the one key cut, written as OpenAI writes it.
    const value = text.charCodeAt(at) === QUOTE ? valueAfterKey(text, next) : -1
    let cut = -1
    if (value === -1) {
      // A key that only ends in `usage`, or the word in a string.
    } else if (text.charCodeAt(value) === OPEN_BRACE) {
      const isFirst = firstUsage === -1
      if (isFirst) firstUsage = at
      lastUsage = at
      if (value === next + 2 && text.endsWith(EMPTY_CHOICES, at)) {
        const start = eventStart(text, at)
        next = eventEnd(text, at)
        cut = Math.max(from, start)
        if (isFirst) {
          firstStart = start
          firstEnd = next
        }
      }
    } else if (value === next + 2 && isNullAt(text, value)) {
      next = value + 4
      if (at > 0 && text.charCodeAt(at - 1) === COMMA) cut = at - 1
      else if (text.charCodeAt(next) === COMMA) {
        cut = at
        next++
      }
    }
    if (cut !== -1) {
      events.copyWithin(kept, from, cut)
      kept += cut - from
      from = next
    }
    found = text.indexOf(USAGE_NAME, next + 1)
  }
  if (firstUsage !== -1) usage?.keep(text, firstUsage, lastUsage, firstStart, firstEnd)
  if (from === 0) return events
  events.copyWithin(kept, from, text.length)
  return events.subarray(0, kept + text.length - from)
}

/**
 * Where the value of a `usage` or `usageMetadata` key begins, from just past `usage` (spaces allowed
 * around its colon, as `USAGE_OBJECT_PAST_QUOTE` allows them); -1 when no such key ends there.
 */
function valueAfterKey(text: string, at: number): number {
  if (text.charCodeAt(at) === QUOTE) at++
  else if (text.startsWith(METADATA, at)) at += METADATA.length
  else return -1
  while (text.charCodeAt(at) === SPACE) at++
  if (text.charCodeAt(at) !== COLON) return -1
  at++
  while (text.charCodeAt(at) === SPACE) at++
  return at
}

function isNullAt(text: string, at: number): boolean {
  return (
    text.charCodeAt(at) === 0x6e &&
    text.charCodeAt(at + 1) === 0x75 &&
    text.charCodeAt(at + 2) === 0x6c &&
    text.charCodeAt(at + 3) === 0x6c
  )
}

/**
 * A usage object, from past its key's opening quote: `usage"` or `usageMetadata"`, then `:` and `{` (spaces
 * allowed). OpenAI's `"usage":null` on every chunk of a stream asked for usage does not count. Whoever runs
 * it checks the quote before the match: see `StreamMarkers`.
 */
export const USAGE_OBJECT_PAST_QUOTE = 'usage(?:Metadata)?" *: *\\{'
const USAGE_OBJECT = new RegExp(`"${USAGE_OBJECT_PAST_QUOTE}`, 'g')

/** The blank lines that end an event: a line end twice, in any of the three forms lines may end in. */
export const BLANK_LINES = ['\n\n', '\r\n\r\n', '\r\r'] as const

/** The index just past the blank line that ends the event holding `at`; the text's end when none does. */
export function eventEnd(text: string, at: number): number {
  const lf = text.indexOf('\n\n', at)
  let end = lf === -1 ? text.length : lf + 2
  // Nearly every stream ends its lines with `\n` alone: only a `\r` before that end can begin a blank line
  // that ends the event sooner, so the other forms are searched for only then.
  const cr = text.indexOf('\r', at)
  if (cr === -1 || cr >= end) return end
  for (const blank of BLANK_LINES) {
    const found = text.indexOf(blank, at)
    if (found !== -1 && found + blank.length < end) end = found + blank.length
  }
  return end
}

const LF = 0x0a
const CR = 0x0d

// How far back `lastEventEnd` reads a character at a time before it searches.
const NEAR = 8

/**
 * The index just past the last blank line (of any of the three forms) that ends at `before` or earlier, or
 * -1. A batch nearly always ends with its last event's blank line: the last few characters are read one at
 * a time. Further back, the last `\n\n` is searched for (a loop costs some 30 instructions a character, a
 * native search a few), and is the answer unless a `\r` after it may begin a later blank line of another
 * form: then, and only then (streams whose lines end in `\r`), the characters are read back one at a time.
 */
export function lastEventEnd(text: string, before: number = text.length): number {
  const near = blankLineEnd(text, before, Math.max(0, before - NEAR))
  if (near !== -1 || before <= NEAR) return near
  const lf = text.lastIndexOf('\n\n', before - 2)
  const cr = text.indexOf('\r', Math.max(0, lf))
  if (cr === -1 || cr >= before) return lf === -1 ? -1 : lf + 2
  return blankLineEnd(text, before, 0)
}

/** The end of the last blank line that ends after `after` and at `before` or earlier, read back; or -1. */
function blankLineEnd(text: string, before: number, after: number): number {
  for (let i = before - 1; i > after; i--) {
    const code = text.charCodeAt(i)
    if (code !== LF && code !== CR) continue
    const previous = text.charCodeAt(i - 1)
    // `\n\n` or `\r\r`, or the last `\n` of `\r\n\r\n`.
    if (previous === code) return i + 1
    if (code === LF && previous === CR && text.charCodeAt(i - 2) === LF && text.charCodeAt(i - 3) === CR)
      return i + 1
  }
  return -1
}

/** The index where the event holding `at` begins: just past the blank line before it, or 0. */
function eventStart(text: string, at: number): number {
  return Math.max(0, lastEventEnd(text, at))
}

/**
 * What an event stream's usage is read from, kept as the stream passes: the first and the last event that
 * carry a usage object. That is all any dialect's reader needs (Anthropic: `message_start` and the last
 * `message_delta`; OpenAI: its one usage chunk; Gemini: running totals, the last of which counts), so a
 * long stream is not held twice (the log keeps the client's copy) for the few bytes its usage is.
 * `UpstreamBody` feeds it the latin1 text of the batches it frames anyway.
 *
 * The events are kept as copies of their bytes, not as slices of the batch's text: a slice keeps its whole
 * batch alive, and a request in flight when the young generation is collected would have the garbage
 * collector copy that batch (the whole answer, for a stream that came in one read) to keep its usage.
 */
export class UsageEvents {
  #first: Buffer | undefined
  #last: Buffer | undefined

  /** A batch of whole events, as latin1 text (its bytes one for one). */
  push(text: string): void {
    USAGE_OBJECT.lastIndex = 0
    const first = USAGE_OBJECT.exec(text)?.index
    if (first === undefined) return
    let last = first
    for (let match = USAGE_OBJECT.exec(text); match !== null; match = USAGE_OBJECT.exec(text))
      last = match.index
    this.keep(text, first, last)
  }

  /**
   * The same for a batch already searched (`StreamMarkers.scan`, `withoutUsage`): `first` and `last` are
   * where its first and last usage object begin; `firstStart` and `firstEnd` where the first one's event
   * begins and ends, when the caller found them already (-1 when not).
   */
  keep(text: string, first: number, last: number, firstStart = -1, firstEnd = -1): void {
    if (this.#first !== undefined) {
      this.#last = eventAround(text, last)
      return
    }
    if (firstStart === -1) {
      firstStart = eventStart(text, first)
      firstEnd = eventEnd(text, first)
    }
    this.#first = copyOf(text, firstStart, firstEnd)
    // Kept once when the batch's first usage event is also its last.
    if (last >= firstEnd) this.#last = eventAround(text, last)
  }

  /** The kept events as text. */
  text(): string {
    if (this.#first === undefined) return ''
    const events = this.#last === undefined ? this.#first : Buffer.concat([this.#first, this.#last])
    return events.toString('utf8')
  }
}

/** A copy of the bytes of the event holding `at`. */
function eventAround(text: string, at: number): Buffer {
  return copyOf(text, eventStart(text, at), eventEnd(text, at))
}

/** A copy of the bytes from `start` to `end`, holding nothing of the batch. */
function copyOf(text: string, start: number, end: number): Buffer {
  return Buffer.from(text.slice(start, end), 'latin1')
}
