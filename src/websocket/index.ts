import type { IncomingMessage } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { Duplex } from 'node:stream'
import { type WebSocket, WebSocketServer } from 'ws'
import { compose } from '../compose.js'
import { createContext, type GatewayServices } from '../context.js'
import { GatewayError, renderError } from '../errors.js'
import { notify, reportError } from '../events.js'
import { normalizePrefix, relativeUrl } from '../node/request.js'
import { answerWithError, finishResponse } from '../respond.js'
import { authenticate } from '../steps/authenticate.js'
import { checkGatewayName } from '../steps/parse.js'
import { matchSurface } from '../surface.js'
import type { GatewayContext, GatewayRequest, GatewayResponse, Step, Surface } from '../types.js'
import { splitQuery } from '../url.js'
import { CLOSE_CODES } from './close-codes.js'
import {
  GATEWAY_TOKEN_PROTOCOL,
  handshakeProblem,
  isWebSocketUpgrade,
  offeredProtocols,
  refuseUpgrade,
  requestHeaders,
} from './handshake.js'
import type { ResolvedWebSocketOptions } from './options.js'
import {
  modelFromQuery,
  realtimeSlug,
  realtimeSpec,
  renameKeyQuery,
  sessionPath,
  splitProtocols,
} from './providers.js'
import { RealtimeSession } from './realtime.js'
import { UniversalSocket } from './universal.js'

export { CLOSE_CODES } from './close-codes.js'
export type { ResolvedWebSocketOptions, WebSocketOptions } from './options.js'

/** Where a gateway's sockets are mounted: the path prefix the host serves the gateway under. */
export interface UpgradeOptions {
  /** The mount point (`/ai`); upgrades outside it are left alone. Default: the server's root. */
  prefix?: string | undefined
}

/** What the gateway hands its WebSocket side: its services, its arranged steps and its `handle`. */
export interface WebSocketInternals {
  readonly services: GatewayServices
  readonly steps: readonly Step[]
  readonly handle: (request: GatewayRequest) => Promise<GatewayResponse | undefined>
}

/** A gateway's WebSocket side: `gateway.upgrade` and what `gateway.close()` ends. */
export interface GatewayWebSockets {
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, options?: UpgradeOptions): boolean
  /** Stops taking upgrades, closes every socket with 1001 and resolves once each has ended (and is logged). */
  close(): Promise<void>
}

/** A socket being opened or open, as `close()` ends it. */
interface Live {
  shutdown: (code: number, reason: string) => void
}

/**
 * The gateway's WebSocket side. `upgrade` takes an HTTP upgrade on the mount: the mount root (or
 * Cloudflare's long form) is the universal endpoint over a socket, `/{provider}[/path]` a realtime session
 * relayed to the provider's own WebSocket API. Anything else is left to the host (`false`).
 *
 * A realtime session runs the gateway's own steps, as arranged (host steps included), with these
 * changes: no cache (a session is never answered from one), no guard (its frames are no body to read),
 * in place of `forward` a step that opens the provider's socket, and right after `route` one that reads
 * the session's model from its URL. So authentication, identity, routing and stored keys, policies, rate
 * and spend limits and the log record apply to it as to an HTTP request; its answer is the `101`, which
 * ends when the session does.
 *
 * @example
 * const websockets = createWebSockets({ services, steps, handle })
 * server.on('upgrade', (req, socket, head) => websockets.upgrade(req, socket, head, { prefix: '/ai' }))
 */
