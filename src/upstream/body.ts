import { performance } from 'node:perf_hooks'
import { Readable, type Transform } from 'node:stream'
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib'
import { GatewayError } from '../errors.js'
import { hasMalformedData } from '../providers/dialects/common.js'
import { dialectOf } from '../providers/dialects/index.js'
import type { ProviderError, StreamGrammar } from '../providers/dialects/types.js'
import type { Dialect } from '../providers/types.js'
import type { Scrubber } from '../secrets.js'
import { ChunkList } from './chunks.js'
import { asReadable, type BodySource } from './source.js'
import { ERROR, FINISH, markersOf, type StreamMarkers, TERMINATOR, USAGE } from './stream-markers.js'
import { BLANK_LINES, eventEnd, lastEventEnd, UsageEvents, withoutUsage } from './stream-usage.js'

/**
 * How a streamed body ended, as the module that carried it judged: complete only when the source ended
 * normally and, for streams whose last event is known, that event came. A cut, stalled, oversized or
 * abandoned stream is never complete.
 */
export type BodyEnd = { readonly complete: true } | { readonly complete: false; readonly error: GatewayError }

/** What an upstream body is allowed to be, and what the gateway does to it on its way to the client. */
export interface BodyPolicy {
  /** Server-sent events: only whole events go out, each capped; failures end with a terminal event. */
  readonly events: boolean
  /**
   * The dialect whose terminal error event ends a failed event stream. Without one a failure is passed on
   * as a stream error (the reader decides: a translation writes its own event, the client bridge cuts the
   * connection).
   */
  readonly terminalDialect: Dialect | undefined
  /**
   * What the provider's events say, when the gateway knows its dialect and endpoint: where the answer
   * begins, whether it finished, and in-band errors. Without one a stream is complete when its body ends.
   */
  readonly grammar: StreamGrammar | undefined
  /**
   * The client reads the provider's own events (no translation): a stream that finished without its
   * terminator is given one, and completeness is judged here. A translated stream is judged by its
   * translator.
   */
  readonly judgesEnd: boolean
  /** The client asked for usage, which comes after the finish: its stream is complete only with it. */
  readonly usageExpected: boolean
  /** Take out the usage the gateway asked for on the client's behalf (`stream_options.include_usage`). */
  readonly hideUsage: boolean
  /** Keep the events that carry usage, for `usageText` (event streams). */
  readonly keepUsage: boolean
  readonly scrubber: Scrubber | undefined
  /** Most bytes the whole body may carry. */
  readonly maxBytes: number
  /** Most bytes one event may carry (event streams). */
  readonly maxEventBytes: number
  /** How long the reader may leave a full buffer unread before the body is given up as abandoned. */
  readonly writeStallMs: number
}

/**
 * When a held stream is committed to the client (`UpstreamBody.hold`). Until then nothing has reached the
 * client, so any failure can still be retried or fall back as if the stream had never begun.
 */
export interface CommitRule {
  /** Hold the whole answer, and commit it once it completed (or `maxHeldBytes` is held). */
  readonly whole: boolean
  /** Once the answer began, hold it this much longer (0: commit as it begins). */
  readonly holdMs: number
  /** Commit once this many bytes are held, whatever else: a held stream's memory stays bounded. */
  readonly maxHeldBytes: number
  /** Give up with `UPSTREAM_FIRST_TOKEN_TIMEOUT` unless the answer began this soon; no clock when undefined. */
  readonly firstTokenMs: number | undefined
}

interface Holding {
  readonly rule: CommitRule
  readonly resolve: () => void
  readonly reject: (error: GatewayError) => void
  began: boolean
  // What the client is to get once committed: kept here rather than pushed, so that it costs memory by its
  // bytes, not by the batches it came in.
  readonly held: ChunkList
  clock: NodeJS.Timeout | undefined
}

/**
 * An upstream body from its first byte to its end: the one place that decides how a provider's stream
 * reaches the client. It listens for the source's errors from the moment it exists, applies the size caps
 * and the write-stall clock, cancels the upstream call (`cancel`) when it gives up, forwards only whole
 * events of an event stream (so secrets are scrubbed and usage hidden without a second parse), and ends a
 * failed event stream with the dialect's terminal error event. How it ended is `outcome`.
 *
 * `ahead` is what was read before committing to the answer. Nothing more is read from the source until the
 * body is first read or held (`hold`): a watcher added before that (`watchSource`) sees every byte.
 */
