import type { Server } from 'node:http'
import { Session } from 'node:inspector'
import type { AddressInfo } from 'node:net'
import type { Gateway } from 'ai-gateway-middleware'
import { ANTHROPIC_KEY, OPENAI_KEY } from '../lib/keys.js'
import {
  ALLOCATIONS_START,
  ALLOCATIONS_STOP,
  type AllocationSite,
  type AllocationsMessage,
  GC_STATS_REQUEST,
  type ReadyMessage,
  STATS_REQUEST,
  type StatsMessage,
} from './messages.js'

/**
 * What a server counts for the runner to check after a measurement: the upstream counts the answers it
 * gave (none may reach it while a cache answers), the gateways the store failures they rode over.
 */
const counters: Record<string, number> = {}

/** Adds one to a counter: one property write, cheap enough for the upstream to call per request. */
export function count(name: string): void {
  counters[name] = (counters[name] ?? 0) + 1
}

/** Counters something else keeps (the gateway's log queue), read only when the runner asks. */
const statsSources: (() => Record<string, number>)[] = []

process.on('message', (message) => {
  if (message === ALLOCATIONS_START || message === ALLOCATIONS_STOP) {
    sampleAllocations(message)
    return
  }
  if ((message !== STATS_REQUEST && message !== GC_STATS_REQUEST) || !process.send) return
  // `gc` exists only under `--expose-gc`, which the runner passes for the memory part alone.
  const gc = message === GC_STATS_REQUEST ? (globalThis as { gc?: () => void }).gc : undefined
  gc?.()
  const reply: StatsMessage = {
    stats: Object.assign({ ...counters }, ...statsSources.map((read) => read()), memoryStats(), {
      gcRan: gc === undefined ? 0 : 1,
    }),
  }
  process.send(reply)
})

// A sample about every KiB allocated: a few dozen a request, enough that 10,000 requests place a function
// allocating 100 bytes a request within a few percent. V8 scales each sample to the bytes it stands for.
const ALLOCATION_SAMPLING_BYTES = 1024
let profiler: Session | undefined

/** Starts or stops sampling allocations; stopping answers with the bytes by the function allocating them. */
function sampleAllocations(message: typeof ALLOCATIONS_START | typeof ALLOCATIONS_STOP): void {
  profiler ??= new Session()
  if (message === ALLOCATIONS_START) {
    profiler.connect()
    // Without the two flags the profile holds only what is still alive when it stops: a request's garbage
    // would not be in it.
    profiler.post('HeapProfiler.startSampling', {
      samplingInterval: ALLOCATION_SAMPLING_BYTES,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    })
    return
  }
  profiler.post('HeapProfiler.stopSampling', (error, result) => {
    profiler?.disconnect()
    if (error !== null) throw error
    const sites = new Map<string, AllocationSite & { bytes: number }>()
    const visit = (node: (typeof result.profile)['head']) => {
      const { functionName, url, lineNumber } = node.callFrame
      const key = `${functionName}\0${url}\0${lineNumber}`
      const site = sites.get(key)
      if (site !== undefined) site.bytes += node.selfSize
      else if (node.selfSize > 0)
        sites.set(key, { functionName, url, line: lineNumber + 1, bytes: node.selfSize })
      for (const child of node.children) visit(child)
    }
    visit(result.profile.head)
    const reply: AllocationsMessage = { allocations: [...sites.values()] }
    process.send?.(reply)
  })
}

/** Read only when the runner asks: `memoryUsage()` walks the heap's spaces, too slow for every request. */
function memoryStats(): Record<string, number> {
  const { rss, heapUsed } = process.memoryUsage()
  return { rssBytes: rss, heapUsedBytes: heapUsed }
}

/**
 * Reports the gateway's log queue (`logsWritten`, `logsDropped`, `logsQueued`) with the other counters, so
 * that a logging row shows the records it claims to write were written, and counts the requests `server`
 * receives (`requests`): each must get a record. Both are counted in this process and read in one stats
 * reply, so the runner sees them at the same instant. The queue's counters are left out while logs are off.
 */
export function reportLogStats(gateway: Gateway, server: Server): void {
  // A second listener beside the framework's own: one function call per request, as cheap as counting gets.
  server.on('request', () => count('requests'))
  statsSources.push(() => {
    const logs = gateway.stats().logs
    if (logs === undefined) return {}
    return { logsWritten: logs.written, logsDropped: logs.dropped, logsQueued: logs.queued }
  })
}

/** Where every proxy under test sends its requests (set by the runner for each child). */
export function upstreamUrl(): string {
  const url = process.env.UPSTREAM_URL
  if (!url) throw new Error('UPSTREAM_URL is not set: start this server through bench/run.ts')
  return url
}

/** The gateway's options, the same for all three framework mounts. */
export function gatewayOptions() {
  return {
    providers: {
      openai: { apiKey: OPENAI_KEY, baseURL: `${upstreamUrl()}/v1` },
      // Anthropic's base stops above `/v1`: compat requests go to `/v1/messages` on the same fake upstream.
      anthropic: { apiKey: ANTHROPIC_KEY, baseURL: upstreamUrl() },
    },
  }
}

/** Listens on a free loopback port, then tells the parent which one. */
export function listenAndReport(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      reportListening(server)
      resolve()
    })
  })
}

/** For servers a framework started itself (Fastify's `listen`). */
export function reportListening(server: Server, helperPids: readonly number[] = []): void {
  const { port } = server.address() as AddressInfo
  const message: ReadyMessage = { port, helperPids: [...helperPids] }
  if (process.send) process.send(message)
  else console.log(`listening on http://127.0.0.1:${port}`)
}

const shutdownTasks: (() => Promise<void>)[] = []
// The runner sends SIGKILL 5 s after SIGTERM; a cleanup that hangs must not use all of that.
const SHUTDOWN_TASKS_MS = 2_000

/** Work to finish before the process exits, such as removing what it left in a shared Redis. */
export function onShutdown(task: () => Promise<void>): void {
  shutdownTasks.push(task)
}

let exiting = false

async function exitCleanly(): Promise<void> {
  if (exiting) return
  exiting = true
  const timeout = new Promise<void>((resolve) => setTimeout(resolve, SHUTDOWN_TASKS_MS).unref())
  await Promise.race([Promise.allSettled(shutdownTasks.map((task) => task())), timeout])
  process.exit(0)
}

// A server orphaned by a crashed or killed runner would hold its port and CPU: leave with the parent.
process.on('disconnect', () => void exitCleanly())
// Exiting normally (rather than dying of the signal) is what lets `--cpu-prof` write its profile.
process.on('SIGTERM', () => void exitCleanly())
