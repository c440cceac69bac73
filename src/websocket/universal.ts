import type { IncomingMessage } from 'node:http'
import { performance } from 'node:perf_hooks'
import { Readable } from 'node:stream'
import type { RawData, WebSocket } from 'ws'
import { errorBody, GatewayError } from '../errors.js'
import type { GatewayEmitter } from '../events.js'
import { notify, reportError } from '../events.js'
import { isRecord, stringifyClientJson } from '../json.js'
import type { GatewayRequest, GatewayResponse } from '../types.js'
import { SSEParser } from '../upstream/sse.js'
import { CLOSE_CODES, closeReason } from './close-codes.js'
import { Gate, Valve } from './flow.js'
import type { ResolvedWebSocketOptions } from './options.js'

/** The metadata of a `universal.created` / `universal.done` / `universal.error` frame. */
export interface UniversalMetadata {
  cacheStatus?: string
  eventId: string
  logId?: string
  step?: string
  contentType?: string
  /** On `universal.error` only: the HTTP status the request would have been answered with. */
  status?: number
  /** `base64` when `response` is a binary answer (audio, images) in base64. */
  encoding?: 'base64'
}

/** What a universal socket needs from its gateway and its upgrade. */
export interface UniversalSocketSetup {
  readonly id: string
  readonly client: WebSocket
  readonly req: IncomingMessage
  /** Path relative to the mount point (`/`, or Cloudflare's long form), for the requests it runs. */
  readonly path: string
  readonly search: string
  /** The upgrade's headers, as each request carries them (the gateway token among them). */
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly options: ResolvedWebSocketOptions
  readonly events: GatewayEmitter
  readonly handle: (request: GatewayRequest) => Promise<GatewayResponse | undefined>
}

/** One request in flight on a socket: how to tell it the client left, and the body being read for it. */
interface InFlight {
  gone: boolean
  listeners: (() => void)[]
  body: Readable | undefined
  controller: AbortController | undefined
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\b|^text\//i

/**
 * The universal endpoint over a WebSocket, as the reference serves it: each `universal.create` message
 * is run as a universal-endpoint request through the gateway's own pipeline (`handle()`), so caching,
 * limits, guards, fallbacks and logs apply to it unchanged, and its answer comes back as frames:
 * `universal.created` (with `response` for a whole answer), or for a stream `universal.created`, one
 * `universal.stream` per server-sent event and `universal.done`; a refusal or a provider's error as
 * `universal.error`. Several requests may be in flight at once (up to `maxInFlight`), told apart by their
 * `eventId`.
 */
export class UniversalSocket {
  readonly #setup: UniversalSocketSetup
  readonly #gate: Gate
  readonly #valve: Valve
  /** Messages read while the client was paused, answered in order once it reads again. */
  #held: [data: RawData, binary: boolean][] = []
  readonly #inFlight = new Set<InFlight>()
  readonly #startedAt = performance.now()
  #figures = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0 }
  #idle: NodeJS.Timeout
  #lifetime: NodeJS.Timeout
  #closedBy: 'client' | 'provider' | 'gateway' = 'client'
  #closed = false
  #oversized = false
  #resolveEnded!: () => void
  /** Resolves once the socket closed and every request it carried has ended. */
  readonly ended: Promise<void>

  constructor(setup: UniversalSocketSetup) {
    this.#setup = setup
    this.ended = new Promise((resolve) => {
      this.#resolveEnded = resolve
    })
    const { client, options, events, id } = setup
    this.#gate = new Gate(client, options.highWaterMark, (state, bufferedAmount) =>
      notify(events, 'websocket:backpressure', { id, source: 'stream', state, bufferedAmount }),
    )
    // Every message is answered, a refusal included: a client that sends without reading would otherwise
    // have its answers queued without end. Past `highWaterMark` queued, the client is no longer read.
    this.#valve = new Valve(client, client, options.highWaterMark, (state, bufferedAmount) =>
      notify(events, 'websocket:backpressure', { id, source: 'client', state, bufferedAmount }),
    )
    client.on('message', (data, binary) => this.#onMessage(data, binary))
    client.on('error', (error) => {
      // An oversized or malformed frame: ws closes the socket with the matching code. The connection is
      // then dropped, and `close` reports 1006: the oversized message's 1009 is the gateway's own close.
      this.#oversized ||= (error as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
    })
    client.once('close', (code, reason) => this.#onClose(code, reason.toString()))
    this.#idle = setTimeout(() => this.#onIdle(), options.idleTimeoutMs)
    this.#lifetime = setTimeout(
      () => this.shutdown(CLOSE_CODES.SESSION_LIMIT, `session reached ${options.maxSessionMs} ms`),
      options.maxSessionMs,
    )
    this.#idle.unref()
    this.#lifetime.unref()
    notify(events, 'websocket:open', { id, kind: 'universal', path: setup.path, provider: undefined })
  }

