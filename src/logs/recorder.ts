import { computeCost, totalInputTokens, type Usage } from '../cost/cost.js'
import type { PriceTable } from '../cost/pricing.js'
import { ERRORS, LogRecordError, StoreTimeoutError } from '../errors.js'
import { type GatewayEmitter, type LogDroppedEvent, notify, reportError } from '../events.js'
import { NeedleSearch } from '../needles.js'
import { plausibleUsage } from '../providers/dialects/common.js'
import type { Dialect } from '../providers/types.js'
import type { RouteTaken } from '../routes/dynamic.js'
import { createScrubber, REDACTED, type Scrubber } from '../secrets.js'
import { withinTime } from '../stores/call.js'
import type { GatewayContext, ResponseLogEdit } from '../types.js'
import { assembleStream } from './assemble.js'
import { CapturedRecord, type QueuedRecord, type RawBodies, type RawWrite, rawWriteOf } from './captured.js'
import type { LogOutcome, LogRecord, LogRoute, LogStore, LogWebSocket } from './types.js'

export interface LogQueueSettings {
  readonly batchSize: number
  readonly flushIntervalMs: number
  readonly maxQueue: number
  /** Longest a host store's write may take; past it the batch is counted as dropped. */
  readonly writeTimeoutMs: number
}

/** Counters of the log queue, also emitted as `log:dropped` events when records are lost. */
export interface LogStats {
  queued: number
  written: number
  dropped: number
}

/**
 * Records wait in a bounded queue and go to the store in batches, one write at a time, never on a
 * request's path: a slow or failing store costs records (counted as dropped), never latency or memory.
 * A record may be queued as captured, its bodies still bytes: a store that keeps them so gets them as they
 * are; for any other its assembly (bodies decoded, streams put together, secrets masked) runs with its
 * batch, off the tick that ended the request.
 */
export class LogQueue {
  readonly stats: LogStats = { queued: 0, written: 0, dropped: 0 }
  #pending: QueuedRecord[] = []
  #writing: Promise<void> | undefined
  #timer: NodeJS.Timeout | undefined
  #timerDelayMs = 0
  // The timer is armed: it has yet to fire.
  #armed = false
  // The batch being written.
  #batch: readonly QueuedRecord[] = []
  readonly #writeRaw: RawWrite | undefined
  /** How long a batch that is not full waits for more records. */
  readonly #waitMs: number
  // A write ran past `writeTimeoutMs` since the current flush began: the flush stops waiting on the store.
  #stalled = false

  constructor(
    readonly store: LogStore,
    private readonly settings: LogQueueSettings,
    private readonly events: GatewayEmitter,
  ) {
    this.#writeRaw = rawWriteOf(store)
    // A store in this process (one that takes captured bodies: the memory store) is written at the next
    // timer tick rather than once a batch fills: its write only copies records into its columns, and a
    // record that waits longer lives through young collections and is promoted, to die in the old space.
    this.#waitMs = this.#writeRaw === undefined ? settings.flushIntervalMs : 0
  }

  push(record: QueuedRecord): void {
    if (this.#pending.length >= this.settings.maxQueue) {
      this.#drop(1, 'queue-full')
      return
    }
    this.#pending.push(record)
    this.stats.queued = this.#pending.length
    this.#schedule(this.#pending.length >= this.settings.batchSize ? 0 : this.#waitMs)
  }

  /**
   * Writes everything queued so far; resolves once it is stored (or counted as dropped). A store that lets
   * a write run past `writeTimeoutMs` is not waited on again, batch after batch: what is still queued then is
   * dropped, so that `gateway.close()` ends in about one `writeTimeoutMs` even when the store never answers.
   */
  async flush(): Promise<void> {
    this.#disarm()
    this.#stalled = false
    while (this.#pending.length > 0 || this.#writing !== undefined) {
      if (this.#writing === undefined) this.#writeBatch()
      await this.#writing
      if (this.#stalled && this.#pending.length > 0) {
        const count = this.#pending.length
        this.#pending = []
        this.stats.queued = 0
        this.#drop(count, 'store-stalled')
      }
    }
  }

  // A queue writing to a store in this process writes at every timer tick, so its timer is armed again and
  // again with the same delay: the one timer is re-armed (`refresh()`) rather than a new one made each time.
  #schedule(delayMs: number): void {
    if (this.#writing !== undefined) return
    if (this.#armed) {
      // A timer armed as soon or sooner stands.
      if (delayMs >= this.#timerDelayMs) return
      this.#disarm()
    }
    this.#armed = true
    if (this.#timer !== undefined && this.#timerDelayMs === delayMs) {
      this.#timer.refresh()
      return
    }
    // A timer that fired is no longer in Node's lists: nothing to clear.
    this.#timerDelayMs = delayMs
    this.#timer = setTimeout(this.#onTimer, delayMs)
    // A queue waiting to flush must not keep the host's process alive.
    this.#timer.unref()
  }

  /** Stops the timer for good: a timer cleared cannot be re-armed. */
  #disarm(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#armed = false
  }

  readonly #onTimer = (): void => {
    this.#armed = false
    this.#writeBatch()
  }

