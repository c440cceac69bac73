import { performance } from 'node:perf_hooks'
import { Readable } from 'node:stream'
import { cacheKey, cacheScope } from '../cache/key.js'
import { GatewayError } from '../errors.js'
import { reportStoreError } from '../events.js'
import { cacheOptions, type GatewayOptions, parseWith, type ResolvedOptions } from '../options.js'
import { tapBody } from '../response-tap.js'
import { callStore } from '../stores/call.js'
import { createMemoryCacheStore } from '../stores/memory-cache.js'
import type { CacheEntry, CacheStore } from '../stores/types.js'
import type { GatewayContext, GatewayResponse, Next, Step } from '../types.js'

/** TTL for requests that opt in with `cf-aig-cache-key` alone, as the reference does. */
const CUSTOM_KEY_TTL = 300
/** How often a request waits on another's call before going to the provider itself. */
const MAX_WAIT_ROUNDS = 3
/**
 * How long, in all, the client of a request others wait on may hold its answer back (leave it unread)
 * before they stop waiting and call the provider themselves. A slow reader paces the provider's answer to
 * its request: the others wait for the provider, not for that reader.
 */
const MAX_HELD_BACK_MS = 1000
const CACHEABLE_METHODS = new Set(['GET', 'POST'])
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\b/i
// Response headers that describe one delivery rather than the answer: recomputed or re-sent per request.
const UNREPLAYED_HEADERS = new Set(['content-length', 'date', 'age', 'connection', 'keep-alive'])

export type CacheStatus = 'HIT' | 'MISS'

/** What `cache()` accepts: the gateway's `cache` option, same fields and defaults. */
export type CacheOptions = NonNullable<GatewayOptions['cache']>

/** Per `cache()` step: its settings, its store and the provider calls in flight identical requests can wait on. */
interface CacheRuntime {
  readonly settings: ResolvedOptions['cache']
  readonly store: () => CacheStore
  readonly flights: Map<string, Promise<CacheEntry | undefined>>
}

function createCacheRuntime(settings: ResolvedOptions['cache']): CacheRuntime {
  let store = settings?.store
  return {
    settings,
    // The default store is made on first use: a gateway whose requests never opt in never allocates it.
    store: () => {
      store ??= createMemoryCacheStore({ maxBytes: settings?.maxBytes ?? 256 * 1024 * 1024 })
      return store
    },
    flights: new Map(),
  }
}

interface CachePlan {
  readonly key: string
  readonly ttl: number
  readonly skip: boolean
}

/**
 * The response cache. A hit answers at once (`cf-aig-cache-status: HIT`) without touching limits or the
 * provider. On a miss, identical requests arriving meanwhile wait for this one's answer instead of calling
 * the provider too; as soon as it fails, turns out too large to store, or is held back by its own client,
 * they stop waiting and one of them goes to the provider next. Complete 2xx answers are stored once their
 * last byte went out: streams only when they ended with their final event.
 *
 * Takes the gateway's `cache` option (validated once, here); each `cache()` step has its own store (the
 * default: an in-memory LRU, made on first use) and its own in-flight calls.
 *
 * @example
 * cache({ ttl: 3600, store: createMemoryCacheStore({ maxBytes: 64 * 1024 * 1024 }) })
 */
export function cache(options: CacheOptions = {}): Step {
  const runtime = createCacheRuntime(parseWith(cacheOptions, options, 'cache() options'))
  // Not an async function: most requests are not cached, and for them it hands on `next()`'s own promise,
  // where an async function returning it would take two more turns of the microtask queue to settle.
  return function cache(ctx, next) {
    const ttl = cacheTtl(ctx, runtime)
    return ttl === undefined ? next() : cached(ctx, next, runtime, ttl)
  }
}

