import type { IncomingHttpHeaders } from 'node:http'
import { performance } from 'node:perf_hooks'
import { Readable } from 'node:stream'
import { type RawData, WebSocket } from 'ws'
import type { Usage } from '../cost/cost.js'
import { GatewayError } from '../errors.js'
import { notify, reportError } from '../events.js'
import { type Scrubber, scrubberOf } from '../secrets.js'
import { chargeSession } from '../steps/limit.js'
import type { UpstreamTarget } from '../target.js'
import type { GatewayContext, GatewayResponse } from '../types.js'
import type { BodyEnd } from '../upstream/body.js'
import { filterResponseHeaders } from '../upstream/headers.js'
import { CLOSE_CODES, closeReason, codeForPeer } from './close-codes.js'
import { type FlowChange, Valve } from './flow.js'
import type { ResolvedWebSocketOptions } from './options.js'
import { placeKey, type RealtimeSpec, webSocketUrl } from './providers.js'
import { addUsage, type RealtimeUsageReader, realtimeUsageReader, setupModel } from './usage.js'

/** The most of a provider's refusal (its HTTP answer to the handshake) that is read and passed on. */
const MAX_REFUSAL_BYTES = 64 * 1024
// Closes that end a session as meant to: normal, going away, or no code at all.
const CLEAN_CLOSES = new Set([1000, 1001, 1005])
/** Client frames searched for a Gemini Live `setup` (it comes first). */
const SETUP_FRAMES = 3

/** How a session's upstream handshake ended: open, or refused with the provider's own HTTP answer. */
export type Connected = { readonly open: true } | { readonly open: false; readonly response: GatewayResponse }

/** Who ended a session. */
export type ClosedBy = 'client' | 'provider' | 'gateway'

export interface SessionSettings {
  readonly options: ResolvedWebSocketOptions
  /** The upstream handshake's clock (`timeouts.connectMs`). */
  readonly connectMs: number
}

/**
 * One realtime session: a client's WebSocket and the provider's, relayed both ways frame by frame, as they
 * come. It is created before the pipeline runs (the pipeline's last step, `connect`, opens the provider's
 * side), and it is the session's response to the pipeline: a `101` whose body ends when the session does,
 * with the usage its frames reported as the request's usage, so the `record` step logs it and the `limit`
 * and `policy` steps settle it exactly as they do an HTTP answer.
 */
export class RealtimeSession {
  readonly #settings: SessionSettings
  readonly #spec: RealtimeSpec
  readonly #offered: readonly string[]
  #ctx: GatewayContext | undefined
  /** Keeps the keys the gateway sent from all the provider sends back; none when the key is the caller's. */
  #scrubber: Scrubber | undefined
  #client: WebSocket | undefined
  #upstream: WebSocket | undefined
  #upstreamHeaders: Record<string, string> = {}
  /** Frames the provider sent before the client's side was open (it is paused then; normally none). */
  #early: { frame: Buffer; binary: boolean }[] = []
  #upstreamClose: { code: number; reason: string } | undefined
  #abandoned = false
  #abandonListeners: (() => void)[] = []
  #readUsage: RealtimeUsageReader | undefined
  #total: Usage | undefined
  #charging: Promise<void> | undefined
  #chargeAgain = false
  #sniffModel = false
  #ending = false
  #bodyEnd: BodyEnd | undefined
  #oversized: { client?: boolean; provider?: boolean } = {}
  #idle: NodeJS.Timeout | undefined
  #toClient: Valve | undefined
  #toProvider: Valve | undefined
  #clientWritten: (() => void) | undefined
  #providerWritten: (() => void) | undefined
  #lifetime: NodeJS.Timeout | undefined
  #resolveUsage!: (usage: Usage | undefined) => void
  #resolveEnded!: () => void
  #startedAt = 0
  /** The provider's frames' usage, summed: resolved when the session ends. */
  readonly usage: Promise<Usage | undefined>
  /** Resolves once the session is over and its log record is queued. */
  readonly ended: Promise<void>
  /** The session's response body: empty, ending when the session ends (its log record is written then). */
  readonly body = new Readable({ read() {} })

