import type { Usage } from '../../cost/cost.js'
import { isRecord, parseJsonTail } from '../../json.js'
import { withFields } from '../../objects.js'
import { isHighSurrogate, isLowSurrogate, isWellFormed } from '../../surrogates.js'
import { eventsOf } from '../../upstream/sse.js'
import { splitQuery } from '../../url.js'
import type { ProviderError, StreamGrammar, UsageReader } from './types.js'

/** Parts shared by the dialect specs: usage number reading, stream assembly, model and stream fields. */

/** A count as a provider reported it; how large it may be is `plausibleUsage`'s to decide, for the whole usage. */
export function tokens(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined
}

/**
 * The most tokens one count of an answer's usage may have: a trillion, 100,000 times the largest context
 * window. A provider that reports more is wrong (an overflow, a placeholder), and its usage is none: any sum
 * of an answer's counts stays a safe integer then, for its record (a Postgres bigint), the metrics and limits.
 */
const MAX_TOKEN_COUNT = 1e12

/**
 * `usage`, or `undefined` when a count in it (a sum of the provider's fields, as Gemini's output) is not a
 * plausible number of tokens: one count out of bounds makes the whole report untrustworthy, and a request
 * with no usage is logged and counted with null tokens and cost, never with a number made up.
 *
 * @example
 * plausibleUsage({ inputTokens: 1e19, outputTokens: 2, inputIncludesCache: true }) // undefined
 */
export function plausibleUsage(usage: Usage | undefined): Usage | undefined {
  if (usage === undefined) return undefined
  const plausible =
    isTokenCount(usage.inputTokens) &&
    isTokenCount(usage.outputTokens) &&
    (usage.cacheReadTokens === undefined || isTokenCount(usage.cacheReadTokens)) &&
    (usage.cacheWriteTokens === undefined || isTokenCount(usage.cacheWriteTokens))
  return plausible ? usage : undefined
}

function isTokenCount(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= MAX_TOKEN_COUNT
}

/** `reader`, answering no usage for a report `plausibleUsage` refuses. */
export function plausibleReader(reader: UsageReader): UsageReader {
  return {
    ...reader,
    fromJson: (json) => plausibleUsage(reader.fromJson(json)),
    fromStream: (sseText) => plausibleUsage(reader.fromStream(sseText)),
  }
}

export function withCache(usage: Usage, cacheRead: number | undefined): Usage {
  return cacheRead === undefined ? usage : withFields(usage, { cacheReadTokens: cacheRead })
}

export function field(value: unknown, name: string): unknown {
  return isRecord(value) ? value[name] : undefined
}

export function lastDefined<T>(values: (T | undefined)[]): T | undefined {
  for (let i = values.length - 1; i >= 0; i--) {
    if (values[i] !== undefined) return values[i]
  }
  return undefined
}

