import { setTimeout as sleep } from 'node:timers/promises'
import type { RunningServer } from './processes.js'
import type { FixedRateLoad, RateRun } from './rate.js'

// The memory part: a gateway's resident set size idle, under a steady load at a fixed rate, and once the
// load has stopped and a full garbage collection has run. With a long load (a soak) the curve over time is
// what matters: memory that keeps growing once the gateway is in its steady state is a leak.

/** The server has just said it listens: let what it allocated while starting settle before reading it. */
const IDLE_SETTLE_MS = 1_000
/** The log queue writes its last records within a second of the last request: wait for that first. */
const AFTER_LOAD_MS = 2_000
/** After the collection: V8 returns some of the freed pages to the system a little later. */
const AFTER_GC_MS = 1_000
/**
 * The default memory log store keeps the newest 10,000 records: until it holds that many, every request
 * grows it, as designed. Records are written in batches within a second of their request.
 */
const LOG_STORE_RECORDS = 10_000
const LOG_FLUSH_SECONDS = 1
/** The steady part starts no earlier than this share of the load: the JIT and the pools settle first. */
const MIN_SETTLE_SHARE = 0.2
/** Growth from the first steady sample to the last past which a row is flagged. */
export const GROWTH_LIMIT = 0.1

export interface MemorySample {
  /** Seconds since the load started (0 for the idle reading). */
  readonly atSeconds: number
  readonly rssBytes: number
  readonly heapUsedBytes: number
}

export interface MemoryResult {
  readonly idle: MemorySample
  /** Every sample taken while the load ran. */
  readonly samples: MemorySample[]
  /** Where the steady part starts: the samples from here on are the steady state. */
  readonly steadyFromSeconds: number
  /** The median RSS of the steady samples; `undefined` when the load was too short to have any. */
  readonly steadyRssBytes: number | undefined
  /** The last steady sample's RSS over the first's, less one; `undefined` with fewer than two. */
  readonly growth: number | undefined
  readonly after: MemorySample
  /** Whether the server ran the collection before `after` (it needs `--expose-gc`). */
  readonly gcRan: boolean
  /** The load itself: its p99 tells whether the rate was a steady one for this server. */
  readonly load: RateRun
}

export interface MemoryPlan {
  readonly rate: number
  readonly seconds: number
  readonly sampleSeconds: number
  /**
   * A soak (`BENCH_SOAK_SECONDS`): long enough that growth over the steady part means something. Over a short
   * load it is as much the garbage collector's sawtooth (the heap grows between full collections, and RSS
   * with it) as anything, so it is shown but not flagged.
   */
  readonly soak: boolean
}

/**
 * Reads the idle server, runs `beforeLoad` (the answer checks and the warm-up: after the idle reading, so
 * that it is of a server no request reached yet), holds `plan.rate` for `plan.seconds` while sampling every
 * `plan.sampleSeconds`, then reads the server after the load.
 */
export async function measureMemory(
  server: RunningServer,
  load: FixedRateLoad,
  plan: MemoryPlan,
  beforeLoad: () => Promise<void>,
): Promise<MemoryResult> {
  await sleep(IDLE_SETTLE_MS)
  const idle = sampleOf(await server.stats(), 0)
  await beforeLoad()

  const startedAt = performance.now()
  let loading = true
  const running = load.run(plan.rate, plan.seconds, 0).finally(() => {
    loading = false
  })
  const samples: MemorySample[] = []
  // Every sample is taken while requests are still being sent: none lands on the drain at the end.
  for (let at = plan.sampleSeconds; at < plan.seconds && loading; at += plan.sampleSeconds) {
    await sleep(startedAt + at * 1000 - performance.now())
    if (!loading) break
    samples.push(sampleOf(await server.stats(), (performance.now() - startedAt) / 1000))
  }
  const loadRun = await running

  await sleep(AFTER_LOAD_MS)
  const collected = await server.statsAfterGc()
  await sleep(AFTER_GC_MS)
  const after = sampleOf(await server.stats(), (performance.now() - startedAt) / 1000)

  const steadyFromSeconds = steadyStart(plan)
  const steady = samples.filter((sample) => sample.atSeconds >= steadyFromSeconds)
  const first = steady[0]
  const last = steady.at(-1)
  return {
    idle,
    samples,
    steadyFromSeconds,
    steadyRssBytes: steady.length === 0 ? undefined : median(steady.map((sample) => sample.rssBytes)),
    growth: first && last && steady.length > 1 ? last.rssBytes / first.rssBytes - 1 : undefined,
    after,
    gcRan: collected.gcRan === 1,
    load: loadRun,
  }
}

/**
 * When the gateway's memory should stop growing: its log store full (every request adds a record until it
 * holds `LOG_STORE_RECORDS`), and no earlier than a fifth of the load.
 */
export function steadyStart(plan: MemoryPlan): number {
  return Math.max(plan.seconds * MIN_SETTLE_SHARE, LOG_STORE_RECORDS / plan.rate + LOG_FLUSH_SECONDS)
}

function sampleOf(stats: Record<string, number>, atSeconds: number): MemorySample {
  const { rssBytes, heapUsedBytes } = stats
  if (rssBytes === undefined || heapUsedBytes === undefined) {
    throw new Error('the server did not report its memory (rssBytes, heapUsedBytes)')
  }
  return { atSeconds, rssBytes, heapUsedBytes }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}