export class UpstreamBody extends Readable {
  readonly #source: BodySource
  readonly #policy: BodyPolicy
  readonly #cancel: (error: GatewayError) => void
  readonly #explain: (error: unknown) => GatewayError
  #ahead: readonly Buffer[]
  #sourceEnded: boolean
  #watchers: ((chunk: Buffer) => void)[] = []
  // An event stream's current, unfinished event; a plain stream's scrubber holds its own tail.
  #pending = new ChunkList()
  #plainScrub: ReturnType<Scrubber['stream']> | undefined
  // The grammar's marker search, looked up once rather than for every batch of events.
  readonly #markers: StreamMarkers | undefined
  readonly #usage: UsageEvents | undefined
  #total = 0
  #endSeen = false
  #finishSeen = false
  #usageSeen = false
  #started = false
  #outcome: BodyEnd | undefined
  #stall: NodeJS.Timeout | undefined
  #holding: Holding | undefined
  // What the events being transformed say went wrong (an in-band error event, or, while held, a broken
  // event), for `#onData` to act on once they went out.
  #eventError: GatewayError | undefined
  #answerBeganAt: number | undefined

  constructor(
    source: BodySource,
    ahead: ReadAhead,
    policy: BodyPolicy,
    control: { cancel: (error: GatewayError) => void; explain: (error: unknown) => GatewayError },
  ) {
    super()
    this.#source = source
    this.#ahead = ahead.chunks
    this.#sourceEnded = ahead.ended || source.readableEnded
    this.#policy = policy
    this.#cancel = control.cancel
    this.#explain = control.explain
    if (!policy.events && policy.scrubber !== undefined) this.#plainScrub = policy.scrubber.stream()
    // The markers' pass looks for usage objects only where they are wanted (kept for the log, or awaited by
    // a client that asked for them), and not in a stream whose usage is found as it is cut out.
    const findsUsage = !policy.hideUsage && (policy.keepUsage || policy.usageExpected)
    this.#markers = policy.grammar === undefined ? undefined : markersOf(policy.grammar, findsUsage)
    if (policy.events && policy.keepUsage) this.#usage = new UsageEvents()
    source.on('error', this.#onError)
    // A paused stream may still announce its end once its buffer is empty: listen from now on.
    source.once('end', () => {
      this.#sourceEnded = true
      if (this.#started) this.#onEnd()
    })
  }

  /** How the body ended, once it did; `undefined` while it flows (and for one abandoned before it began). */
  get outcome(): BodyEnd | undefined {
    return this.#outcome
  }

  /**
   * `performance.now()` when a held stream's answer began (its first token, by the grammar), or
   * `undefined`: the body was not held, or was committed before its answer began.
   */
  get answerBeganAt(): number | undefined {
    return this.#answerBeganAt
  }

  /**
   * Calls `watcher` with every byte the provider sent, before any change the gateway makes (it may keep
   * them: they are not changed afterwards either). `false` when the body had begun to be read (or held):
   * the watcher would see only the rest, and is not added.
   */
  watchSource(watcher: (chunk: Buffer) => void): boolean {
    if (this.#started) return false
    this.#watchers.push(watcher)
    return true
  }

  /**
   * Reads the stream ahead of the client, holding what it sends, until `rule` commits it: the answer began
   * (and, by the rule, was held long enough, or completed). Rejects, with nothing sent, when the stream
   * failed before that: a cut, a stall, an in-band error, the first-token clock. The body is then destroyed.
   */
  hold(rule: CommitRule): Promise<void> {
    return new Promise((resolve, reject) => {
      const holding: Holding = {
        rule,
        resolve,
        reject,
        began: false,
        held: new ChunkList(),
        clock: undefined,
      }
      this.#holding = holding
      const { firstTokenMs } = rule
      if (firstTokenMs !== undefined) {
        holding.clock = setTimeout(() => {
          this.#giveUp(
            new GatewayError('UPSTREAM_FIRST_TOKEN_TIMEOUT', `no answer began within ${firstTokenMs} ms`),
          )
        }, firstTokenMs)
      }
      this.#begin()
    })
  }

  override _read(): void {
    this.#clearStall()
    if (this.#started) this.#source.resume()
    else this.#begin()
  }

  #begin(): void {
    this.#started = true
    const ahead = this.#ahead
    this.#ahead = []
    for (const chunk of ahead) this.#onData(chunk)
    if (this.#outcome !== undefined) return
    if (this.#sourceEnded) {
      this.#onEnd()
      return
    }
    this.#source.on('data', this.#onData)
    this.#source.resume()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#clearStall()
    // Every stream is destroyed once it ended (autoDestroy): only one that had not, was given up.
    if (this.#outcome === undefined) {
      this.#settle({
        complete: false,
        error: error ? this.#explain(error) : new GatewayError('CLIENT_CLOSED'),
      })
    }
    // Stop reading: this is what cancels the upstream call when the client goes away.
    this.#source.destroy()
    callback(error)
  }

  #onData = (chunk: Buffer): void => {
    if (this.#outcome !== undefined) return
    for (const watcher of this.#watchers) watcher(chunk)
    this.#total += chunk.length
    if (this.#total > this.#policy.maxBytes) {
      this.#giveUp(
        new GatewayError('RESPONSE_TOO_LARGE', `the answer exceeded ${this.#policy.maxBytes} bytes`),
      )
      return
    }
    const out = this.#policy.events ? this.#events(chunk) : this.#plain(chunk)
    const inBand = this.#eventError
    // Before the commit, an in-band error is a failure like any other: nothing of this stream is sent.
    if (inBand !== undefined && this.#beforeCommit()) {
      this.#giveUp(inBand)
      return
    }
    if (out !== undefined && out.length > 0) {
      const holding = this.#holding
      // A held stream keeps reading: the commit rule bounds what it holds.
      if (holding !== undefined) holding.held.push(out)
      else if (!this.push(out)) {
        this.#source.pause()
        this.#startStall()
      }
    }
    // The client has the provider's error event in its own words: the stream ends there, as failed.
    if (inBand !== undefined) this.#endFailed(inBand)
    else if (this.#holding !== undefined) this.#commitIfDue()
  }

  /** Commits a held stream once its rule is met; see `CommitRule`. */
  #commitIfDue(): void {
    const holding = this.#holding!
    const { rule } = holding
    if (holding.held.size >= rule.maxHeldBytes) this.#commit()
    else if (holding.began && commitsAtStart(rule)) this.#commit()
  }

  /**
   * Whether the stream is held and what came so far can still be taken back: not when the last batch
   * began an answer committed at its start (what followed in it is past the commit; see `#read`).
   */
  #beforeCommit(): boolean {
    const holding = this.#holding
    return holding !== undefined && !(holding.began && commitsAtStart(holding.rule))
  }