const USAGE_FIELD = /"usage(?:Metadata)?"\s*:\s*\{/

/** The parsed events of a server-sent-events body that carry a usage object, in order. */
export function usageEvents(sseText: string): unknown[] {
  // Every dialect's usage is an object under `usage` or `usageMetadata`: events without one (OpenAI's
  // `"usage":null` included) are not parsed at all, which on a long stream is nearly all of them.
  return eventsOf(sseText)
    .filter((event) => USAGE_FIELD.test(event.data))
    .map((event) => parseData(event.data))
}

function parseData(data: string): unknown {
  if (data === '[DONE]') return undefined
  try {
    return JSON.parse(data)
  } catch {
    return undefined
  }
}

/**
 * A stream's usage as the last event that reports it says (for dialects that repeat running totals, or
 * report once at the end), read from the line that names `field` last: on an OpenAI stream, the final
 * usage chunk. Usage is that event's last field or nearly, so only the line's tail from `field` on is
 * parsed, as for a JSON answer. When that reports none (usage nested deeper, a stream cut before its usage
 * chunk, the word in a delta's text), every event is read, as a fallback.
 */
export function lastEventUsage(fromJson: (json: unknown) => Usage | undefined, field: string) {
  const key = `"${field}"`
  return (sseText: string): Usage | undefined => {
    const at = sseText.lastIndexOf(key)
    if (at === -1) return undefined
    const start = lineStart(sseText, at)
    const tail = parseJsonTail(sseText.slice(start, lineEnd(sseText, at)), field)
    return (
      (tail === undefined ? undefined : fromJson(tail)) ?? lastDefined(usageEvents(sseText).map(fromJson))
    )
  }
}

/**
 * Where the line holding `at` begins: past the line end before it. Native searches, where a loop over the
 * characters costs some 30 instructions each: the text is the few events kept for their usage. (Searched
 * forward instead, `\n` after `\n`, the kept events took a tenth of the time, but a whole stream handed
 * to `extractStreamUsage` would cost one search per line before its usage.) Back only for `\n`: a search
 * back for a `\r` most streams never send reads the whole text before `at`, some 1,000 instructions for
 * OpenAI's usage chunk, where one forward from that `\n` is a `memchr`.
 */
function lineStart(text: string, at: number): number {
  if (at === 0) return 0
  const lf = text.lastIndexOf('\n', at - 1)
  const cr = text.indexOf('\r', lf + 1)
  return (cr === -1 || cr >= at ? lf : text.lastIndexOf('\r', at - 1)) + 1
}

/** Where the line holding `at` ends (before its `\n` or `\r`), or the text's end. */
function lineEnd(text: string, at: number): number {
  const lf = text.indexOf('\n', at)
  const cr = text.indexOf('\r', at)
  if (lf === -1) return cr === -1 ? text.length : cr
  return cr === -1 ? lf : Math.min(lf, cr)
}

// A JSON string literal, escapes included. Written as runs of plain characters between escapes: an
// alternation repeated once per character would recurse once per character too, and overflow the stack on
// a long delta.
const JSON_STRING = '"[^"\\\\]*(?:\\\\.[^"\\\\]*)*"'
const LITERAL_AT = new RegExp(JSON_STRING, 'y')
// What `JSON.stringify` writes otherwise than as it is: control characters (lone surrogates are checked
// apart, with `isWellFormed`).
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
const CONTROL_CHARACTER = /[\x00-\x1f]/

/**
 * Assembles a stream for the log from where a dialect puts its text deltas and its finish reason: the
 * text of the deltas joined, the last finish reason, and how many events carried them, as
 * `{"stream":true,"content":…,"finishReason":…,"events":…}`. `textKey` is the pattern of what comes
 * before a delta's JSON string; `finishKey` is the key that opens a string finish reason, read back from
 * the end, where the last one is.
 *
 * The deltas are found by pattern in one pass rather than by parsing every event, since this runs for
 * every logged stream, and a delta's text goes into the content as it came when it is already what
 * `JSON.stringify` would write: only the others are decoded and written again.
 */
export function patternAssembler(textKey: string, finishKey: string): (sseText: string) => string {
  const opening = new RegExp(`${textKey}"`, 'g')
  const literal = new RegExp(`${textKey}(${JSON_STRING})`, 'g')
  return (sse) => {
    const content = quickContent(opening, sse) ?? exactContent(literal, sse)
    const finish = lastStringValue(sse, finishKey)
    const finishReason = finish === null ? 'null' : JSON.stringify(finish)
    return `{"stream":true,"content":"${content}","finishReason":${finishReason},"events":${countEvents(sse)}}`
  }
}

/**
 * The content for the usual stream: `opening` (a `g` pattern that ends with a delta's opening quote) is
 * only tested, with no match object or capture per delta, and a delta without a backslash ends at the next
 * quote, its text cut from the stream as it is. `undefined` for what only `exactContent` gets right: a
 * delta's string that does not end, a surrogate pair split between deltas, a control character.
 */
function quickContent(opening: RegExp, sse: string): string | undefined {
  let content = ''
  let backslash = sse.indexOf('\\')
  opening.lastIndex = 0
  while (opening.test(sse)) {
    const from = opening.lastIndex
    if (backslash !== -1 && backslash < from) backslash = sse.indexOf('\\', from)
    let end = sse.indexOf('"', from)
    if (end === -1) return undefined
    if (backslash === -1 || backslash > end) content += sse.slice(from, end)
    else {
      LITERAL_AT.lastIndex = from - 1
      if (!LITERAL_AT.test(sse)) return undefined
      end = LITERAL_AT.lastIndex - 1
      const piece = encodedPiece(sse.slice(from - 1, end + 1))
      if (piece === undefined) return undefined
      content += piece
    }
    opening.lastIndex = end + 1
  }
  return CONTROL_CHARACTER.test(content) || !isWellFormed(content) ? undefined : content
}

/**
 * The content as `JSON.stringify` writes the deltas' text joined, whatever the stream holds: a `g` pattern
 * with the delta's JSON string as its group, run with `exec` from its start (`matchAll` would copy it and
 * add an iterator per call).
 */
function exactContent(literal: RegExp, sse: string): string {
  let content = ''
  let exact = true
  literal.lastIndex = 0
  for (let match = literal.exec(sse); match !== null; match = literal.exec(sse)) {
    const piece = encodedPiece(match[1]!)
    if (piece === undefined) exact = false
    else content += piece
  }
  return exact ? content : encodedWhole(literal, sse)
}

/**
 * The deltas' text decoded, joined and written again as one: a surrogate pair split across two deltas
 * stays a pair, where each half written apart would be escaped.
 */
function encodedWhole(text: RegExp, sse: string): string {
  let decoded = ''
  text.lastIndex = 0
  for (let match = text.exec(sse); match !== null; match = text.exec(sse)) decoded += decodedText(match[1]!)
  return JSON.stringify(decoded).slice(1, -1)
}

const BACKSLASH = 0x5c

/**
 * Whether `JSON.stringify` would write the text of this JSON string as it is: no escape in it, and nothing
 * that it escapes (control characters, and surrogates, which it escapes when alone).
 */
function writtenAsItIs(literal: string): boolean {
  for (let i = 1; i < literal.length - 1; i++) {
    const code = literal.charCodeAt(i)
    if (code < 0x20 || code === BACKSLASH || (code >= 0xd800 && code <= 0xdfff)) return false
  }
  return true
}

/**
 * A delta's text as `JSON.stringify` would write it, without quotes, from its JSON string literal;
 * `undefined` when it begins or ends with half a surrogate pair, which the next or previous delta may
 * complete.
 */
function encodedPiece(literal: string): string | undefined {
  if (writtenAsItIs(literal)) return literal.slice(1, -1)
  const text = decodedText(literal)
  const first = text.charCodeAt(0)
  const last = text.charCodeAt(text.length - 1)
  return isLowSurrogate(first) || isHighSurrogate(last) ? undefined : JSON.stringify(text).slice(1, -1)
}

/** The text of a JSON string literal; '' when its escapes are not JSON's. */
function decodedText(literal: string): string {
  // Most deltas hold no escape: their text is the literal without its quotes, no parse needed.
  if (!literal.includes('\\')) return literal.slice(1, -1)
  try {
    return JSON.parse(literal) as string
  } catch {
    return ''
  }
}

/** The last non-empty string that follows `key` (which ends with the value's opening quote); null if none. */
function lastStringValue(sse: string, key: string): string | null {
  for (let at = sse.lastIndexOf(key); at !== -1; at = at === 0 ? -1 : sse.lastIndexOf(key, at - 1)) {
    const from = at + key.length
    const end = sse.indexOf('"', from)
    if (end > from) return sse.slice(from, end)
  }
  return null
}

const BLANK_RUN = /\s*/y

/** How many events a body holds: its non-blank blocks between empty lines, counted without splitting it. */
function countEvents(sse: string): number {
  let events = 0
  for (let from = 0; from < sse.length; ) {
    const end = sse.indexOf('\n\n', from)
    const stop = end === -1 ? sse.length : end
    // Nearly every event begins with a field name, a printable ASCII character: no pattern run for it.
    const first = sse.charCodeAt(from)
    if (first > 0x20 && first < 0x7f) events++
    else if (from < stop) {
      BLANK_RUN.lastIndex = from
      BLANK_RUN.exec(sse)
      if (BLANK_RUN.lastIndex < stop) events++
    }
    from = stop + 2
  }
  return events
}

/** The grammar of streams from paths (query removed) matching `endpoint`; none for other paths. */
export function endpointStream(
  endpoint: RegExp,
  grammar: StreamGrammar,
): (path: string) => StreamGrammar | undefined {
  return (path) => (endpoint.test(splitQuery(path).path) ? grammar : undefined)
}

/** The JSON of every `data:` field in whole events (`[DONE]` and text that is not JSON left out), with its event name. */
export function dataOfEvents(events: string): { event: string | undefined; json: unknown }[] {
  return eventsOf(events)
    .map((event) => ({ event: event.event, json: parseData(event.data) }))
    .filter((event) => event.json !== undefined)
}

/**
 * Whether a `data:` field of whole events is not JSON (`[DONE]` aside): a provider's broken event, which
 * every dialect the gateway reads sends as JSON.
 */
export function hasMalformedData(events: string): boolean {
  try {
    for (const { data } of eventsOf(events)) if (data !== '[DONE]') JSON.parse(data)
    return false
  } catch {
    return true
  }
}

/** The first of the events' data that `read` finds a provider error in. */
export function firstError(
  events: string,
  read: (json: unknown, event: string | undefined) => ProviderError | undefined,
): ProviderError | undefined {
  for (const { event, json } of dataOfEvents(events)) {
    const error = read(json, event)
    if (error !== undefined) return error
  }
  return undefined
}

/** `{ error: { type | code | status, message } }`: OpenAI's error body and event, and Gemini's. */
export function nestedError(json: unknown): ProviderError | undefined {
  if (!isRecord(json) || !isRecord(json.error)) return undefined
  const { type, code, status, message } = json.error
  const name = [code, type, status].find((value) => typeof value === 'string' && value !== '')
  return { type: name as string | undefined, message: typeof message === 'string' ? message : undefined }
}

const PATH_MODEL = /\/models\/([^/:?]+)/

/**
 * The body's `model`, else a path's `models/{model}` (Gemini's `models/{model}:generateContent`, Hugging
 * Face's `/models/{model}`, OpenAI's `GET /models/{model}`).
 */
export function bodyOrPathModel(path: string, body: unknown): string | undefined {
  if (isRecord(body) && typeof body.model === 'string') return body.model
  return PATH_MODEL.exec(path)?.[1]
}

export function bodyStreams(_path: string, body: unknown): boolean {
  return isRecord(body) && body.stream === true
}

export function none(): undefined {
  return undefined
}

/**
 * A data URL's image type as Anthropic and Gemini name it: `image/jpg`, which clients write for JPEG files and
 * OpenAI reads, is `image/jpeg` to them (Anthropic refuses the other name, Gemini answers "Unsupported MIME
 * type").
 * @example imageMediaType('image/jpg') // 'image/jpeg'
 */
export function imageMediaType(declared: string): string {
  return declared.toLowerCase() === 'image/jpg' ? 'image/jpeg' : declared
}