  #writeBatch(): void {
    // One write at a time: a timer armed as one write ended may fire during the next, which a flush began;
    // the write on schedules what is left when it ends. Two at once, a flush could return with one still on.
    if (this.#writing !== undefined) return
    // The whole queue, when it fits in a batch, is taken as it is rather than copied out of itself.
    let queued = this.#pending
    if (queued.length <= this.settings.batchSize) this.#pending = []
    else queued = queued.splice(0, this.settings.batchSize)
    this.stats.queued = this.#pending.length
    const batch = this.#writeRaw === undefined ? this.#built(queued) : queued
    if (batch.length > 0) this.#send(batch)
  }

  #send(batch: readonly QueuedRecord[]): void {
    const writeRaw = this.#writeRaw
    let written: Promise<void>
    try {
      // The memory store writes in this process and cannot stall; a host's store may never answer, and past
      // its time the batch is given up (and any late answer ignored) so that the queue goes on.
      written =
        writeRaw === undefined
          ? Promise.resolve(withinTime(this.store.write(batch as LogRecord[]), this.settings.writeTimeoutMs))
          : writeRaw(batch)
    } catch (error) {
      // A host's store may throw rather than reject.
      written = Promise.reject(error)
    }
    this.#batch = batch
    // One listener per queue for every batch, not closures and a `finally` made for each one.
    this.#writing = written.then(this.#onWritten, this.#onFailed)
  }

  readonly #onWritten = (): void => {
    this.stats.written += this.#batch.length
    this.#afterWrite()
  }

  readonly #onFailed = (error: unknown): void => {
    if (error instanceof StoreTimeoutError) this.#stalled = true
    const batch = this.#batch
    const refused = refusedRecords(error, batch.length)
    notify(this.events, 'store:error', {
      id: idOf(batch[refused?.[0] ?? 0]!),
      store: 'logs',
      operation: 'write',
      error,
    })
    this.#drop(refused?.length ?? batch.length, 'write-failed')
    // A store refuses a batch for the records it names invalid (see `LogRecordError`): the others are
    // written again, without them, so that one bad record does not cost its whole batch.
    const rest = refused === undefined ? [] : batch.filter((_, index) => !refused.includes(index))
    if (rest.length > 0) this.#send(rest)
    else this.#afterWrite()
  }

  #afterWrite(): void {
    this.#batch = []
    this.#writing = undefined
    if (this.#pending.length > 0)
      this.#schedule(this.#pending.length >= this.settings.batchSize ? 0 : this.#waitMs)
  }

  /** The batch's records, built where they were queued as captured; one that fails to build is dropped. */
  #built(batch: QueuedRecord[]): LogRecord[] {
    const records: LogRecord[] = []
    for (const queued of batch) {
      try {
        records.push(queued instanceof CapturedRecord ? queued.build() : queued)
      } catch (error) {
        // A record that cannot be built is the gateway's bug: reported, counted, and the batch goes on.
        reportError(this.events, error)
        this.#drop(1, 'build-failed')
      }
    }
    return records
  }

  #drop(count: number, reason: LogDroppedEvent['reason']): void {
    this.stats.dropped += count
    notify(this.events, 'log:dropped', { count, total: this.stats.dropped, reason })
  }
}

function idOf(queued: QueuedRecord): string {
  return queued instanceof CapturedRecord ? queued.record.id : queued.id
}

/**
 * The places in its batch of the records a store refused, as its `LogRecordError` names them (`[5].tokensIn`);
 * `undefined` when the store failed otherwise, or did not say which records it refused: the batch is lost.
 */
function refusedRecords(error: unknown, batchSize: number): number[] | undefined {
  if (!(error instanceof LogRecordError)) return undefined
  const places = new Set<number>()
  for (const issue of error.issues) {
    const place = RECORD_PLACE.exec(issue.path)
    if (place === null || Number(place[1]) >= batchSize) return undefined
    places.add(Number(place[1]))
  }
  return places.size === 0 ? undefined : [...places]
}