export function createWebSockets(internals: WebSocketInternals): GatewayWebSockets {
  const { services, handle } = internals
  const settings: ResolvedWebSocketOptions | false = services.options.websockets
  const { events } = services
  const authenticator = authenticate(services.options.authentication)
  const sessions = new WeakMap<GatewayRequest, RealtimeSession>()
  const runSession = compose(sessionSteps(internals.steps, connectStep(sessions), realtimeTarget()))
  const handshakes = new WeakMap<IncomingMessage, { headers: string[]; protocol: string | false }>()
  const live = new Map<Promise<void>, Live>()
  let closing = false
  let server: WebSocketServer | undefined

  function acceptor(options: ResolvedWebSocketOptions): WebSocketServer {
    if (server !== undefined) return server
    server = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: options.maxPayload,
      perMessageDeflate: false,
      handleProtocols: (_offered, req) => handshakes.get(req)?.protocol ?? false,
    })
    server.on('headers', (lines, req) => {
      const extra = handshakes.get(req)
      if (extra !== undefined) lines.push(...extra.headers)
    })
    return server
  }

  /** Completes the client's handshake; `undefined` when its socket can no longer take it. */
  function accept(
    options: ResolvedWebSocketOptions,
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    handshake: { headers: string[]; protocol: string | false },
  ): WebSocket | undefined {
    if (closing || !socket.writable) {
      socket.destroy()
      return undefined
    }
    handshakes.set(req, handshake)
    let accepted: WebSocket | undefined
    acceptor(options).handleUpgrade(req, socket, head, (client) => {
      accepted = client
    })
    handshakes.delete(req)
    return accepted
  }

  async function openUniversal(
    options: ResolvedWebSocketOptions,
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    target: { path: string; search: string; surface: Surface },
    control: Live,
  ): Promise<void> {
    const protocols = offeredProtocols(req)
    const headers = requestHeaders(req, protocols)
    const request = upgradeRequest(req, 'POST', target.path, target.search, headers)
    const ctx = createContext(request, target.surface, services)
    // The socket is the gateway's only for holders of a gateway token, on a URL naming this gateway, both
    // checked as for HTTP requests and in the same order.
    try {
      await authenticator(ctx, () => Promise.resolve())
      checkGatewayName(ctx)
    } catch (error) {
      refuseUpgrade(socket, finishResponse(ctx, await answerWithError(ctx, error)))
      return
    }
    const client = accept(options, req, socket, head, { headers: [], protocol: protocols[0] ?? false })
    if (client === undefined) return
    const universal = new UniversalSocket({
      id: ctx.id,
      client,
      req,
      path: target.path,
      search: target.search,
      headers,
      options,
      events,
      handle,
    })
    control.shutdown = (code, reason) => universal.shutdown(code, reason)
    await universal.ended
  }

  async function openRealtime(
    options: ResolvedWebSocketOptions,
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    target: { search: string; surface: Extract<Surface, { kind: 'provider' }> },
    control: Live,
  ): Promise<void> {
    const { surface } = target
    const slug = realtimeSlug(surface.provider, services.providers)
    const provider = services.providers.get(slug)
    const spec = realtimeSpec(slug, options)
    const protocols = offeredProtocols(req)
    const { upstream, key } = splitProtocols(protocols, spec, GATEWAY_TOKEN_PROTOCOL)
    const headers = requestHeaders(req, protocols)
    if (key !== undefined && provider !== undefined) {
      // A browser's own provider key, as if it came in the provider's key header: the same precedence and
      // `callerKeys` policy apply to it.
      const { header, scheme } = provider.spec.auth
      headers[header] ??= scheme ? `${scheme} ${key}` : key
    }
    const scope = surface.account === undefined ? '' : `/v1/${surface.account}/${surface.gatewayName}`
    const path = sessionPath(scope, slug, surface.rest, spec)
    const search = provider === undefined ? target.search : renameKeyQuery(target.search, spec, provider)
    const session = new RealtimeSession(
      { options, connectMs: services.options.timeouts.connectMs },
      spec,
      upstream,
    )
    control.shutdown = (code, reason) => session.shutdown(code, reason)
    let controller: AbortController | undefined
    const request: GatewayRequest = {
      ...upgradeRequest(req, 'GET', path, search, headers),
      get signal() {
        if (controller === undefined) {
          const made = new AbortController()
          controller = made
          session.onAbandon(() => made.abort())
        }
        return controller.signal
      },
      get clientClosed() {
        return session.abandoned
      },
      onClientClose: (listener) => session.onAbandon(listener),
    }
    sessions.set(request, session)
    const sessionSurface = matchSurface('GET', path) ?? surface
    const ctx = createContext(request, sessionSurface, services)
    notify(events, 'request:start', { id: ctx.id, method: 'GET', path, surface: sessionSurface.kind })
    const unwatch = watchDeparture(socket, () => session.abandon())
    const response = await runPipeline(ctx)
    unwatch()
    if (response.status !== 101) {
      session.discard()
      refuseUpgrade(socket, response)
      return
    }
    const client = session.abandoned
      ? undefined
      : accept(options, req, socket, head, {
          headers: handshakeLines({ ...session.upstreamHeaders, ...response.headers }),
          protocol: chooseProtocol(session.protocol, protocols),
        })
    if (client === undefined) {
      socket.destroy()
      session.drop()
    } else {
      session.start(client)
    }
    await session.ended
  }

  /** The session's pipeline, as `handle` runs a request's: errors rendered, the gateway's headers added. */
  async function runPipeline(ctx: GatewayContext): Promise<GatewayResponse> {
    try {
      await runSession(ctx, () => Promise.resolve())
      if (ctx.response === undefined) throw new GatewayError('INTERNAL', 'no step answered the request')
    } catch (error) {
      await answerWithError(ctx, error)
    }
    return finishResponse(ctx, ctx.response!)
  }

  function upgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    options: UpgradeOptions = {},
  ): boolean {
    if (settings === false || closing || !isWebSocketUpgrade(req)) return false
    const url = relativeUrl(req.url ?? '/', normalizePrefix(options.prefix))
    if (url === undefined) return false
    const { path, search } = splitQuery(url)
    const surface = matchSurface('POST', path)
    if (surface === undefined) return false
    // The socket is the gateway's from here, and Node took its own error listener off it for the upgrade:
    // a reset (while the gateway works, or after a refusal) must not become an uncaught error.
    socket.on('error', ignore)
    const problem = handshakeProblem(req)
    if (problem !== undefined) {
      refuseUpgrade(socket, {
        status: problem.status,
        headers: { 'content-type': 'text/plain' },
        body: problem.message,
      })
      return true
    }
    if (surface.kind === 'compat') {
      const error = new GatewayError(
        'WEBSOCKET_NOT_SUPPORTED',
        `/compat${surface.operation} serves HTTP only`,
      )
      refuseUpgrade(socket, renderError(error, 'openai'))
      return true
    }
    const control: Live = { shutdown: () => {} }
    const work = (
      surface.kind === 'universal'
        ? openUniversal(settings, req, socket, head, { path, search, surface }, control)
        : openRealtime(settings, req, socket, head, { search, surface }, control)
    )
      .catch((error: unknown) => {
        reportError(events, error)
        socket.destroy()
      })
      .finally(() => {
        live.delete(work)
      })
    live.set(work, control)
    return true
  }

  return {
    upgrade,
    async close() {
      closing = true
      for (const control of live.values()) control.shutdown(CLOSE_CODES.GOING_AWAY, 'gateway closing')
      await Promise.all(live.keys())
      server?.close()
    },
  }
}