  constructor(settings: SessionSettings, spec: RealtimeSpec, offered: readonly string[]) {
    this.#settings = settings
    this.#spec = spec
    this.#offered = offered
    this.usage = new Promise((resolve) => {
      this.#resolveUsage = resolve
    })
    this.ended = new Promise((resolve) => {
      this.#resolveEnded = resolve
    })
  }

  /** Whether the client went away before the session opened, or without a close frame. */
  get abandoned(): boolean {
    return this.#abandoned
  }

  /** The client's socket closed before its side was open: whatever is being opened for it is dropped. */
  abandon(): void {
    if (this.#abandoned) return
    this.#abandoned = true
    const listeners = this.#abandonListeners
    this.#abandonListeners = []
    for (const listener of listeners) listener()
  }

  onAbandon(listener: () => void): () => void {
    if (this.#abandoned) {
      listener()
      return () => {}
    }
    this.#abandonListeners.push(listener)
    return () => {
      const at = this.#abandonListeners.indexOf(listener)
      if (at !== -1) this.#abandonListeners.splice(at, 1)
    }
  }

  /** The provider's own response headers to its handshake, for the client's `101`. */
  get upstreamHeaders(): Record<string, string> {
    return this.#upstreamHeaders
  }

  /** The subprotocol the provider chose, to answer the client with. */
  get protocol(): string | undefined {
    return this.#upstream?.protocol || undefined
  }

  /**
   * Opens the provider's side for a target `route` resolved (credentials attached), the stored key moved
   * to where the endpoint takes it. Resolves with the provider's refusal when it answered the handshake
   * with HTTP; rejects with a `GatewayError` when it could not be reached in time, or the client left.
   */
  connect(ctx: GatewayContext, target: UpstreamTarget): Promise<Connected> {
    this.#ctx = ctx
    const scrubber = scrubberOf(ctx)
    this.#scrubber = scrubber
    const { target: sent, protocol } = placeKey(target, this.#spec)
    const protocols = protocol === undefined ? [...this.#offered] : [...this.#offered, protocol]
    const { options, connectMs } = this.#settings
    return new Promise((resolve, reject) => {
      const upstream = new WebSocket(webSocketUrl(sent), protocols, {
        headers: sent.headers,
        handshakeTimeout: connectMs,
        maxPayload: options.maxPayload,
        perMessageDeflate: false,
        followRedirects: false,
      })
      let settled = false
      const settle = (): boolean => {
        if (settled) return false
        settled = true
        stopWatching()
        return true
      }
      const stopWatching = this.onAbandon(() => {
        if (!settle()) return
        upstream.terminate()
        reject(new GatewayError('CLIENT_CLOSED', 'the client left while the provider was being reached'))
      })
      // Errors after the handshake are reported by `close`; this listener keeps them from being thrown.
      upstream.on('error', (error) => {
        if (settle()) reject(connectFailure(error))
        else this.#oversized.provider ||= isOversized(error)
      })
      upstream.once('upgrade', (response) => {
        this.#upstreamHeaders = handshakeHeaders(response.headers, scrubber)
      })
      upstream.once('unexpected-response', (request, response) => {
        readRefusal(response).then((body) => {
          request.destroy()
          if (!settle()) return
          const headers = filterResponseHeaders(response.headers, scrubber)
          delete headers['content-length']
          const clean = scrubber === undefined ? body : scrubber.scrub(body)
          resolve({ open: false, response: { status: response.statusCode ?? 502, headers, body: clean } })
        })
      })
      upstream.once('open', () => {
        if (!settle()) return
        // Held until the client's side is open: nothing the provider sends is lost or read early.
        upstream.pause()
        this.#upstream = upstream
        upstream.on('message', (data, binary) => {
          if (this.#client !== undefined) this.#fromProvider(data, binary)
          else if (!this.#ending) this.#early.push({ frame: toBuffer(data), binary })
        })
        // The reason goes to the client, the log record and the events: a provider may quote the key in it.
        upstream.once('close', (code, reason) => {
          const text = reason.toString()
          this.#closed('provider', code, scrubber === undefined ? text : scrubber.scrubText(text))
        })
        resolve({ open: true })
      })
    })
  }

  /**
   * The session as its request's answer: a `101` whose body ends with the session, and which reports how it
   * ended (a provider that dropped it, a limit that closed it) as a stream reports an incomplete answer.
   */
  response(): GatewayResponse {
    return { status: 101, headers: {}, body: this.body, outcome: () => this.#bodyEnd }
  }

  /** Relays between the client's socket, now open, and the provider's, from the first frame either sent. */
  start(client: WebSocket): void {
    const ctx = this.#ctx!
    const upstream = this.#upstream!
    this.#client = client
    this.#startedAt = performance.now()
    ctx.state.websocket = openedSession()
    const target = ctx.state.target
    this.#readUsage = target === undefined ? undefined : realtimeUsageReader(target.provider.spec.dialect)
    this.#sniffModel = target?.provider.spec.dialect === 'gemini'
    const { highWaterMark } = this.#settings.options
    const toClient = new Valve(upstream, client, highWaterMark, this.#reportFlow('provider'))
    const toProvider = new Valve(client, upstream, highWaterMark, this.#reportFlow('client'))
    this.#toClient = toClient
    this.#toProvider = toProvider
    this.#clientWritten = () => toClient.written()
    this.#providerWritten = () => toProvider.written()
    client.on('message', (data, binary) => this.#fromClient(data, binary))
    client.on('error', (error) => {
      this.#oversized.client ||= isOversized(error)
    })
    client.once('close', (code, reason) => this.#closed('client', code, reason.toString()))
    this.body.resume()
    this.#armTimers()
    notify(ctx.gateway.events, 'websocket:open', {
      id: ctx.id,
      kind: 'realtime',
      path: ctx.request.path,
      provider: ctx.metrics.provider,
    })
    for (const { frame, binary } of this.#early) this.#fromProvider(frame, binary)
    this.#early = []
    if (this.#upstreamClose !== undefined) {
      this.#end('provider', this.#upstreamClose.code, this.#upstreamClose.reason)
      return
    }
    upstream.resume()
  }

  /**
   * The session opened upstream but the client's side never did (it left, or its handshake was refused):
   * the provider's side is closed and the session ends, logged as abandoned.
   */
  drop(): void {
    this.#abandoned = true
    const ctx = this.#ctx
    if (ctx !== undefined) {
      ctx.state.websocket = openedSession()
    }
    this.#ending = true
    this.#closeUnrelayed('client went away')
    this.body.resume()
    void this.#finish('client', 1006, '')
  }

  /**
   * The pipeline answered with something other than the session (a step failed after the provider's side
   * opened, say): that side is closed, and the request ends with no usage, as a refused one does.
   */
  discard(): void {
    this.#ending = true
    this.#closeUnrelayed('session refused')
    this.#resolveUsage(undefined)
    this.#resolveEnded()
  }

  /** Ends the session from the gateway's side (a timeout, a limit, `gateway.close()`), telling both sides. */
  shutdown(code: number, reason: string, error?: GatewayError): void {
    if (this.#ending) return
    // Not open yet: what is being opened is dropped, and the upgrade is answered as abandoned.
    if (this.#client === undefined) {
      this.abandon()
      return
    }
    if (error !== undefined && this.#ctx !== undefined) this.#ctx.state.error = error
    this.#end('gateway', code, reason, error)
  }

  /**
   * Closes a provider's side that was never relayed. It is still paused as it opened: it is read again, or
   * the provider's answer to the close would never be, and the connection would end only on `ws`'s own
   * closing timeout, long after the session. What it sends meanwhile is dropped.
   */
  #closeUnrelayed(reason: string): void {
    const upstream = this.#upstream
    if (upstream === undefined) return
    upstream.close(CLOSE_CODES.GOING_AWAY, reason)
    upstream.resume()
  }

  #fromClient(data: RawData, binary: boolean): void {
    if (this.#ending) return
    const frame = toBuffer(data)
    const figures = this.#ctx!.state.websocket!
    figures.framesIn++
    figures.bytesIn += frame.length
    this.#idle?.refresh()
    if (this.#sniffModel && figures.framesIn <= SETUP_FRAMES) this.#learnModel(frame)
    this.#upstream!.send(frame, { binary }, this.#providerWritten)
    this.#toProvider!.sent()
  }

  #fromProvider(data: RawData, binary: boolean): void {
    if (this.#ending) return
    // Each frame is a whole message, scrubbed on its own. Binary frames too: Gemini Live sends its JSON
    // messages, its errors among them, as binary frames (usage is read from either kind for that reason).
    const frame = this.#scrubber === undefined ? toBuffer(data) : this.#scrubber.scrub(toBuffer(data))
    const figures = this.#ctx!.state.websocket!
    figures.framesOut++
    figures.bytesOut += frame.length
    this.#idle?.refresh()
    this.#client!.send(frame, { binary }, this.#clientWritten)
    this.#toClient!.sent()
    const usage = this.#readUsage?.(frame)
    if (usage !== undefined) this.#addUsage(usage)
  }

  /** Gemini Live names its model in its first message: the record, prices and limits take it from there. */
  #learnModel(frame: Buffer): void {
    const model = setupModel(frame)
    if (model === undefined) return
    this.#sniffModel = false
    const { state } = this.#ctx!
    const withModel = (target: UpstreamTarget) => (target.model === undefined ? { ...target, model } : target)
    if (state.target !== undefined) state.target = withModel(state.target)
    if (state.targets !== undefined) state.targets = state.targets.map(withModel)
  }

  #addUsage(usage: Usage): void {
    this.#total = addUsage(this.#total, usage)
    if (this.#charging !== undefined) {
      this.#chargeAgain = true
      return
    }
    this.#charging = this.#charge()
      .catch((error: unknown) => reportError(this.#ctx!.gateway.events, error))
      .finally(() => {
        this.#charging = undefined
      })
  }

  /** Charges the running total to the session's token and cost limits, one charge at a time. */
  async #charge(): Promise<void> {
    do {
      this.#chargeAgain = false
      const refusal = await chargeSession(this.#ctx!, this.#total!)
      if (refusal !== undefined) {
        const code = refusal.key === 'LIMIT_STORE_UNAVAILABLE' ? CLOSE_CODES.INTERNAL : CLOSE_CODES.LIMITED
        this.shutdown(code, refusal.message, refusal)
        return
      }
    } while (this.#chargeAgain && !this.#ending)
  }

  #armTimers(): void {
    const { idleTimeoutMs, maxSessionMs } = this.#settings.options
    this.#idle = setTimeout(
      () => this.shutdown(CLOSE_CODES.IDLE, `idle for ${idleTimeoutMs} ms`),
      idleTimeoutMs,
    )
    this.#lifetime = setTimeout(
      () => this.shutdown(CLOSE_CODES.SESSION_LIMIT, `session reached ${maxSessionMs} ms`),
      maxSessionMs,
    )
    // The sockets keep the process alive while the session runs; its clocks need not.
    this.#idle.unref()
    this.#lifetime.unref()
  }

  #reportFlow(source: 'provider' | 'client'): FlowChange {
    return (state, bufferedAmount) => {
      notify(this.#ctx!.gateway.events, 'websocket:backpressure', {
        id: this.#ctx!.id,
        source,
        state,
        bufferedAmount,
      })
    }
  }

  /** One side's socket closed: the first to close ends the session and tells the other. */
  #closed(side: 'client' | 'provider', code: number, reason: string): void {
    if (side === 'provider' && this.#client === undefined) {
      // Before the client's side is open: `start` (or `drop`) takes it from here.
      this.#upstreamClose = { code, reason }
      return
    }
    if (this.#ending) return
    if (this.#oversized[side]) {
      const { maxPayload } = this.#settings.options
      this.#end('gateway', CLOSE_CODES.TOO_BIG, `a ${side} message was over ${maxPayload} bytes`)
      return
    }
    this.#end(side, code, reason)
  }

  #end(by: ClosedBy, code: number, reason: string, error?: GatewayError): void {
    if (this.#ending) return
    this.#ending = true
    const client = this.#client!
    const upstream = this.#upstream!
    let told = code
    let toldReason = closeReason(reason)
    if (by === 'client') {
      if (code === 1006) this.#abandoned = true
      upstream.close(
        codeForPeer(code, CLOSE_CODES.GOING_AWAY),
        code === 1006 ? 'client went away' : toldReason,
      )
    } else if (by === 'provider') {
      told = codeForPeer(code, CLOSE_CODES.BAD_GATEWAY)
      if (code === 1006) toldReason = 'provider connection lost'
      client.close(told, toldReason)
    } else {
      client.close(code, toldReason)
      upstream.close(CLOSE_CODES.NORMAL, toldReason)
    }
    if (by === 'provider' && !CLEAN_CLOSES.has(code)) {
      const detail = `the provider closed the session with ${code}${reason ? ` (${closeReason(reason)})` : ''}`
      this.#bodyEnd = { complete: false, error: new GatewayError('UPSTREAM_INTERRUPTED', detail) }
    } else if (error !== undefined) {
      this.#bodyEnd = { complete: false, error }
    } else {
      this.#bodyEnd = { complete: true }
    }
    void this.#finish(by, told, toldReason)
  }

  /** Once the session is over: its figures and usage final, its body ended (the record is queued then). */
  async #finish(by: ClosedBy, code: number, reason: string): Promise<void> {
    clearTimeout(this.#idle)
    clearTimeout(this.#lifetime)
    const ctx = this.#ctx
    try {
      // A charge under way settles first, so what the limits were charged is what the record says.
      await this.#charging
      const figures = ctx?.state.websocket
      if (figures !== undefined) {
        figures.closeCode = this.#client === undefined ? null : code
        figures.closeReason = reason
        figures.closedBy = by
      }
      this.#bodyEnd ??= { complete: true }
      this.#resolveUsage(this.#total)
      if (!this.body.destroyed) {
        const closed = new Promise((resolve) => this.body.once('close', resolve))
        this.body.push(null)
        await closed
      }
      // The record step queues the record once the body closed and the usage is in: one turn later.
      await this.usage
      await new Promise((resolve) => setImmediate(resolve))
      if (ctx !== undefined && figures !== undefined) {
        notify(ctx.gateway.events, 'websocket:close', {
          id: ctx.id,
          kind: 'realtime',
          code,
          reason,
          closedBy: by,
          durationMs: this.#startedAt === 0 ? 0 : performance.now() - this.#startedAt,
          framesIn: figures.framesIn,
          framesOut: figures.framesOut,
          bytesIn: figures.bytesIn,
          bytesOut: figures.bytesOut,
        })
      }
    } catch (error) {
      if (ctx !== undefined) reportError(ctx.gateway.events, error)
    } finally {
      this.#resolveEnded()
    }
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data
  if (Array.isArray(data)) return Buffer.concat(data)
  return Buffer.from(data)
}

/** What a failed upstream handshake is to the client: a timeout, or a provider out of reach. */
function connectFailure(error: Error): GatewayError {
  if (/handshake has timed out/i.test(error.message)) {
    return new GatewayError('UPSTREAM_CONNECT_TIMEOUT', 'the provider did not accept the WebSocket in time', {
      cause: error,
    })
  }
  return new GatewayError('PROVIDER_FAILED', error.message, { cause: error })
}

function isOversized(error: Error): boolean {
  return (error as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'
}

/**
 * The provider's handshake headers worth passing on: its own (request ids, processing time), not the
 * handshake's, scrubbed of the keys the gateway sent.
 */
function handshakeHeaders(raw: IncomingHttpHeaders, scrubber: Scrubber | undefined): Record<string, string> {
  const headers = filterResponseHeaders(raw, scrubber)
  for (const name of Object.keys(headers)) {
    if (name.startsWith('sec-websocket-') || name === 'content-length') delete headers[name]
  }
  return headers
}

/** Reads a refused handshake's body, up to a bound: it is passed to the client as the provider's answer. */
function readRefusal(response: Readable): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    let read = false
    const done = () => {
      if (read) return
      read = true
      response.off('data', onData)
      resolve(Buffer.concat(chunks, Math.min(size, MAX_REFUSAL_BYTES)))
    }
    const onData = (chunk: Buffer) => {
      if (size < MAX_REFUSAL_BYTES) chunks.push(chunk.subarray(0, MAX_REFUSAL_BYTES - size))
      size += chunk.length
      if (size >= MAX_REFUSAL_BYTES) done()
    }
    response.on('data', onData)
    response.once('end', done)
    response.once('error', done)
    response.once('close', done)
  })
}

/** A session's counts before its first frame: what a session that never relayed one is logged with. */
function openedSession(): NonNullable<GatewayContext['state']['websocket']> {
  return {
    framesIn: 0,
    framesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    closeCode: null,
    closeReason: '',
    closedBy: 'client',
  }
}