const RECORD_PLACE = /^\[(\d+)\]/

/** How a request ended, as the gateway saw it. */
export interface RequestEnd {
  /** `Date.now()` and the time since the request arrived, taken when it ended (a record may be built later). */
  readonly endedAt: number
  readonly durationMs: number
  readonly status: number
  readonly aborted: boolean
  /** The stream failed or ended before its last event. */
  readonly failed: boolean
  /** The code the client was told of that failure (a terminal event's), unless it aborted. */
  readonly failureCode: number | undefined
  readonly responseBytes: Buffer | undefined
  readonly responseSize: number
  /** The answer was a server-sent event stream. */
  readonly stream: boolean
  readonly usage: Usage | undefined
}

export interface RecordSettings {
  readonly payloads: boolean
  readonly maxPayloadBytes: number
  readonly prices: PriceTable
  /** Values that must never appear in a record: provider keys and gateway tokens from the options. */
  readonly secrets: readonly string[]
}

// Shapes of provider keys and bearer tokens, masked in logged bodies even when nobody configured them here.
const SECRET_PATTERNS =
  /\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}|AIza[0-9A-Za-z_-]{30,}|gsk_[A-Za-z0-9]{20,}|xai-[A-Za-z0-9]{20,})|(?<=Bearer\s+)[A-Za-z0-9._~+/=-]{16,}/g
// The fixed text each of those patterns starts from: a body with none of them skips the pattern's scan,
// which costs several times what this one search for all of them does.
const SECRET_SEEDS = new NeedleSearch(['sk-', 'AIza', 'gsk_', 'xai-', 'Bearer'])
// Gateway errors that report the provider's failure rather than the gateway's own refusal.
const UPSTREAM_ERRORS = /^(?:UPSTREAM_|PROVIDER_FAILED$|INVALID_PROVIDER_RESPONSE$)/
// The same errors by code: a stream that failed once under way is known by its failure's code only.
const UPSTREAM_CODES: ReadonlySet<number> = new Set(
  Object.entries(ERRORS)
    .filter(([key]) => UPSTREAM_ERRORS.test(key))
    .map(([, error]) => error.code),
)

/**
 * The request's log record (the reference's fields, with bodies capped and secrets masked) in two parts:
 * its fields, read now, and its bodies' bytes with what makes them text (decoded, a stream assembled,
 * secrets masked), run with the record's batch or, by a store that keeps the bytes, when it is read.
 * `figures` are its tokens and cost when they were worked out already (for the metrics), else they are
 * worked out here. Until then it holds the fields and the two bodies' bytes, not the request's context.
 */
export function captureLogRecord(
  ctx: GatewayContext,
  end: RequestEnd,
  settings: RecordSettings,
  figures: RequestFigures = requestFigures(ctx, end.usage, settings.prices),
): CapturedRecord {
  const { state, metrics } = ctx
  const target = state.target ?? state.targets?.[0]
  const cached = state.cacheStatus === 'HIT'
  const model = target?.model
  const withPayload =
    settings.payloads && state.settings?.collectLogPayload !== false && state.withholdLogBodies !== true
  const { durationMs } = end
  const principal = state.principal
  const record: LogRecord = {
    id: ctx.id,
    createdAt: Math.round(end.endedAt - durationMs),
    provider: metrics.provider ?? null,
    model: model ?? null,
    path: ctx.request.path,
    success: !end.aborted && !end.failed && end.status < 400,
    statusCode: end.aborted ? 499 : end.status,
    cached,
    durationMs: Math.round(durationMs),
    ttfbMs: metrics.firstByteMs === undefined ? null : Math.round(metrics.firstByteMs),
    tokensIn: figures.tokensIn,
    tokensOut: figures.tokensOut,
    cost: figures.cost,
    customCost: state.settings?.customCost !== undefined,
    metadata: state.metadata ?? {},
    step: ctx.surface.kind === 'universal' && target !== undefined ? target.step : null,
    eventId: state.settings?.eventId ?? null,
    attempts: metrics.attempts,
    // A WebSocket session's bytes are its frames' payloads each way, not an HTTP body.
    requestSize: state.websocket?.bytesIn ?? metrics.bytesIn,
    responseSize: state.websocket?.bytesOut ?? end.responseSize,
    outcome: outcomeOf(ctx, end),
    errorCode: state.error?.code ?? end.failureCode ?? null,
    principal: principal?.id ?? principal?.tenant ?? null,
    requestBody: null,
    responseBody: null,
    feedback: null,
    score: null,
  }
  // Set only when present (absent fields stay absent), after the literal rather than spread into it: cheaper.
  if (state.attemptLog !== undefined) record.attemptLog = state.attemptLog
  if (target?.route !== undefined) record.route = logRoute(target.route)
  if (state.guard !== undefined) record.guard = state.guard
  if (state.websocket !== undefined) record.websocket = logWebSocket(state.websocket)
  if (!withPayload) return new CapturedRecord(record, undefined)
  const streamDialect = end.stream ? target?.clientDialect : undefined
  const events = ctx.gateway.events
  return new CapturedRecord(record, {
    request: withinCap(state.loggedRequestBody ?? ctx.bodyIfRead(), settings.maxPayloadBytes),
    // A WebSocket session's frames are not kept: audio, mostly, and no body of the reference's.
    response:
      state.websocket === undefined
        ? withinCap(loggedResponse(end.responseBytes, state.loggedResponseEdits), settings.maxPayloadBytes)
        : undefined,
    // A 1000-token answer streamed is some 200 KB of events and 4 KB of text.
    smallerAsText: streamDialect !== undefined,
    text: recordSecretsAreShared(settings.secrets, state.secrets)
      ? sharedBodyText(settings, streamDialect, events)
      : bodyText([...settings.secrets, ...state.secrets!], streamDialect, events),
  })
}

