/**
 * Guards an event stream (server-sent events, or JSON lines) as it flows, in the client's own dialect: the
 * answer's text is read from each event, DLP scans it through a bounded hold-back window (so a finding split
 * over two events is caught before any of it goes out), redactions are written back into the events, and
 * guardrails classify the text every `chunkChars` characters (each chunk after the end of the one before),
 * holding what is not yet classified. A block ends the stream with the dialect's terminal error event before the offending text
 * reaches the client.
 *
 * Every event goes out once, in its place, with its own text: an event waits until DLP released all of its
 * text, and the events after it wait behind it. Only an event that ends the text (a tool call, a finish)
 * releases what DLP held, as text never continues across it; comments, pings, empty and reasoning deltas
 * may come between two pieces of a finding and part nothing (a comment goes out at once). Events other
 * than text are scanned whole, strings by JSON pointer, and so are a text event's other strings (a Gemini
 * function call's arguments beside its text).
 */
import type { Readable } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'
import { GatewayError } from '../errors.js'
import { stringifyProviderJson } from '../json.js'
import type { DialectText } from '../providers/dialects/text.js'
import { isLowSurrogate } from '../surrogates.js'
import type { ResponseLogEdit } from '../types.js'
import type { BodyEnd } from '../upstream/body.js'
import { wrappedBody } from '../upstream/wrapped-body.js'
import { defaultOverlapChars } from './classifiers/chunk.js'
import { DlpCollector, scanJson } from './dlp-json.js'
import { type DlpLane, DlpLanes, type StreamDlp } from './stream-dlp.js'

export interface StreamGuard {
  /** How the stream is cut into events: server-sent events, or JSON lines. */
  readonly framing: StreamFraming
  readonly text: DialectText
  /** The dialect's terminal error event for a blocked stream; none cuts the stream instead. */
  readonly terminalEvent: (error: GatewayError) => string | undefined
  readonly dlp?: StreamDlp | undefined
  /** Classifies answer text; resolves with the error that blocks it, or `undefined` to let it through. */
  readonly classify?: ((text: string) => Promise<GatewayError | undefined>) | undefined
  readonly chunkChars: number
  /** Most bytes of one event (the body's own cap); past it the stream fails. */
  readonly maxEventBytes: number
  /** Called once the stream is over, however it ended, before its body ends. */
  readonly onSettled?: (() => void) | undefined
  /**
   * Where the log's copy of the stream must differ from what is sent (findings DLP only flags), each edit
   * given as its event goes out, within the body's first `maxBytes`; `undefined` when no body is logged.
   */
  readonly logEdits?: { readonly maxBytes: number; add(edit: ResponseLogEdit): void } | undefined
}

/**
 * How a stream is cut into events and an event is written again. `parse` gives an event's data and the
 * lines kept before it (an SSE `event:` line), or `undefined` for one that carries nothing (a comment, a
 * blank line), which goes out at once.
 */
export interface StreamFraming {
  readonly boundary: RegExp
  /** What ends an event that goes out as it came. */
  readonly separator: string
  parse(event: string): { head: string; data: string | undefined } | undefined
  write(head: string, data: string): string
}

export const SSE_FRAMING: StreamFraming = {
  boundary: /\r\n\r\n|\n\n|\r\r/,
  separator: '\n\n',
  parse: (event) => (isComment(event) ? undefined : parseEvent(event)),
  write: (head, data) => `${head}data: ${data}\n\n`,
}

/** Newline-delimited JSON (`application/x-ndjson`), as Ollama's own API streams: an event per line. */
export const NDJSON_FRAMING: StreamFraming = {
  boundary: /\r?\n/,
  separator: '\n',
  parse: (line) => (line.trim() === '' ? undefined : { head: '', data: line }),
  write: (_head, data) => `${data}\n`,
}

/** The last line of a JSON-lines stream that failed: Ollama's own in-stream error, with the gateway's code. */
export function ndjsonTerminalEvent(error: GatewayError): string {
  return `${JSON.stringify({ error: error.message, code: error.code })}\n`
}