  /** Closes the socket from the gateway's side; requests in flight are cancelled. */
  shutdown(code: number, reason: string): void {
    const { client } = this.#setup
    if (client.readyState !== client.OPEN) return
    this.#closedBy = 'gateway'
    client.close(code, closeReason(reason))
    // No answer can be sent from now on: the requests stop here, not once the client answers the close
    // (which one that is not reading never does before ws gives up on it, 30 s later).
    this.#held = []
    this.#cancelInFlight()
  }

  #onIdle(): void {
    // A request still in flight (a long stream, a slow provider) is activity too.
    if (this.#inFlight.size > 0) {
      this.#idle.refresh()
      return
    }
    this.shutdown(CLOSE_CODES.IDLE, `idle for ${this.#setup.options.idleTimeoutMs} ms`)
  }

  #onMessage(data: RawData, binary: boolean): void {
    // ws still delivers the messages already read from the socket when it is paused: they wait their turn.
    if (this.#valve.paused || this.#held.length > 0) {
      this.#held.push([data, binary])
      return
    }
    this.#answer(data, binary)
  }

  #answer(data: RawData, binary: boolean): void {
    // Once the socket is closing (the gateway's close frame sent, the client's not yet in), no answer can be
    // sent: a request run now would reach the provider for nothing, on a gateway that may be shutting down.
    const { client } = this.#setup
    if (client.readyState !== client.OPEN) return
    const frame = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
    this.#figures.framesIn++
    this.#figures.bytesIn += frame.length
    this.#idle.refresh()
    const message = binary ? undefined : parse(frame)
    const request = isRecord(message) ? message.request : undefined
    const eventId = eventIdOf(request)
    if (!isRecord(message) || message.type !== 'universal.create' || !isStepList(request)) {
      const detail = 'expected {"type":"universal.create","request":{provider,endpoint,headers,query}}'
      this.#refuse(new GatewayError('INVALID_WEBSOCKET_MESSAGE', detail), eventId ?? '')
      return
    }
    if (this.#inFlight.size >= this.#setup.options.maxInFlight) {
      const detail = `at most ${this.#setup.options.maxInFlight} at once`
      this.#refuse(new GatewayError('TOO_MANY_IN_FLIGHT', detail), eventId ?? '')
      return
    }
    const entry: InFlight = { gone: false, listeners: [], body: undefined, controller: undefined }
    this.#inFlight.add(entry)
    this.#run(entry, request, eventId)
      .catch((error: unknown) => {
        // The gateway's own refusals are answered as they are; anything else is a bug.
        if (error instanceof GatewayError) return this.#refuse(error, eventId ?? '')
        reportError(this.#setup.events, error)
        this.#refuse(new GatewayError('INTERNAL'), eventId ?? '')
      })
      .finally(() => {
        this.#inFlight.delete(entry)
        // Its last frame just went out: the socket is idle from now, not from the last message in.
        if (!this.#closed) this.#idle.refresh()
        this.#maybeEnded()
      })
  }

  /** Runs one `universal.create` through the pipeline and sends its answer back as frames. */
  async #run(entry: InFlight, steps: unknown, eventId: string | undefined): Promise<void> {
    const { req, path, search, headers, handle } = this.#setup
    const body = Buffer.from(stringifyClientJson(withoutEventIds(steps), 'INVALID_UNIVERSAL_REQUEST'))
    const request: GatewayRequest = {
      method: 'POST',
      path,
      search,
      headers: {
        ...headers,
        'content-type': 'application/json',
        'content-length': String(body.length),
        ...(eventId === undefined ? {} : { 'cf-aig-event-id': eventId }),
      },
      get signal() {
        if (entry.controller === undefined) {
          const controller = new AbortController()
          entry.controller = controller
          if (entry.gone) controller.abort()
          else entry.listeners.push(() => controller.abort())
        }
        return entry.controller.signal
      },
      get clientClosed() {
        return entry.gone
      },
      onClientClose: (listener) => {
        if (entry.gone) {
          listener()
          return () => {}
        }
        entry.listeners.push(listener)
        return () => {
          const at = entry.listeners.indexOf(listener)
          if (at !== -1) entry.listeners.splice(at, 1)
        }
      },
      body,
      ip: req.socket.remoteAddress,
      host: req,
      originalUrl: req.url,
      secure: (req.socket as { encrypted?: boolean }).encrypted === true,
    }
    const response = await handle(request)
    if (response === undefined) throw new GatewayError('INTERNAL', 'the universal endpoint did not answer')
    if (entry.gone) {
      discard(response)
      return
    }
    const metadata = metadataOf(response, eventId)
    if (response.status < 400 && metadata.contentType?.startsWith('text/event-stream')) {
      await this.#stream(entry, response, readable(response.body), metadata)
      return
    }
    const answer = await this.#read(entry, response)
    if (answer === undefined) return
    if (answer instanceof GatewayError) {
      this.#refuse(answer, metadata.eventId, metadata)
      return
    }
    if (response.status >= 400) {
      this.#send({
        type: 'universal.error',
        metadata: { ...metadata, status: response.status },
        response: decoded(answer, metadata),
      })
      return
    }
    this.#send({ type: 'universal.created', metadata, response: decoded(answer, metadata) })
  }

  /**
   * A streamed answer: `universal.created`, one `universal.stream` per event, then `universal.done`; or, for
   * a stream that failed (cut, stalled, an in-band error), `universal.error` in `universal.done`'s place,
   * after the terminal event the HTTP endpoint would have ended it with.
   */
  async #stream(
    entry: InFlight,
    response: GatewayResponse,
    body: Readable,
    metadata: UniversalMetadata,
  ): Promise<void> {
    entry.body = body
    this.#send({ type: 'universal.created', metadata })
    const parser = new SSEParser()
    const chunk = { eventId: metadata.eventId }
    try {
      for await (const bytes of body) {
        for (const event of parser.push(bytes as Buffer)) {
          this.#send({ type: 'universal.stream', metadata: chunk, response: eventData(event.data) })
        }
        // Pulled no faster than the client reads: the provider's stream waits behind it.
        const room = this.#gate.room()
        if (room !== undefined) await room
        if (entry.gone) return
      }
      for (const event of parser.end()) {
        this.#send({ type: 'universal.stream', metadata: chunk, response: eventData(event.data) })
      }
    } catch (error) {
      if (entry.gone) return
      this.#refuse(failureOf(error), metadata.eventId, metadata)
      return
    }
    // A failed event stream ends (with its terminal event) rather than throwing: its outcome says it failed.
    const failure = failedEnd(response)
    if (failure !== undefined) this.#refuse(failure, metadata.eventId, metadata)
    else this.#send({ type: 'universal.done', metadata })
  }

  /**
   * A whole answer's bytes; `undefined` when the client left while it was read, and the failure when the
   * answer was cut (a reset, a stall, a cap): the part that came is no answer, and over HTTP the connection
   * would have been cut for the same reason.
   */
  async #read(entry: InFlight, response: GatewayResponse): Promise<Buffer | GatewayError | undefined> {
    const { body } = response
    if (body === null) return Buffer.alloc(0)
    if (typeof body === 'string') return Buffer.from(body)
    if (!(body instanceof Readable)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength)
    entry.body = body
    const chunks: Buffer[] = []
    try {
      for await (const chunk of body) chunks.push(chunk as Buffer)
    } catch (error) {
      return entry.gone ? undefined : failureOf(error)
    }
    if (entry.gone) return undefined
    return failedEnd(response) ?? Buffer.concat(chunks)
  }

  #refuse(error: GatewayError, eventId: string, metadata?: UniversalMetadata): void {
    // The answer's metadata, if it began, but for what the frame carries: the gateway's JSON error body.
    const said = metadata === undefined ? { eventId } : { ...metadata, contentType: 'application/json' }
    this.#send({
      type: 'universal.error',
      metadata: { ...said, status: error.status },
      response: JSON.parse(errorBody(error)) as unknown,
    })
  }

  #send(frame: Record<string, unknown>): void {
    const { client } = this.#setup
    if (client.readyState !== client.OPEN) return
    const text = JSON.stringify(frame)
    this.#figures.framesOut++
    this.#figures.bytesOut += Buffer.byteLength(text)
    client.send(text, () => this.#written())
    this.#valve.sent()
  }

  #written(): void {
    this.#gate.written()
    this.#valve.written()
    while (this.#held.length > 0 && !this.#valve.paused) {
      const [data, binary] = this.#held.shift()!
      this.#answer(data, binary)
    }
  }

  #onClose(code: number, reason: string): void {
    if (this.#oversized) {
      code = CLOSE_CODES.TOO_BIG
      reason = `a message was over ${this.#setup.options.maxPayload} bytes`
      this.#closedBy = 'gateway'
    }
    clearTimeout(this.#idle)
    clearTimeout(this.#lifetime)
    this.#gate.written(true)
    this.#held = []
    this.#cancelInFlight()
    const { events, id } = this.#setup
    notify(events, 'websocket:close', {
      id,
      kind: 'universal',
      code,
      reason,
      closedBy: this.#closedBy,
      durationMs: performance.now() - this.#startedAt,
      ...this.#figures,
    })
    this.#closed = true
    this.#maybeEnded()
  }

  /** Tells every request in flight that its client is gone: each cancels its upstream call. */
  #cancelInFlight(): void {
    for (const entry of this.#inFlight) {
      if (entry.gone) continue
      entry.gone = true
      const listeners = entry.listeners
      entry.listeners = []
      for (const listener of listeners) listener()
      entry.body?.destroy()
    }
  }

  #maybeEnded(): void {
    if (this.#closed && this.#inFlight.size === 0) this.#resolveEnded()
  }
}