  #answerBegan(): void {
    const holding = this.#holding!
    holding.began = true
    this.#answerBeganAt = performance.now()
    clearTimeout(holding.clock)
    holding.clock = undefined
    const { whole, holdMs } = holding.rule
    if (whole || holdMs === 0) return
    holding.clock = setTimeout(() => this.#commit(), holdMs)
  }

  #commit(): void {
    const holding = this.#holding
    if (holding === undefined) return
    clearTimeout(holding.clock)
    this.#holding = undefined
    for (const piece of holding.held.pieces()) this.push(piece)
    holding.resolve()
  }

  /**
   * What a stream's usage is read from: the provider's events that carry it, before any change the gateway
   * makes (`keepUsage`). `undefined` when they were not kept.
   */
  usageText(): string | undefined {
    return this.#usage?.text()
  }

  /**
   * Whole events only: a chunk's unfinished last event waits for the rest of it. Each chunk is decoded once
   * as latin1, whose offsets are its bytes', and every search of the batch (its end, the grammar's markers,
   * usage, secrets) is a string search on that text, the markers and usage in one pass: a Buffer search is a
   * native call and a scan per needle.
   */
  #events(chunk: Buffer): Buffer | undefined {
    const text = chunk.toString('latin1')
    const boundary = lastBoundary(text, chunk, this.#pending)
    if (boundary === -1) {
      this.#hold(chunk)
      return undefined
    }
    let complete = boundary === chunk.length ? chunk : chunk.subarray(0, boundary)
    let completeText = boundary === chunk.length ? text : text.slice(0, boundary)
    if (this.#pending.count > 0) {
      this.#pending.push(complete)
      complete = Buffer.concat(this.#pending.pieces(), this.#pending.size)
      completeText = complete.toString('latin1')
      this.#pending = new ChunkList()
    }
    if (boundary < chunk.length) this.#hold(chunk.subarray(boundary))
    return this.#transform(complete, completeText)
  }

  #hold(bytes: Buffer): void {
    this.#pending.push(bytes)
    if (this.#pending.size > this.#policy.maxEventBytes) {
      this.#giveUp(
        new GatewayError('RESPONSE_TOO_LARGE', `an event exceeded ${this.#policy.maxEventBytes} bytes`),
      )
    }
  }

  /** What is held of an unfinished event, as one batch; `undefined` when nothing is. */
  #takePending(): Buffer | undefined {
    const pending = this.#pending
    if (pending.count === 0) return undefined
    this.#pending = new ChunkList()
    return pending.size > 0 ? Buffer.concat(pending.pieces(), pending.size) : undefined
  }

  #transform(events: Buffer, text: string): Buffer {
    const { grammar, hideUsage, scrubber } = this.#policy
    // The markers' pass finds the usage events too; a stream of no known grammar is searched for them alone,
    // one whose usage is hidden where it is cut out.
    if (grammar !== undefined) this.#read(events, text, grammar, this.#markers!)
    else if (!hideUsage) this.#usage?.push(text)
    let out = events
    if (scrubber !== undefined) {
      out = scrubber.scrubLatin1(events, text)
      // Rare (a secret in the stream): the next search needs the text of what is left.
      if (out !== events) text = out.toString('latin1')
    }
    if (!hideUsage) return out
    // Usage is cut in place, which a watcher may not see: it was promised the provider's bytes as they came.
    if (out === events && this.#watchers.length > 0) out = Buffer.from(events)
    return withoutUsage(out, text, this.#usage)
  }

  /** What whole events say about the answer: its beginning, its finish, its end, an in-band error. */
  #read(events: Buffer, text: string, grammar: StreamGrammar, markers: StreamMarkers): void {
    const found = markers.scan(text, this.#usage)
    // Whether the stream so far ends with its last event; blank lines after it change nothing.
    if (found & TERMINATOR) this.#endSeen = true
    else if (!isBlank(text)) this.#endSeen = false
    if (found & FINISH) this.#finishSeen = true
    if (found & USAGE) this.#usageSeen = true
    const holding = this.#holding
    const flagged = (found & ERROR) !== 0
    if (holding === undefined) {
      if (flagged) this.#inBand(grammar.inBandError(events.toString()))
      return
    }
    // Held, a broken event can still be taken back: the attempt fails, and a retry may save the answer.
    // After the commit each event is relayed unread, as the client's own parser would have it. A batch that
    // begins an answer committed at its start is read as two: up to the event that begins it, still held,
    // and what follows, past the commit, however the provider's bytes were split into batches.
    const start = holding.began ? -1 : grammar.answerStart(text)
    const held = start !== -1 && commitsAtStart(holding.rule) ? eventEnd(text, start) : text.length
    const heldText = events.toString('utf8', 0, held)
    if (flagged && this.#inBand(grammar.inBandError(heldText))) return
    if (hasMalformedData(heldText)) {
      this.#eventError = new GatewayError('INVALID_PROVIDER_RESPONSE', "an event's data is not JSON")
      return
    }
    if (start !== -1) this.#answerBegan()
    if (flagged && held < text.length) this.#inBand(grammar.inBandError(events.toString('utf8', held)))
  }

  /**
   * Keeps the provider's in-band error, if there is one, as the stream's; whether there was. It is read from
   * the provider's own bytes: scrubbed here, since the error (its `cause` too) goes to `onError`, the events
   * and the log.
   */
  #inBand(found: ProviderError | undefined): boolean {
    if (found === undefined) return false
    const { scrubber } = this.#policy
    const error = scrubber === undefined ? found : scrubbedError(found, scrubber)
    const message = error.message === undefined ? error.type : `${error.type}: ${error.message}`
    this.#eventError = new GatewayError('UPSTREAM_STREAM_ERROR', message, { cause: error })
    return true
  }

  /** Whether the stream, as far as it came, is a whole answer: see `StreamGrammar`. */
  #complete(): boolean {
    if (this.#policy.grammar === undefined || this.#endSeen) return true
    return this.#finishSeen && (this.#usageSeen || !this.#policy.usageExpected)
  }

  #plain(chunk: Buffer): Buffer {
    return this.#plainScrub === undefined ? chunk : this.#plainScrub.push(chunk)
  }

  #onEnd = (): void => {
    if (this.#outcome !== undefined) return
    let rest: Buffer | undefined
    if (this.#policy.events) {
      // What follows the last blank line: a client drops an unfinished event at the end, but it may still
      // hold the last event's text.
      const pending = this.#takePending()
      if (pending !== undefined) rest = this.#transform(pending, pending.toString('latin1'))
    } else rest = this.#plainScrub?.end()
    const inBand = this.#eventError
    if (inBand !== undefined) {
      if (this.#beforeCommit()) this.#fail(inBand)
      else this.#endFailed(inBand, rest)
      return
    }
    const { grammar, judgesEnd, terminalDialect } = this.#policy
    if (!this.#complete()) {
      const error = new GatewayError('UPSTREAM_INTERRUPTED', 'the stream ended before its last event')
      if (this.#holding !== undefined || !judgesEnd) {
        // Nothing was sent yet (a retry may still save the answer), or a translator judges the end.
        if (this.#holding !== undefined) this.#fail(error)
        else this.#finish({ complete: false, error }, rest)
        return
      }
      const tail = terminalDialect === undefined ? undefined : dialectOf(terminalDialect).terminalEvent(error)
      this.#finish({ complete: false, error }, tail ?? rest)
      return
    }
    // Finished, but without its terminator: the client gets it, so that it reads a complete stream.
    const closing = judgesEnd && !this.#endSeen ? grammar?.closing : undefined
    this.#finish({ complete: true }, closing === undefined ? rest : joined(rest, closing))
  }

  /** Ends the client's stream with `last`, settled as `outcome`; a held one is committed whole. */
  #finish(outcome: BodyEnd, last: Buffer | string | undefined): void {
    this.#settle(outcome)
    this.#commit()
    if (last !== undefined && last.length > 0) this.push(last)
    this.push(null)
  }

  /**
   * Ends a committed stream after the provider's in-band error event, which the client already has (in its
   * own dialect, or for a translator to turn into one): no more is read, and the answer is a failure.
   */
  #endFailed(error: GatewayError, rest?: Buffer): void {
    this.#cancel(error)
    this.#source.off('data', this.#onData)
    this.#source.destroy()
    this.#finish({ complete: false, error }, rest)
  }

  #onError = (error: unknown): void => {
    this.#fail(this.#explain(error))
  }

  /** Gives up on the provider: cancels its call, then ends the client's stream as `#fail` does. */
  #giveUp(error: GatewayError): void {
    this.#cancel(error)
    this.#source.destroy()
    this.#fail(error)
  }

  /**
   * The source failed: an event stream ends with its terminal event (what was held of an unfinished event
   * is dropped, so the terminal event is parsed on its own); anything else fails as a stream error, which
   * cuts the client's connection so that a cut answer can never look complete.
   */
  #fail(error: GatewayError): void {
    if (this.#outcome !== undefined || this.destroyed) return
    this.#settle({ complete: false, error })
    this.#source.off('data', this.#onData)
    // A cut stream's usage is read as far as it came: its unfinished last event may hold it.
    const pending = this.#takePending()
    if (pending !== undefined) this.#usage?.push(pending.toString('latin1'))
    const holding = this.#holding
    if (holding !== undefined) {
      // Nothing reached the client: the attempt failed as if the stream never began.
      clearTimeout(holding.clock)
      this.#holding = undefined
      holding.reject(error)
      this.destroy()
      return
    }
    const { events, terminalDialect } = this.#policy
    const tail =
      events && terminalDialect !== undefined ? dialectOf(terminalDialect).terminalEvent(error) : undefined
    if (tail === undefined) {
      this.destroy(error)
      return
    }
    this.push(tail)
    this.push(null)
  }

  #settle(outcome: BodyEnd): void {
    this.#outcome ??= outcome
  }

  #startStall(): void {
    if (this.#stall !== undefined) return
    const { writeStallMs } = this.#policy
    this.#stall = setTimeout(() => {
      this.#stall = undefined
      this.destroy(new GatewayError('CLIENT_CLOSED', `the client read nothing for ${writeStallMs} ms`))
    }, writeStallMs)
    this.#stall.unref()
  }

  #clearStall(): void {
    if (this.#stall === undefined) return
    clearTimeout(this.#stall)
    this.#stall = undefined
  }
}