/** How a guarded answer's body is cut into events; `undefined` for a body read whole. */
export function framingOf(contentType: string | undefined, streamed: boolean): StreamFraming | undefined {
  if (contentType === undefined) return undefined
  // An SSE body always arrives as a stream; JSON lines of a known, small length arrive whole, read already.
  if (streamed && /event-stream/i.test(contentType)) return SSE_FRAMING
  return /^application\/(?:x-)?ndjson\b/i.test(contentType) ? NDJSON_FRAMING : undefined
}

/** An event on its way out: answer text waits until DLP released all of it. */
interface Waiting {
  /** As it came, and as it goes out when nothing in it changed. */
  readonly event: string
  /** The event as logged, where a finding DLP only flags is masked. */
  readonly logged?: string | undefined
  readonly text?: EventText | undefined
}

/** An event's answer text, and where it ends in its lane: no lane without DLP. */
interface EventText {
  readonly original: string
  readonly lane: DlpLane | undefined
  readonly end: number
  readonly head: string
  /** The event's data, its other strings masked where a policy redacts them. */
  readonly json: unknown
  /** Some other string of the event was masked: it is written again even when its text is not. */
  readonly othersMasked: boolean
  /** The event's data as logged, its other strings masked wherever DLP found something. */
  readonly othersLogged: unknown
}

/**
 * Events other than text (a tool call's arguments, pings) that may wait behind text not yet classified, and
 * their characters: past either, that text is classified as it is, shorter than a chunk, so they flow.
 */
const MAX_HELD_EVENTS = 16
const MAX_HELD_CHARS = 64 * 1024

/**
 * The guarded body, and how it ended: the source's own outcome, unless the guard stopped it.
 *
 * @example
 * const guarded = guardStream(response.body, response.outcome, guard)
 * ctx.response = { ...response, body: guarded.body, outcome: guarded.outcome }
 */