function parse(frame: Buffer): unknown {
  try {
    return JSON.parse(frame.toString('utf8'))
  } catch {
    return undefined
  }
}

/** A single step or a list of them, each an object: the universal endpoint judges the rest. */
function isStepList(request: unknown): request is Record<string, unknown> | unknown[] {
  return isRecord(request) || (Array.isArray(request) && request.length > 0 && request.every(isRecord))
}

/** The request's `eventId`: the step's own, or the first step's in a list. */
function eventIdOf(request: unknown): string | undefined {
  const first = Array.isArray(request) ? request[0] : request
  return isRecord(first) && typeof first.eventId === 'string' ? first.eventId : undefined
}

function withoutEventIds(steps: unknown): unknown {
  const strip = (step: unknown) => {
    if (!isRecord(step) || !('eventId' in step)) return step
    const { eventId: _eventId, ...rest } = step
    return rest
  }
  return Array.isArray(steps) ? steps.map(strip) : strip(steps)
}

/** The reference's metadata, from the headers the pipeline put on its answer. */
function metadataOf(response: GatewayResponse, eventId: string | undefined): UniversalMetadata {
  const {
    'cf-aig-cache-status': cacheStatus,
    'cf-aig-event-id': requestEventId,
    'cf-aig-log-id': logId,
    'cf-aig-step': step,
    'content-type': contentType,
  } = response.headers
  const metadata: UniversalMetadata = {
    cacheStatus: cacheStatus ?? 'MISS',
    eventId: eventId ?? requestEventId ?? '',
  }
  if (logId !== undefined) metadata.logId = logId
  if (step !== undefined) metadata.step = step
  if (contentType !== undefined) metadata.contentType = contentType
  return metadata
}