/** Whether the rule commits a held stream as soon as its answer begins. */
function commitsAtStart(rule: CommitRule): boolean {
  return !rule.whole && rule.holdMs === 0
}

function scrubbedError(error: ProviderError, scrubber: Scrubber): ProviderError {
  const { type, message } = error
  return {
    type: type === undefined ? undefined : scrubber.scrubText(type),
    message: message === undefined ? undefined : scrubber.scrubText(message),
  }
}

function joined(rest: Buffer | undefined, text: string): Buffer {
  return rest === undefined || rest.length === 0
    ? Buffer.from(text)
    : Buffer.concat([rest, Buffer.from(text)])
}

function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code !== 0x0a && code !== 0x0d) return false
  }
  return true
}

/**
 * The index just past the last blank line (the end of an event) in `chunk` (`text` is its latin1 text), or
 * -1. A blank line split between what is `held` and this chunk counts, however many pieces the held part
 * came in (`\r\n\r\n` may come a byte at a time).
 */
function lastBoundary(text: string, chunk: Buffer, held: ChunkList): number {
  const end = lastEventEnd(text)
  if (end !== -1) return end
  if (held.size === 0 || chunk.length === 0) return -1
  // At most three bytes on each side can make up a split blank line.
  const previous = held.tail(3)
  const seam = Buffer.concat([previous, chunk.subarray(0, 3)]).toString('latin1')
  const before = previous.length
  for (const blank of BLANK_LINES) {
    const at = seam.lastIndexOf(blank)
    if (at !== -1 && at + blank.length > before) return at + blank.length - before
  }
  return -1
}