/** The request a socket's upgrade stands for, before the parts each kind sets itself. */
function upgradeRequest(
  req: IncomingMessage,
  method: string,
  path: string,
  search: string,
  headers: Record<string, string | undefined>,
): GatewayRequest {
  return {
    method,
    path,
    search,
    headers,
    signal: new AbortController().signal,
    clientClosed: false,
    ip: req.socket.remoteAddress,
    host: req,
    originalUrl: req.url,
    secure: (req.socket as { encrypted?: boolean }).encrypted === true,
  }
}

/**
 * The session's steps: the gateway's own, as arranged, less `cache` and `guard`, with `connect` in
 * `forward`'s place and `realtimeTarget` right after `route`.
 */
function sessionSteps(steps: readonly Step[], connect: Step, target: Step): Step[] {
  const arranged: Step[] = []
  for (const step of steps) {
    // A session is never answered from a cache, and its frames are no body a guard could read.
    if (step.name === 'cache' || step.name === 'guard') continue
    if (step.name === 'forward') {
      if (!arranged.includes(target)) arranged.push(target)
      arranged.push(connect)
      continue
    }
    arranged.push(step)
    if (step.name === 'route') arranged.push(target)
  }
  if (!arranged.includes(target)) arranged.push(target)
  if (!arranged.includes(connect)) arranged.push(connect)
  return arranged
}

