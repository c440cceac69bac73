/**
 * Guards an event stream as it flows, in the client's own dialect: the answer's text is read from each
 * event, DLP scans it through a bounded hold-back window (so a finding split over two events is caught
 * before any of it goes out), redactions are written back into the events, and guardrails classify the
 * text every `chunkChars` characters, holding what is not yet classified. A block ends the stream with the
 * dialect's terminal error event before the offending text reaches the client.
 *
 * Events that carry no answer text keep their place after the text before them: they wait in the same
 * queue. An event that is not text but has structure (a tool call, a finish) first releases what DLP held,
 * as text never continues across it, and is itself scanned whole, strings by JSON pointer.
 */
import type { Readable } from 'node:stream'
import { GatewayError } from '../errors.js'
import type { DialectText } from '../providers/dialects/text.js'
import type { BodyEnd } from '../upstream/body.js'
import { wrappedBody } from '../upstream/wrapped-body.js'
import {
  createStreamScanner,
  type DlpFinding,
  type DlpMask,
  type DlpStreamScanner,
  redactText,
} from './dlp/index.js'
import { type DlpCollector, scanJson } from './dlp-json.js'

export interface StreamGuard {
  readonly text: DialectText
  /** The dialect's terminal error event for a blocked stream; none cuts the stream instead. */
  readonly terminalEvent: (error: GatewayError) => string | undefined
  readonly dlp?:
    | { readonly collector: DlpCollector; readonly mask: DlpMask; readonly holdBackChars: number | undefined }
    | undefined
  /** Classifies answer text; resolves with the error that blocks it, or `undefined` to let it through. */
  readonly classify?: ((text: string) => Promise<GatewayError | undefined>) | undefined
  readonly chunkChars: number
  /** Most bytes of one event (the body's own cap); past it the stream fails. */
  readonly maxEventBytes: number
  /** Called once the stream is over, however it ended, before its body ends. */
  readonly onSettled?: (() => void) | undefined
}

const BOUNDARY = /\r\n\r\n|\n\n|\r\r/

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
    const { text: dialect, dlp } = guard
    let scanner: DlpStreamScanner | undefined
    // Where the current scanner began in the stream's text, and how much of it it released: each scanner
    // counts from 0, the record counts from the stream's start.
    let origin = 0
    let done = 0
    let template: { eventLine: string; json: unknown } | undefined
    const queue: string[] = []
    let unclassified = ''
    let pending = ''
    const newScanner = () =>
      dlp === undefined
        ? undefined
        : createStreamScanner(dlp.collector.check.compiled, {
            holdBackChars: dlp.holdBackChars,
            action: 'detect',
          })
    scanner = newScanner()

    /** Text DLP released, its findings counted, masked where a policy redacts. */
    const released = (output: { release: string; findings: DlpFinding[] }): string => {
      const { release } = output
      const start = done
      done += release.length
      if (dlp === undefined) return release
      const redact = dlp.collector.add(output.findings, '', origin)
      if (dlp.collector.blocks) stopped = new GatewayError('DLP_RESPONSE_BLOCKED')
      if (redact.length === 0) return release
      const local = redact.map((finding) => ({
        ...finding,
        start: Math.max(0, finding.start - start),
        end: Math.min(release.length, finding.end - start),
      }))
      return redactText(release, local, dlp.mask)
    }
    const queueText = (text: string) => {
      if (text === '' || template === undefined) return
      const json = dialect.withEventText(template.json, text)
      queue.push(`${template.eventLine}data: ${JSON.stringify(json)}\n\n`)
      unclassified += text
    }
    const pushText = (text: string) => {
      if (scanner === undefined) queueText(text)
      else queueText(released(scanner.push(text)))
    }
    const flushScanner = () => {
      if (scanner === undefined) return
      queueText(released(scanner.end()))
      origin += done
      done = 0
      scanner = newScanner()
    }
    /** Classifies what is queued when enough text is, or at the end; yields what may go out. */
    async function* drain(final: boolean): AsyncGenerator<Buffer> {
      if (stopped !== undefined) return
      if (guard.classify !== undefined && unclassified.length > 0) {
        if (!final && unclassified.length < guard.chunkChars) return
        const text = unclassified
        unclassified = ''
        stopped = await guard.classify(text)
        if (stopped !== undefined) return
      }
      if (queue.length === 0) return
      yield Buffer.from(queue.join(''))
      queue.length = 0
    }

    try {
      for await (const chunk of source) {
        pending += chunk.toString()
        for (;;) {
          const match = BOUNDARY.exec(pending)
          if (match === null) break
          const event = pending.slice(0, match.index)
          pending = pending.slice(match.index + match[0].length)
          handle(event)
          if (stopped !== undefined) break
        }
        if (pending.length > guard.maxEventBytes) {
          stopped = new GatewayError('RESPONSE_TOO_LARGE', `an event exceeded ${guard.maxEventBytes} bytes`)
        }
        if (stopped === undefined) yield* drain(false)
        if (stopped !== undefined) break
      }
      if (stopped === undefined) {
        if (pending.trim() !== '') handle(pending)
        flushScanner()
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

    function handle(event: string): void {
      const { data, eventLine } = parseEvent(event)
      let json: unknown
      if (data?.startsWith('{')) {
        try {
          json = JSON.parse(data)
        } catch {
          json = undefined
        }
      }
      const text = json === undefined ? undefined : dialect.eventText(json)
      // An event with empty text (a role chunk, a finish) is structure: it must go out, in its place.
      if (text !== undefined && text !== '') {
        template = { eventLine, json }
        pushText(text)
        return
      }
      if (json !== undefined && isKeepAlive(json)) {
        queue.push(`${event}\n\n`)
        return
      }
      // Not text: what DLP held goes first, then this event, its strings scanned whole.
      flushScanner()
      let out = event
      if (json !== undefined && dlp !== undefined) {
        const redacted = scanJson(dlp.collector, json, dlp.mask)
        if (dlp.collector.blocks) stopped = new GatewayError('DLP_RESPONSE_BLOCKED')
        if (redacted !== json) out = `${eventLine}data: ${JSON.stringify(redacted)}`
      }
      queue.push(`${out}\n\n`)
    }
  }

  return {
    body,
    outcome: () => (stopped === undefined ? sourceOutcome?.() : { complete: false, error: stopped }),
  }
}

/** An event's `event:` line (kept as it was) and its data, the `data:` lines joined. */
function parseEvent(event: string): { eventLine: string; data: string | undefined } {
  let eventLine = ''
  const data: string[] = []
  for (const line of event.split(/\r\n|\n|\r/)) {
    if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5))
    else if (line.startsWith('event:')) eventLine = `${line}\n`
  }
  return { eventLine, data: data.length === 0 ? undefined : data.join('\n') }
}

/** Anthropic's `ping`: carries nothing, and may come between two pieces of text without parting them. */
function isKeepAlive(json: unknown): boolean {
  return typeof json === 'object' && json !== null && (json as { type?: unknown }).type === 'ping'
}