/**
 * Whether the request carried no secret the gateway does not know already. Most requests carry only the
 * provider key from the options, which the gateway's own list holds: their records then share that list and
 * the function that makes their bodies' text, rather than keep a copy of each until the store drops them.
 */
function recordSecretsAreShared(shared: readonly string[], own: readonly string[] | undefined): boolean {
  if (own === undefined) return true
  for (const secret of own) if (!shared.includes(secret)) return false
  return true
}

/**
 * The answer as logged: the bytes sent with the guard's edits made (findings DLP only flagged, masked). An
 * edit that does not find its bytes where it expects them leaves no body logged, rather than one in clear;
 * edits past the bytes sent are of events that never went out.
 */
function loggedResponse(bytes: Buffer | undefined, edits: readonly ResponseLogEdit[] | undefined) {
  if (bytes === undefined || edits === undefined) return bytes
  const parts: Buffer[] = []
  let from = 0
  for (const { at, original, replacement } of edits) {
    if (at >= bytes.length) break
    if (at < from || !bytes.subarray(at, at + original.length).equals(original)) return undefined
    parts.push(bytes.subarray(from, at), replacement)
    from = at + original.length
  }
  parts.push(bytes.subarray(from))
  return Buffer.concat(parts)
}

/**
 * Larger bodies are not stored at all, as the reference does, rather than stored cut in two (the answer's
 * tap keeps none past the same cap).
 */
function withinCap(bytes: Buffer | undefined, cap: number): Buffer | undefined {
  return bytes !== undefined && bytes.length <= cap ? bytes : undefined
}

/** What makes a record's bodies' text; the memory store keeps it with the bytes until they are read. */
function bodyText(
  secrets: readonly string[],
  streamDialect: Dialect | undefined,
  events: GatewayEmitter,
): RawBodies['text'] {
  // Made with the first record's bodies, not here: this runs on the request's path for a record whose
  // request carried secrets of its own.
  let scrubber: Scrubber | undefined | null = null
  return (request, response) => {
    try {
      if (scrubber === null) scrubber = createScrubber(secrets)
      return {
        requestBody: payload(request, scrubber),
        responseBody: responsePayload(response, streamDialect, scrubber),
      }
    } catch (error) {
      // The gateway's bug, reported; the record is kept, without the bodies it could not make.
      reportError(events, error)
      return { requestBody: null, responseBody: null }
    }
  }
}

// The usual record's (no secrets of its own) is one function per gateway and answer dialect, not one per
// record: a store that keeps it with each record's bytes then keeps no object of the record's own.
interface SharedBodyTexts {
  readonly events: GatewayEmitter
  readonly whole: RawBodies['text']
  readonly streams: Map<Dialect, RawBodies['text']>
}
const sharedBodyTexts = new WeakMap<RecordSettings, SharedBodyTexts>()

function sharedBodyText(
  settings: RecordSettings,
  streamDialect: Dialect | undefined,
  events: GatewayEmitter,
): RawBodies['text'] {
  let shared = sharedBodyTexts.get(settings)
  if (shared?.events !== events) {
    shared = { events, whole: bodyText(settings.secrets, undefined, events), streams: new Map() }
    sharedBodyTexts.set(settings, shared)
  }
  if (streamDialect === undefined) return shared.whole
  let text = shared.streams.get(streamDialect)
  if (text === undefined) {
    text = bodyText(settings.secrets, streamDialect, events)
    shared.streams.set(streamDialect, text)
  }
  return text
}