async function cached(ctx: GatewayContext, next: Next, runtime: CacheRuntime, ttl: number): Promise<void> {
  const plan = await planCaching(ctx, runtime, ttl)
  const coalesce = runtime.settings?.coalesce ?? true
  if (!plan.skip) {
    for (let round = 0; round < MAX_WAIT_ROUNDS; round++) {
      const stored = await lookup(ctx, runtime, plan.key)
      if (stored !== undefined) return serveHit(ctx, stored)
      const flight = coalesce ? runtime.flights.get(plan.key) : undefined
      if (flight === undefined) break
      const shared = await waitForFlight(flight, ctx.request.signal)
      if (shared !== undefined) return serveHit(ctx, shared)
    }
  }
  // No await between the last look at `flights` and this line: the next identical request must see it.
  const settle = coalesce && !plan.skip ? openFlight(runtime, plan.key) : undefined
  ctx.state.cacheStatus = 'MISS'
  ctx.responseHeaders['cf-aig-cache-status'] = 'MISS'
  try {
    await next()
  } catch (error) {
    settle?.(undefined)
    throw error
  }
  const writeBack = !plan.skip || (runtime.settings?.writeOnSkip ?? true)
  const response = ctx.response
  if (response === undefined || response.status < 200 || response.status > 299 || !writeBack) {
    settle?.(undefined)
    return
  }
  recordForCache(ctx, runtime, response, plan, settle)
}

/** The TTL this request is cached for, or `undefined` when it is not cacheable. */
function cacheTtl(ctx: GatewayContext, runtime: CacheRuntime): number | undefined {
  const target = ctx.state.targets?.[0]
  if (target === undefined || !CACHEABLE_METHODS.has(target.method)) return undefined
  const { ttl, key: customKey } = ctx.state.settings?.cache ?? {}
  if (ttl === 0) return undefined
  return ttl ?? runtime.settings?.ttl ?? (customKey === undefined ? undefined : CUSTOM_KEY_TTL)
}

async function planCaching(ctx: GatewayContext, runtime: CacheRuntime, ttl: number): Promise<CachePlan> {
  const targets = ctx.state.targets!
  const { key: customKey, skip } = ctx.state.settings?.cache ?? {}
  const key = cacheKey({
    gateway: ctx.gateway.options.name,
    scope: cacheScope(ctx.state.principal),
    targets,
    // Read already by `route`; bodyless requests resolve `undefined`.
    body: await ctx.readBody(),
    json: await ctx.readJson(),
    customKey,
    fingerprintSecret: runtime.settings?.keySecret,
  })
  return { key, ttl, skip: skip === true }
}

async function lookup(
  ctx: GatewayContext,
  runtime: CacheRuntime,
  key: string,
): Promise<CacheEntry | undefined> {
  try {
    return await callStore(() => runtime.store().get(key), storeTimeout(runtime))
  } catch (error) {
    // A cache that is down is a cache that misses: the request goes on to the provider.
    reportStoreError(ctx, 'cache', 'get', error)
    return undefined
  }
}

function serveHit(ctx: GatewayContext, entry: CacheEntry): void {
  const { 'cf-aig-step': step, 'cf-aig-dlp': dlpFound, ...headers } = entry.headers
  // A hit skips DLP, as the reference's does, so nothing masks what it found in the bodies this time: the
  // record keeps none. By a key of the caller's own, the body may not be the one that was scanned at all.
  const customKey = ctx.state.settings?.cache?.key !== undefined
  if (dlpFound !== undefined || (customKey && ctx.gateway.options.dlp !== undefined)) {
    ctx.state.withholdLogBodies = true
  }
  headers['content-length'] = String(entry.body.byteLength)
  if (step !== undefined) ctx.responseHeaders['cf-aig-step'] = step
  ctx.state.cacheStatus = 'HIT'
  ctx.responseHeaders['cf-aig-cache-status'] = 'HIT'
  ctx.response = { status: entry.status, headers, body: entry.body }
}

/** Resolves with the other request's entry, or `undefined` when it ended without one. */
function waitForFlight(
  flight: Promise<CacheEntry | undefined>,
  signal: AbortSignal,
): Promise<CacheEntry | undefined> {
  if (signal.aborted) return Promise.reject(new GatewayError('CLIENT_CLOSED'))
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new GatewayError('CLIENT_CLOSED'))
    signal.addEventListener('abort', onAbort, { once: true })
    flight.then((entry) => {
      signal.removeEventListener('abort', onAbort)
      resolve(entry)
    })
  })
}

/**
 * Registers this request as the one calling the provider for `key`, and returns how to end that: with the
 * entry (waiters are served from it) or `undefined` (waiters go on themselves). The flight stays listed
 * until the entry is in the store, so nobody arriving in between calls the provider again.
 */