export function guardStream(
  source: Readable,
  sourceOutcome: (() => BodyEnd | undefined) | undefined,
  guard: StreamGuard,
): { body: Readable; outcome: () => BodyEnd | undefined } {
  let stopped: GatewayError | undefined
  const body = wrappedBody(run(), source, { objectMode: false })

  async function* run(): AsyncGenerator<Buffer> {
    try {
      yield* guarded()
    } finally {
      // Before the body ends: its record is built once it did, and must see every finding.
      guard.onSettled?.()
    }
  }

  async function* guarded(): AsyncGenerator<Buffer> {
    const { text: dialect, dlp, framing } = guard
    const lanes = dlp === undefined ? undefined : new DlpLanes(dlp)
    const waiting: Waiting[] = []
    const queue: string[] = []
    /** The logged copies of queued events that differ from what is sent, by their place in the queue. */
    const loggedAt = new Map<number, string>()
    let sentBytes = 0
    let unclassified = ''
    let pending = ''

    /** Ends the text of an answer (of all, for `undefined`): what DLP held of it is released. */
    const endText = (lane: number | undefined) => {
      lanes?.end(lane)
      if (dlp?.collector.blocks) stopped ??= new GatewayError('DLP_RESPONSE_BLOCKED')
    }
    /** An event with its text masked where a policy redacts; as it came when nothing was. */
    const queueText = (event: string, taken: EventText) => {
      const { original, lane, end, head, json, othersMasked, othersLogged } = taken
      const { text, logged } = lane === undefined ? { text: original, logged: undefined } : lane.take(end)
      const write = (data: unknown, words: string) =>
        framing.write(head, stringifyProviderJson(dialect.withEventText(data, words)))
      if (guard.logEdits !== undefined && (logged !== undefined || othersLogged !== undefined)) {
        loggedAt.set(queue.length, write(othersLogged ?? json, logged ?? text))
      }
      queue.push(text === original && !othersMasked ? event : write(json, text))
      unclassified += text
    }
    /** Moves the events at the head whose text DLP released to the queue, in order; none once stopped. */
    const releaseWaiting = () => {
      if (stopped !== undefined) return
      let ready = 0
      while (ready < waiting.length) {
        const { text } = waiting[ready]!
        if (text?.lane !== undefined && !text.lane.isReleased(text.end)) break
        ready++
      }
      for (const entry of waiting.splice(0, ready)) {
        if (entry.text !== undefined) queueText(entry.event, entry.text)
        else {
          if (entry.logged !== undefined) loggedAt.set(queue.length, entry.logged)
          queueEvent(entry.event)
        }
      }
    }
    // Each chunk is classified after the end of the one before, as long text is (`splitText`): a word cut
    // where one chunk ended is seen whole once.
    const overlapChars = defaultOverlapChars(guard.chunkChars)
    let classifiedTail = ''
    let heldEvents = 0
    let heldChars = 0
    /** Queues an event that is not text, counting it when it waits behind text not yet classified. */
    const queueEvent = (event: string) => {
      queue.push(event)
      if (unclassified === '') return
      heldEvents++
      heldChars += event.length
    }
    const holdsTooMuch = () => heldEvents >= MAX_HELD_EVENTS || heldChars >= MAX_HELD_CHARS
    /**
     * Classifies what is queued when enough text is, when too much waits behind it, or at the end; yields
     * what may go out.
     */
    async function* drain(final: boolean): AsyncGenerator<Buffer> {
      if (stopped !== undefined) return
      if (guard.classify !== undefined && unclassified.length > 0) {
        if (!final && unclassified.length < guard.chunkChars && !holdsTooMuch()) return
        const text = classifiedTail + unclassified
        classifiedTail = tailOf(text, overlapChars)
        unclassified = ''
        heldEvents = 0
        heldChars = 0
        stopped = await guard.classify(text)
        if (stopped !== undefined) return
      }
      if (queue.length === 0) return
      const chunk = Buffer.from(queue.join(''))
      if (loggedAt.size > 0) noteLogEdits(chunk)
      queue.length = 0
      sentBytes += chunk.length
      yield chunk
    }
    /** Hands on where the logged copy of the events in `chunk`, about to be sent, differs from it. */
    const noteLogEdits = (chunk: Buffer) => {
      let at = 0
      for (const [index, event] of queue.entries()) {
        const length = Buffer.byteLength(event)
        const logged = loggedAt.get(index)
        if (logged !== undefined && sentBytes + at + length <= guard.logEdits!.maxBytes) {
          const original = chunk.subarray(at, at + length)
          guard.logEdits!.add({ at: sentBytes + at, original, replacement: Buffer.from(logged) })
        }
        at += length
      }
      loggedAt.clear()
    }

    try {
      // A character may be cut between two chunks (JSON lines come as the provider's bytes came).
      const decoder = new StringDecoder('utf8')
      for await (const chunk of source) {
        pending += typeof chunk === 'string' ? chunk : decoder.write(chunk)
        for (;;) {
          const match = framing.boundary.exec(pending)
          if (match === null) break
          const event = pending.slice(0, match.index)
          pending = pending.slice(match.index + match[0].length)
          stopOn(() => handle(event))
          if (stopped !== undefined) break
        }
        if (pending.length > guard.maxEventBytes) {
          stopped = new GatewayError('RESPONSE_TOO_LARGE', `an event exceeded ${guard.maxEventBytes} bytes`)
        }
        if (stopped === undefined) yield* drain(false)
        if (stopped !== undefined) break
      }
      if (stopped === undefined) {
        pending += decoder.end()
        stopOn(() => {
          if (pending.trim() !== '') handle(pending)
          endText(undefined)
          releaseWaiting()
        })
        yield* drain(true)
      }
    } finally {
      // Leaving early (a block, the client gone) stops reading from the provider.
      if (stopped !== undefined || !source.readableEnded) source.destroy()
    }
    if (stopped !== undefined) {
      const tail = guard.terminalEvent(stopped)
      if (tail !== undefined) yield Buffer.from(tail)
      else throw stopped
    }

    /**
     * Runs a step of the reading; an event the guard cannot write again (nested too deeply, 2115) stops the
     * stream with the terminal event, as a block does, rather than cut it.
     */
    function stopOn(read: () => void): void {
      try {
        read()
      } catch (error) {
        if (!(error instanceof GatewayError)) throw error
        stopped ??= error
      }
    }

    function handle(event: string): void {
      // A comment (a keep-alive) carries nothing: it goes out at once, ahead of text DLP holds, so that it
      // still keeps the connection alive.
      const parsed = framing.parse(event)
      if (parsed === undefined) {
        queueEvent(`${event}${framing.separator}`)
        return
      }
      const { data, head } = parsed
      let json: unknown
      if (data?.startsWith('{')) {
        try {
          json = JSON.parse(data)
        } catch {
          json = undefined
        }
      }
      const text = json === undefined ? undefined : dialect.eventText(json)
      // Data that is not JSON carries no text and ends none.
      const ends = json !== undefined && dialect.endsText(json)
      if (text !== undefined && text !== '') {
        const lane = lanes?.lane(dialect.eventLane(json) ?? 0)
        const end = lane?.push(text) ?? 0
        const others = othersScanned(json)
        waiting.push({
          event: `${event}${framing.separator}`,
          text: {
            original: text,
            lane,
            end,
            head,
            json: others?.sent ?? json,
            othersMasked: others?.sent !== undefined,
            othersLogged: others?.logged,
          },
        })
        // Its own text is the last before the end: the event goes out whole.
        if (ends) endText(dialect.eventLane(json))
      } else {
        // What DLP held before the end goes out first: the event waits behind it.
        if (ends) endText(dialect.eventLane(json))
        waiting.push(scannedWhole(event, head, json))
      }
      if (dlp?.collector.blocks) stopped ??= new GatewayError('DLP_RESPONSE_BLOCKED')
      releaseWaiting()
    }

    /**
     * The strings of a text event other than its text (a Gemini function call's arguments beside it), each
     * scanned whole as an event without text is: the event with them masked, or `undefined` when none was.
     * Its text is left in place, for the lane to mask.
     */
    function othersScanned(json: unknown): { sent: unknown; logged: unknown } | undefined {
      if (dlp === undefined) return undefined
      const blank = dialect.withEventText(json, '')
      const { sent, logged } = scanned(blank)
      return { sent: sent === blank ? undefined : sent, logged }
    }

    /** An event that is not text, its strings scanned whole; with its logged copy where that differs. */
    function scannedWhole(event: string, head: string, json: unknown): Waiting {
      if (json === undefined || dlp === undefined) return { event: `${event}${framing.separator}` }
      const { sent, logged } = scanned(json)
      return {
        event:
          sent === json ? `${event}${framing.separator}` : framing.write(head, stringifyProviderJson(sent)),
        logged: logged === undefined ? undefined : framing.write(head, stringifyProviderJson(logged)),
      }
    }

    /**
     * `json` with its strings masked where a policy redacts, and, when a policy only flagged something in
     * it and the body is logged, as the log keeps it: every finding masked.
     */
    function scanned(json: unknown): { sent: unknown; logged: unknown } {
      const { collector, mask } = dlp!
      const flags = collector.flags
      const sent = scanJson(collector, json, mask)
      if (collector.flags === flags || guard.logEdits === undefined) return { sent, logged: undefined }
      const again = new DlpCollector(collector.check, collector.name)
      return { sent, logged: scanJson(again, json, mask, { maskAll: true }) }
    }
  }

  return {
    body,
    outcome: () => (stopped === undefined ? sourceOutcome?.() : { complete: false, error: stopped }),
  }
}

/** An event of comment lines only. */
function isComment(event: string): boolean {
  return event.split(/\r\n|\n|\r/).every((line) => line === '' || line.startsWith(':'))
}

/** An event's `event:` line (kept as it was) and its data, the `data:` lines joined. */
function parseEvent(event: string): { head: string; data: string | undefined } {
  let eventLine = ''
  const data: string[] = []
  for (const line of event.split(/\r\n|\n|\r/)) {
    if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5))
    else if (line.startsWith('event:')) eventLine = `${line}\n`
  }
  return { head: eventLine, data: data.length === 0 ? undefined : data.join('\n') }
}

/** The last `chars` characters of `text`, never starting inside a surrogate pair. */
function tailOf(text: string, chars: number): string {
  let start = Math.max(0, text.length - chars)
  if (start > 0 && isLowSurrogate(text.charCodeAt(start))) start--
  return text.slice(start)
}