/** After `route`: a realtime session's model is in its URL (`?model=`), where HTTP requests have it in their body. */
function realtimeTarget(): Step {
  return async function realtimeTarget(ctx, next) {
    const { targets } = ctx.state
    if (targets !== undefined) {
      ctx.state.targets = targets.map((target) =>
        target.model === undefined ? { ...target, model: modelFromQuery(target.path) } : target,
      )
    }
    await next()
  }
}

/**
 * In `forward`'s place: opens the provider's WebSocket for the first target that takes it (a key pool's
 * next key after a 429). The session is the answer; a provider's refusal of the handshake is passed on as
 * it answered it.
 */
function connectStep(sessions: WeakMap<GatewayRequest, RealtimeSession>): Step {
  return async function connect(ctx) {
    const session = sessions.get(ctx.request)
    const targets = ctx.state.targets ?? []
    if (session === undefined || targets.length === 0) {
      throw new GatewayError('INTERNAL', 'no upstream target was resolved')
    }
    for (const [index, target] of targets.entries()) {
      ctx.state.target = target
      ctx.metrics.attempts++
      const startedAt = performance.now()
      const url = `${target.origin.replace(/^http/, 'ws')}${target.path.split('?')[0]}`
      const { events } = ctx.gateway
      const provider = target.provider.spec.id
      const attempt = ctx.metrics.attempts
      notify(events, 'upstream:request', {
        id: ctx.id,
        provider,
        step: target.step,
        url,
        method: 'GET',
        attempt,
      })
      const connected = await session.connect(ctx, target)
      const durationMs = performance.now() - startedAt
      ctx.metrics.upstreamMs += durationMs
      ctx.metrics.upstreamWaitMs += durationMs
      const status = connected.open ? 101 : connected.response.status
      notify(events, 'upstream:response', {
        id: ctx.id,
        provider,
        step: target.step,
        status,
        attempt,
        durationMs,
      })
      if (connected.open) {
        ctx.state.usage = session.usage
        ctx.response = session.response()
        return
      }
      ctx.response = connected.response
      if (status !== 429 || index === targets.length - 1) return
    }
  }
}

/** The subprotocol to answer the client with: the provider's choice, else the first the client offered. */
function chooseProtocol(upstream: string | undefined, offered: readonly string[]): string | false {
  if (upstream !== undefined && offered.includes(upstream)) return upstream
  return offered[0] ?? false
}

/** Headers for the client's `101`, as `ws` writes them: one `name: value` line each. */
function handshakeLines(headers: Record<string, string>): string[] {
  const lines: string[] = []
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase()
    if (lower === 'content-length' || lower === 'content-type' || lower === 'connection') continue
    if (/[\r\n]/.test(value)) continue
    lines.push(`${name}: ${value}`)
  }
  return lines
}

/**
 * Calls `leave` once the client of an upgrade still being answered is gone: its socket closed, or its
 * side of the connection ended. The end counts too: the HTTP server allows half-open connections, so a
 * client's FIN never closes the socket by itself. Nothing is read for it: Node keeps filling an upgraded
 * socket's buffer and reports its end once that buffer is empty, as it is for a client that waits for its
 * `101` (as clients must). Whatever a client sent early stays buffered, in order, for `ws`, which sees such
 * a client's end once it has read them.
 *
 * @returns stops watching
 */
function watchDeparture(socket: Duplex, leave: () => void): () => void {
  socket.once('end', leave)
  socket.once('close', leave)
  if (socket.readableEnded || socket.destroyed) leave()
  return () => {
    socket.off('end', leave)
    socket.off('close', leave)
  }
}

function ignore(): void {}