/**
 * The provider's body as plain bytes: its codings (`gzip`, `deflate`, `br`, one or several) are undone, the
 * last applied first (their output counted by the caps like any other byte). `undefined` when one of them
 * is a coding the gateway does not read.
 */
export function decoded(source: BodySource, encoding: string | undefined): BodySource | undefined {
  if (encoding === undefined) return source
  const codings = encoding
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity')
  if (codings.length === 0) return source
  if (!codings.every((coding) => DECODERS.has(coding))) return undefined
  let from = asReadable(source)
  for (const coding of codings.reverse()) {
    const decoder = DECODERS.get(coding)!()
    const upstream = from
    upstream.on('error', (error) => decoder.destroy(error))
    decoder.once('close', () => upstream.destroy())
    upstream.pipe(decoder)
    from = decoder
  }
  // A decoder flows once it has a `data` listener; a source only once resumed, as `BodySource` promises.
  from.pause()
  return from
}

const DECODERS = new Map<string, () => Transform>([
  ['gzip', createGunzip],
  ['x-gzip', createGunzip],
  ['deflate', createInflate],
  ['br', createBrotliDecompress],
])

/** What was read before committing to an answer: the whole body, or its first bytes and the rest to come. */
export interface ReadAhead {
  readonly chunks: readonly Buffer[]
  readonly size: number
  readonly ended: boolean
}