function logWebSocket(session: NonNullable<GatewayContext['state']['websocket']>): LogWebSocket {
  const { framesIn, framesOut, closeCode, closeReason, closedBy } = session
  return { framesIn, framesOut, closeCode, closeReason, closedBy }
}

function logRoute(route: RouteTaken): LogRoute {
  return { name: route.name, version: route.version, path: [...route.path], variants: { ...route.variants } }
}

/** A request's tokens and cost, as its log record, its span and the metrics all report them. */
export interface RequestFigures {
  /** Input tokens, cache reads and writes included; 0 for a cache hit, null when the answer reported none. */
  readonly tokensIn: number | null
  readonly tokensOut: number | null
  /** USD; 0 for a cache hit, null when the answer reported no usage or the model has no price. */
  readonly cost: number | null
}

const CACHE_HIT_FIGURES: RequestFigures = { tokensIn: 0, tokensOut: 0, cost: 0 }
const NO_FIGURES: RequestFigures = { tokensIn: null, tokensOut: null, cost: null }

/**
 * Tokens and cost from the usage the answer reported, priced by the request's `cf-aig-custom-cost` or the
 * price table. Worked out once per request, however many of the log, the span and the metrics want them.
 *
 * @example
 * requestFigures(ctx, { inputTokens: 22, outputTokens: 5, inputIncludesCache: true }, prices)
 * // { tokensIn: 22, tokensOut: 5, cost: 0.0000063 } for gpt-4o-mini
 */
export function requestFigures(
  ctx: GatewayContext,
  usage: Usage | undefined,
  prices: PriceTable,
): RequestFigures {
  const { state } = ctx
  if (state.cacheStatus === 'HIT') return CACHE_HIT_FIGURES
  // The dialects' readers refuse an implausible report already; a realtime session's, summed over its
  // frames, is checked here.
  const reported = plausibleUsage(usage)
  if (reported === undefined) return NO_FIGURES
  const target = state.target ?? state.targets?.[0]
  const price =
    state.settings?.customCost ??
    (target?.model === undefined ? undefined : prices.find(target.provider.spec.id, target.model))
  return {
    tokensIn: totalInputTokens(reported),
    tokensOut: reported.outputTokens,
    // A model without a price is logged with cost null, never 0: 0 would read as "free".
    cost: price === undefined ? null : computeCost(reported, price),
  }
}

/** How the request ended, as its record's `outcome` says: the metrics count requests by it too. */
export function outcomeOf(ctx: GatewayContext, end: RequestEnd): LogOutcome {
  if (end.aborted) return 'aborted'
  if (ctx.state.cacheStatus === 'HIT') return 'cache_hit'
  const error = ctx.state.error
  if (error?.key === 'RATE_LIMITED') return 'rate_limited'
  if (error !== undefined) return UPSTREAM_ERRORS.test(error.key) ? 'upstream_error' : 'gateway_error'
  // A stream the gateway itself stopped (DLP or a guardrail blocked its answer, it outgrew a cap) failed
  // on the gateway's side, as the same error before the answer started would have.
  if (end.failureCode !== undefined) {
    return UPSTREAM_CODES.has(end.failureCode) ? 'upstream_error' : 'gateway_error'
  }
  if (end.status >= 400 || end.failed) return 'upstream_error'
  return 'success'
}

/** The answer as logged: a stream assembled into the text it carried (with its usage in the record). */
function responsePayload(
  bytes: Buffer | undefined,
  streamDialect: Dialect | undefined,
  scrubber: Scrubber | undefined,
): string | null {
  if (bytes === undefined || streamDialect === undefined) return payload(bytes, scrubber)
  const assembled = assembleStream(streamDialect, bytes.toString('utf8'))
  return assembled === undefined ? payload(bytes, scrubber) : redact(assembled, scrubber)
}

function payload(bytes: Buffer | undefined, scrubber: Scrubber | undefined): string | null {
  return bytes === undefined ? null : redact(bytes.toString('utf8'), scrubber)
}

/**
 * Masks the configured secrets and the ones this request carried (whole, or a recognisable piece of one),
 * and anything shaped like a provider key or bearer token.
 */
export function redact(text: string, scrubber: Scrubber | undefined): string {
  const out = scrubber === undefined ? text : scrubber.scrubText(text)
  return SECRET_SEEDS.some(out) ? out.replace(SECRET_PATTERNS, REDACTED) : out
}