/** An answer as a frame carries it: JSON parsed, text as text, anything else in base64 (said in `metadata`). */
function decoded(bytes: Buffer, metadata: UniversalMetadata): unknown {
  const type = metadata.contentType ?? 'application/json'
  if (!JSON_TYPE.test(type)) {
    metadata.encoding = 'base64'
    return bytes.toString('base64')
  }
  const text = bytes.toString('utf8')
  if (!/json/i.test(type)) return text
  try {
    return JSON.parse(text) as unknown
  } catch {
    return text
  }
}

/** A server-sent event's data: its JSON, or the text itself (`[DONE]`). */
function eventData(data: string): unknown {
  try {
    return JSON.parse(data) as unknown
  } catch {
    return data
  }
}

/**
 * An answer's body as a stream. A stream answered from the cache comes whole, in one buffer: it is sent as
 * the provider's stream is, event by event, so that a hit has the frames a miss has.
 */
function readable(body: GatewayResponse['body']): Readable {
  if (body instanceof Readable) return body
  if (body === null) return Readable.from([])
  const bytes =
    typeof body === 'string' ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  return Readable.from([bytes])
}

/** What a body that threw while it was read failed with, as the gateway reports it. */
function failureOf(error: unknown): GatewayError {
  return error instanceof GatewayError ? error : new GatewayError('UPSTREAM_INTERRUPTED')
}

/** Why an answer that ended was still no whole one (see `GatewayResponse.outcome`), if it was not. */
function failedEnd(response: GatewayResponse): GatewayError | undefined {
  const end = response.outcome?.()
  return end === undefined || end.complete ? undefined : end.error
}

function discard(response: GatewayResponse): void {
  if (response.body instanceof Readable) response.body.destroy()
}