function openFlight(
  runtime: CacheRuntime,
  key: string,
): (entry: CacheEntry | undefined, written?: Promise<unknown>) => void {
  let resolve!: (entry: CacheEntry | undefined) => void
  const flight = new Promise<CacheEntry | undefined>((done) => {
    resolve = done
  })
  runtime.flights.set(key, flight)
  let settled = false
  return (entry, written) => {
    if (settled) return
    settled = true
    resolve(entry)
    const forget = () => {
      if (runtime.flights.get(key) === flight) runtime.flights.delete(key)
    }
    if (written === undefined) forget()
    else written.then(forget, forget)
  }
}

function recordForCache(
  ctx: GatewayContext,
  runtime: CacheRuntime,
  response: GatewayResponse,
  plan: CachePlan,
  settle: ((entry: CacheEntry | undefined, written?: Promise<unknown>) => void) | undefined,
): void {
  const maxBytes = runtime.settings?.maxEntryBytes ?? 25 * 1024 * 1024
  const headers = replayedHeaders(response.headers, ctx.responseHeaders['cf-aig-step'])
  // The waiters are let go as soon as no entry can come of this answer, or its own client paces it.
  const release = settle === undefined ? undefined : () => settle(undefined)
  tapBody(
    response,
    maxBytes,
    ({ bytes, complete }) => {
      if (!complete || bytes === undefined || !wellFormed(headers, bytes)) return settle?.(undefined)
      // Kept, not replayed: what DLP found in this exchange (a stream's findings are known by its end).
      const found = ctx.state.guard?.dlp === undefined ? undefined : ctx.responseHeaders['cf-aig-dlp']
      const kept = found === undefined ? headers : { ...headers, 'cf-aig-dlp': found }
      const entry: CacheEntry = {
        status: response.status,
        headers: kept,
        body: bytes,
        storedAt: ctx.gateway.now(),
      }
      const written = write(ctx, runtime, plan, entry)
      settle?.(entry, written)
    },
    release,
  )
  if (release !== undefined && response.body instanceof Readable) whenHeldBack(response.body, release)
}

/**
 * Whether an answer that says it is JSON parses. A provider that ends its body by closing the connection
 * (no length, no chunks) shows no sign of being cut short, and a cut answer stored would be every
 * caller's answer for its TTL. Other answers (streams among them, judged by their final event) pass.
 */
function wellFormed(headers: Record<string, string>, bytes: Buffer): boolean {
  const type = headers['content-type']
  if (type === undefined || !JSON_TYPE.test(type)) return true
  try {
    JSON.parse(bytes.toString('utf8'))
    return true
  } catch {
    return false
  }
}

/**
 * Calls `release` once the stream's reader has held it back (kept it paused) for `MAX_HELD_BACK_MS` in all.
 * The client bridge pauses a stream while its client's socket is full: for a moment when the client reads,
 * for as long as it likes when it reads slowly or not at all.
 */
function whenHeldBack(body: Readable, release: () => void): void {
  let heldMs = 0
  let pausedAt: number | undefined
  let clock: NodeJS.Timeout | undefined
  const onPause = () => {
    if (pausedAt !== undefined) return
    pausedAt = performance.now()
    clock = setTimeout(() => {
      stop()
      release()
    }, MAX_HELD_BACK_MS - heldMs)
    clock.unref()
  }
  const onResume = () => {
    // A resume is announced a tick after it was asked for: by then the stream may be paused again.
    if (pausedAt === undefined || body.readableFlowing !== true) return
    heldMs += performance.now() - pausedAt
    pausedAt = undefined
    clearTimeout(clock)
  }
  const stop = () => {
    clearTimeout(clock)
    body.off('pause', onPause)
    body.off('resume', onResume)
  }
  body.on('pause', onPause)
  body.on('resume', onResume)
  body.once('close', stop)
}

async function write(
  ctx: GatewayContext,
  runtime: CacheRuntime,
  plan: CachePlan,
  entry: CacheEntry,
): Promise<void> {
  try {
    await callStore(() => runtime.store().set(plan.key, entry, plan.ttl), storeTimeout(runtime))
  } catch (error) {
    reportStoreError(ctx, 'cache', 'set', error)
  }
}

function replayedHeaders(headers: Record<string, string>, step: string | undefined): Record<string, string> {
  const kept: Record<string, string> = {}
  for (const name in headers) {
    if (!UNREPLAYED_HEADERS.has(name) && !name.startsWith('cf-aig-')) kept[name] = headers[name]!
  }
  if (step !== undefined) kept['cf-aig-step'] = step
  return kept
}

function storeTimeout(runtime: CacheRuntime): number {
  return runtime.settings?.storeTimeoutMs ?? 250
}