/**
 * Reads until the body ended or at least `bytes` arrived, then leaves it paused. Rejects with the
 * source's error, or with `RESPONSE_TOO_LARGE` past `maxBytes` (the source is destroyed then).
 */
export function readAhead(source: BodySource, bytes: number, maxBytes: number): Promise<ReadAhead> {
  return new Promise((resolve, reject) => {
    const chunks = new ChunkList()
    const onData = (chunk: Buffer) => {
      chunks.push(chunk)
      const { size } = chunks
      if (size > maxBytes) {
        done()
        source.destroy()
        reject(new GatewayError('RESPONSE_TOO_LARGE', `the answer exceeded ${maxBytes} bytes`))
      } else if (size >= bytes) {
        done()
        source.pause()
        resolve({ chunks: chunks.pieces(), size, ended: false })
      }
    }
    const onEnd = () => {
      done()
      resolve({ chunks: chunks.pieces(), size: chunks.size, ended: true })
    }
    const onError = (error: Error) => {
      done()
      reject(error)
    }
    const done = () => {
      source.off('data', onData)
      source.off('end', onEnd)
      source.off('error', onError)
    }
    // Each listener takes all three off before it settles: `on` is `once` without its wrapper.
    source.on('data', onData)
    source.on('end', onEnd)
    source.on('error', onError)
    source.resume()
  })
}

/**
 * Reads a body to its end; rejects with the error that ended it otherwise, or with `RESPONSE_TOO_LARGE`
 * past `maxBytes` (the body is destroyed then, nothing more is read).
 */
export async function readAll(body: Readable, maxBytes = Number.POSITIVE_INFINITY): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += (chunk as Buffer).length
    if (size > maxBytes) throw new GatewayError('RESPONSE_TOO_LARGE', `the answer exceeded ${maxBytes} bytes`)
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}
