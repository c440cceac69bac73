import { writeFile } from 'node:fs/promises'
import { cpus } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  countFromEnv,
  listFromEnv,
  numberFromEnv,
  optionalNumberFromEnv,
  problems,
  serverNodeArgsFromEnv,
  warn,
} from './lib/env.js'
import { FRONTIER_THRESHOLDS_MS, searchFrontier } from './lib/frontier.js'
import { waitForQuietMachine, watchCpuSeconds, watchForeignCpu } from './lib/machine.js'
import {
  checkAnswer,
  type Endpoint,
  endpointOf,
  measureLatency,
  measureThroughput,
  warmUp,
} from './lib/measure.js'
import { GROWTH_LIMIT, type MemoryPlan, measureMemory } from './lib/memory.js'
import { type RunningServer, runBench, startServer } from './lib/processes.js'
import { fixedRateLoad, type RateRun } from './lib/rate.js'
import {
  checkAims,
  compare,
  compareTtft,
  type FrontierResult,
  formatAims,
  formatBaselineTable,
  formatFrontierTable,
  formatGuardTable,
  formatLoggingTable,
  formatMemoryCurve,
  formatMemoryTable,
  formatModeTable,
  formatPolicyTable,
  formatTtftTable,
  frontierShares,
  type GuardCounts,
  type LogCounts,
  logsOn,
  type Measurement,
  type MemoryRow,
} from './lib/report.js'
import { combineRounds } from './lib/rounds.js'
import { MODES, type Mode, modesOf, TARGETS, type Target } from './lib/targets.js'
import {
  commitLabel,
  expectation,
  measureTtft,
  type TtftPlan,
  type TtftResult,
  type TtftRow,
  ttftVariants,
} from './lib/ttft.js'

const CONNECTIONS = 32
const WARMUP_CONCURRENCY = 8
// Another job on the machine often finishes within seconds; waiting a little beats a disturbed figure.
const QUIET_WAIT_MS = 5_000
const NAME_WIDTH = Math.max(...TARGETS.map((t) => t.name.length))
// Records go to the store in batches at least once a second: a store that keeps up has written every
// record of a mode well within this after its last request.
const LOG_SETTLE_MS = 10_000
const LOG_POLL_MS = 100
// Fixed-rate load (the frontier and the memory part): enough connections that none of the rates that matter
// (p99 up to 10 ms) has requests waiting for a free one.
const RATE_CONNECTIONS = 64
// The first half second of each frontier run is not timed: new connections, and the backlog a rate over a
// threshold left behind.
const FRONTIER_SETTLE_SECONDS = 0.5
// A p99 of fewer timed requests is a handful of samples: low rates run longer to time at least this many.
const FRONTIER_MIN_TIMED = 500
// A soak this long or longer is sampled every 5 s rather than every second: the curve, not the noise.
const LONG_SOAK_SECONDS = 120
// Warm-up of the rounds after the first (and of a frontier after them): the servers kept running, so their
// JIT has settled already; what they need is connections again, the load generator's (new for every run)
// and the server's to the upstream (idle ones are closed after a few seconds).
const LATER_ROUND_WARMUP = 500
// The TTFT part: one gateway mount, read against the direct call and the bare proxy of its framework, and the
// same mount with the guard step, whose DLP holds a stream's text back.
const TTFT_TARGETS = ['direct', 'bare-fastify', 'gateway-fastify', 'gateway-fastify-guard-rules']
// Turns of every TTFT row before the timed ones: new connections, and the servers' own to the upstream.
const TTFT_SETTLE_TURNS = 10

interface Config {
  durationSeconds: number
  requests: number
  warmupRequests: number
  targets: readonly Target[]
  modes: readonly Mode[]
  /** `BENCH_ROUNDS`: how many times each target and mode is measured; each row is the median. */
  rounds: number
  serverNodeArgs: readonly string[]
  /** The latency and throughput runs and their tables: off when a part is asked for `only`. */
  standard: boolean
  /** The throughput frontier (`BENCH_FRONTIER`), with the length of each of its runs. */
  frontier: boolean
  frontierSeconds: number
  /** The memory part (`BENCH_RSS`, `BENCH_SOAK_SECONDS`): its steady load; `undefined` when off. */
  memory: MemoryPlan | undefined
  /** The time to first token under each commit point (`BENCH_TTFT`); `undefined` when off. */
  ttft: TtftPlan | undefined
}

function readConfig(): Config {
  const targetNames = TARGETS.map((t) => t.name)
  const only = listFromEnv('BENCH_ONLY', targetNames)
  const frontier = partFromEnv('BENCH_FRONTIER', 'off')
  const soakSeconds = optionalNumberFromEnv('BENCH_SOAK_SECONDS')
  // A soak is the memory part with a long load: asking for one turns the part on.
  const rss = partFromEnv('BENCH_RSS', soakSeconds === undefined ? 'off' : 'on')
  const memorySeconds = soakSeconds ?? 40
  const ttft = partFromEnv('BENCH_TTFT', 'off')
  return {
    durationSeconds: numberFromEnv('BENCH_DURATION', 4),
    requests: numberFromEnv('BENCH_REQUESTS', 1500),
    // Fewer leaves the JIT mid-way: p50s then drift down over the first few thousand requests.
    warmupRequests: numberFromEnv('BENCH_WARMUP', 4000),
    targets: TARGETS.filter((t) => only.includes(t.name)),
    modes: MODES.filter((m) => listFromEnv('BENCH_MODES', MODES).includes(m)),
    rounds: countFromEnv('BENCH_ROUNDS', 1),
    // e.g. BENCH_SERVER_ARGS='--cpu-prof --cpu-prof-dir=prof' to profile the servers under test.
    serverNodeArgs: serverNodeArgsFromEnv(),
    standard: frontier !== 'only' && rss !== 'only' && ttft !== 'only',
    frontier: frontier !== 'off',
    frontierSeconds: numberFromEnv('BENCH_FRONTIER_SECONDS', 2),
    memory:
      rss === 'off'
        ? undefined
        : {
            // Well under what the slowest mount serves on two shared cores, so the load stays a steady one.
            rate: numberFromEnv('BENCH_RSS_RATE', 500),
            seconds: memorySeconds,
            sampleSeconds: numberFromEnv(
              'BENCH_RSS_SAMPLE_SECONDS',
              memorySeconds >= LONG_SOAK_SECONDS ? 5 : 1,
            ),
            soak: soakSeconds !== undefined,
          },
    ttft:
      ttft === 'off'
        ? undefined
        : {
            requests: countFromEnv('BENCH_TTFT_REQUESTS', 300),
            // About a token's pace from a fast provider, and 20 of them make the answer last 100 ms.
            gapMs: numberFromEnv('BENCH_TTFT_GAP_MS', 5),
            // The gateway takes whole milliseconds.
            holdMs: countFromEnv('BENCH_TTFT_HOLD_MS', 20),
          },
  }
}

/** An opt-in part of the run: `1` adds it to the latency and throughput runs, `only` runs it alone. */
function partFromEnv(name: string, fallback: 'off' | 'on'): 'off' | 'on' | 'only' {
  const raw = (process.env[name] ?? '').trim().toLowerCase()
  if (raw === '') return fallback
  if (['1', 'true', 'on', 'yes'].includes(raw)) return 'on'
  if (['0', 'false', 'off', 'no'].includes(raw)) return 'off'
  if (raw === 'only') return 'only'
  throw new Error(`${name} must be 1, 0 or only, got '${process.env[name]}'`)
}

/**
 * Errors, non-2xx answers and answers that skipped the policy under test (a cache miss, a limit step that
 * did not run, a store that failed and was ridden over) make every figure of the row meaningless, so they
 * are shouted, twice.
 */
function reportProblems(m: Measurement, round?: string): void {
  const { non2xx, errors, timeouts } = m.throughput
  const found: string[] = []
  if (m.latency.failures + non2xx + errors + timeouts > 0) {
    found.push(
      `${m.latency.failures} non-200 in the latency run; under load ${non2xx} non-2xx, ` +
        `${errors} errors, ${timeouts} timeouts`,
    )
  }
  const marker = m.target.marker
  if (marker && m.latency.unmarked > 0) {
    const expected = marker.value === undefined ? marker.header : `${marker.header}: ${marker.value}`
    found.push(`${m.latency.unmarked} answers in the latency run without ${expected}`)
  }
  if (m.target.cached && m.upstreamAnswers > 0) {
    found.push(`${m.upstreamAnswers} requests reached the upstream instead of the cache`)
  }
  if (m.storeErrors > 0) found.push(`${m.storeErrors} store calls failed or timed out`)
  found.push(...logProblems(m), ...guardProblems(m))
  const row = round === undefined ? `${m.target.name} ${m.mode}` : `${m.target.name} ${m.mode} (${round})`
  if (found.length > 0) warn(`${row}: ${found.join('; ')}`)
}

/**
 * A logging row measures nothing unless the gateway wrote a record for each request: every one its server
 * received must have one, written (or dropped) by the time its queue settled after the throughput run.
 */
function logProblems(m: Measurement): string[] {
  if (m.target.logs === 'off')
    return m.logs ? ['its logs are on, though the row is the logs-off baseline'] : []
  if (!logsOn(m.target)) return []
  if (m.logs === undefined) return ['no log counters reported: nothing shows that its records were written']
  const { written, dropped } = m.logs
  const found: string[] = []
  if (written === 0) found.push(`no record written (${dropped} dropped): the row measured no logging`)
  else if (dropped > 0)
    found.push(`${dropped} records dropped, ${written} written: the store failed or fell behind`)
  const missing = m.logs.requests - written - dropped
  if (missing > 0) {
    const after = `${LOG_SETTLE_MS / 1000} s after the run`
    const requests = `${m.logs.requests} requests the gateway received`
    found.push(`${missing} of the ${requests} had no record written ${after}`)
  }
  return found
}

/**
 * A guard row measures its step only if DLP redacted every request before the call (its marker shows DLP
 * found the address; the upstream must never have seen it) and, for the model row, if the guard model was
 * asked about every request's prompt and answer. Requests the load generator dropped when its throughput run
 * ended may have stopped short of either call: at most one per connection.
 */
function guardProblems(m: Measurement): string[] {
  if (m.guard === undefined) return []
  const { requests, classifierCalls, unredacted } = m.guard
  const found: string[] = []
  if (unredacted > 0)
    found.push(`${unredacted} requests reached the upstream with the email address unredacted`)
  if (m.target.guard === 'model') {
    const least = 2 * (requests - CONNECTIONS)
    if (classifierCalls < least) {
      found.push(
        `${classifierCalls} guard model calls for ${requests} requests (two each expected, at least ${least})`,
      )
    }
  } else if (classifierCalls > 0) {
    found.push(`${classifierCalls} guard model calls from a mount without a guard model`)
  }
  return found
}

/**
 * A Redis or Postgres row is left out with a warning when its store cannot be reached, rather than ending
 * the whole run.
 */
async function startTarget(target: Target, upstream: RunningServer, config: Config) {
  if (target.role === 'direct') return undefined
  try {
    return await startServer(target.name, { UPSTREAM_URL: upstream.origin }, config.serverNodeArgs)
  } catch (error) {
    if (!target.redis && !target.postgres) throw error
    warn(`${target.name} not measured: ${(error as Error).message}`)
    return null
  }
}

interface TargetResults {
  measurements: Measurement[]
  frontiers: FrontierResult[]
}

/** A target with its server running (none for `direct`): where its requests go and whose CPU is its own. */
interface TargetUnderTest {
  readonly target: Target
  readonly modes: readonly Mode[]
  readonly server: RunningServer | undefined
  readonly origin: string
  readonly ownPids: readonly number[]
}

/** Starts the target's server; `undefined` when it was left out (its store could not be reached). */
async function prepareTarget(
  target: Target,
  modes: readonly Mode[],
  upstream: RunningServer,
  config: Config,
): Promise<TargetUnderTest | undefined> {
  const server = await startTarget(target, upstream, config)
  if (server === null) return undefined
  return {
    target,
    modes,
    server,
    origin: server?.origin ?? upstream.origin,
    ownPids: server ? [upstream.pid, server.pid, ...server.helperPids] : [upstream.pid],
  }
}

/** One target after the other, each server stopped before the next starts: every row measured once. */
async function benchEachTarget(upstream: RunningServer, config: Config): Promise<TargetResults> {
  const results: TargetResults = { measurements: [], frontiers: [] }
  for (const target of config.targets) {
    const { measurements, frontiers } = await benchTarget(target, upstream, config)
    results.measurements.push(...measurements)
    results.frontiers.push(...frontiers)
  }
  return results
}

async function benchTarget(target: Target, upstream: RunningServer, config: Config): Promise<TargetResults> {
  const results: TargetResults = { measurements: [], frontiers: [] }
  const modes = modesOf(target, config.modes)
  const frontier = config.frontier && hasFrontier(target)
  if (modes.length === 0 || !(config.standard || frontier)) return results
  const under = await prepareTarget(target, modes, upstream, config)
  if (under === undefined) return results
  try {
    for (const mode of modes) {
      const endpoint = endpointOf(target, mode, under.origin)
      await checkAnswer(endpoint)
      if (config.standard) {
        const measurement = await measureMode(under, endpoint, upstream, config.warmupRequests, config)
        reportProblems(measurement)
        console.error(progressLine(measurement))
        results.measurements.push(measurement)
      }
      if (frontier) {
        // The standard runs warmed the server up already; alone, the frontier does it itself.
        if (!config.standard) await warmUp(endpoint, config.warmupRequests, WARMUP_CONCURRENCY)
        results.frontiers.push(await frontierOf(under, endpoint, config))
      }
    }
  } finally {
    await under.server?.stop()
  }
  return results
}

/**
 * `BENCH_ROUNDS` over 1: every server started once and kept running, then every target and mode measured in
 * the usual order once per round, so that a slow stretch of the machine falls on one round of many rows
 * rather than on all of one row. Each row is the median of its rounds. The frontier runs once, after them.
 */
async function benchInRounds(upstream: RunningServer, config: Config): Promise<TargetResults> {
  const started: TargetUnderTest[] = []
  try {
    for (const target of config.targets) {
      const modes = modesOf(target, config.modes)
      if (modes.length === 0) continue
      const under = await prepareTarget(target, modes, upstream, config)
      if (under !== undefined) started.push(under)
    }
    const rounds = await measureRounds(started, upstream, config)
    const frontiers: FrontierResult[] = []
    if (config.frontier) {
      for (const under of started.filter((u) => hasFrontier(u.target))) {
        for (const mode of under.modes) {
          const endpoint = endpointOf(under.target, mode, under.origin)
          await warmUp(endpoint, laterRoundWarmup(config), WARMUP_CONCURRENCY)
          frontiers.push(await frontierOf(under, endpoint, config))
        }
      }
    }
    return { measurements: rounds.map(combineRounds), frontiers }
  } finally {
    await Promise.all(started.map((under) => under.server?.stop()))
  }
}

/** Every round of every target and mode, per row in the order the rows ran in the first round. */
async function measureRounds(
  started: readonly TargetUnderTest[],
  upstream: RunningServer,
  config: Config,
): Promise<Measurement[][]> {
  const rows = started.flatMap((under) =>
    under.modes.map((mode) => ({ under, endpoint: endpointOf(under.target, mode, under.origin) })),
  )
  const rounds = rows.map((): Measurement[] => [])
  for (let round = 1; round <= config.rounds; round++) {
    const label = `round ${round}/${config.rounds}`
    for (const [i, { under, endpoint }] of rows.entries()) {
      // The servers stay up from one round to the next: a later round has nothing new to check.
      if (round === 1) await checkAnswer(endpoint)
      const warmup = round === 1 ? config.warmupRequests : laterRoundWarmup(config)
      const measurement = await measureMode(under, endpoint, upstream, warmup, config)
      // Every round must hold on its own: a problem in one is not averaged away by the others.
      reportProblems(measurement, label)
      console.error(progressLine(measurement, label))
      rounds[i]!.push(measurement)
    }
  }
  return rounds
}

function laterRoundWarmup(config: Config): number {
  return Math.min(LATER_ROUND_WARMUP, config.warmupRequests)
}

/** Warm-up, then the latency and throughput runs, with the counters that tell whether they mean anything. */
async function measureMode(
  { target, server, ownPids }: TargetUnderTest,
  endpoint: Endpoint,
  upstream: RunningServer,
  warmupRequests: number,
  config: Config,
): Promise<Measurement> {
  // From here on, a cache must answer everything: the answer check has filled it.
  const before = await counters(upstream, server)
  await waitForQuietMachine(ownPids, QUIET_WAIT_MS)
  const foreignCpu = watchForeignCpu(ownPids)
  await warmUp(endpoint, warmupRequests, WARMUP_CONCURRENCY)
  const latency = await measureLatency(endpoint, config.requests)
  const serverCpu = server && watchCpuSeconds([server.pid])
  const helperCpu = server && watchCpuSeconds(server.helperPids)
  const measured = await measureThroughput(endpoint, CONNECTIONS, config.durationSeconds)
  const ownSeconds = serverCpu?.()
  const helperSeconds = helperCpu?.()
  const perRequest = (seconds: number) => (seconds * 1e6) / measured.requests
  const throughput =
    ownSeconds === undefined || helperSeconds === undefined || measured.requests === 0
      ? measured
      : {
          ...measured,
          cpuUsPerRequest: perRequest(ownSeconds + helperSeconds),
          helperCpuUsPerRequest: perRequest(helperSeconds),
        }
  const foreignCores = foreignCpu()
  const after = await counters(upstream, server)
  // After the clock stopped: waiting for the store is no part of any request's figure.
  const logs = server && (await settleLogs(server, before.logs, after.logs))
  const guard: GuardCounts | undefined = target.guard && {
    requests: after.requests - before.requests,
    classifierCalls: after.guardCalls - before.guardCalls,
    unredacted: after.unredacted - before.unredacted,
  }
  return {
    target,
    mode: endpoint.mode,
    latency,
    throughput,
    foreignCores,
    upstreamAnswers: after.upstreamAnswers - before.upstreamAnswers,
    storeErrors: after.storeErrors - before.storeErrors,
    logs,
    guard,
  }
}

/** Gateway mounts and the bare proxies they are read against: `bare-node` has no gateway of its own. */
function hasFrontier(target: Target): boolean {
  if (target.role === 'gateway') return true
  return (
    target.role === 'bare' &&
    TARGETS.some((other) => other.role === 'gateway' && other.framework === target.framework)
  )
}

/** The frontier of one target and mode, its problems reported and its progress line printed. */
async function frontierOf(
  { target, ownPids }: TargetUnderTest,
  endpoint: Endpoint,
  config: Config,
): Promise<FrontierResult> {
  const found = await measureFrontier(target, endpoint.mode, endpoint, ownPids, config)
  reportFrontierProblems(found)
  console.error(frontierLine(found))
  return found
}

async function measureFrontier(
  target: Target,
  mode: Mode,
  endpoint: Endpoint,
  ownPids: readonly number[],
  config: Config,
): Promise<FrontierResult> {
  await waitForQuietMachine(ownPids, QUIET_WAIT_MS)
  const foreignCpu = watchForeignCpu(ownPids)
  const load = fixedRateLoad([endpoint], RATE_CONNECTIONS)
  try {
    const { points, runs } = await searchFrontier((rate) =>
      load.run(rate, Math.max(config.frontierSeconds, FRONTIER_MIN_TIMED / rate), FRONTIER_SETTLE_SECONDS),
    )
    return { target, mode, points, runs, foreignCores: foreignCpu() }
  } finally {
    await load.close()
  }
}

/** A failed request is timed as never answered, so it pushes p99 up; any at all make the row suspect. */
function reportFrontierProblems(f: FrontierResult): void {
  const failed = f.runs.filter((run) => run.failures > 0)
  if (failed.length === 0) return
  const where = failed.map((run) => `${run.failures} at ${run.rate} req/s`).join(', ')
  warn(`${f.target.name} ${f.mode} frontier: non-2xx answers or errors (${where})`)
}

/** The frontier found, and every run it took, as rate:p99 in ms (`over` for a run cut short). */
function frontierLine(f: FrontierResult): string {
  const points = f.points
    .map((p) => `<${p.thresholdMs}ms ${{ found: '', above: '>=', below: '<' }[p.bound]}${p.rate}`)
    .join(', ')
  const runs = [...f.runs]
    .sort((a, b) => a.rate - b.rate)
    .map((run) => `${run.rate}:${run.overloaded ? 'over' : run.p99Ms.toFixed(2)}`)
    .join(' ')
  const foreign = f.foreignCores === undefined ? '' : `  (others: ${f.foreignCores.toFixed(2)} cores)`
  return `${f.target.name.padEnd(NAME_WIDTH)} ${f.mode.padEnd(11)} frontier ${points}${foreign}\n${''.padEnd(NAME_WIDTH)} ${''.padEnd(11)} runs (req/s:p99 ms) ${runs}`
}

/**
 * The memory part for one gateway mount, on a server of its own started with `--expose-gc`: idle (before
 * any request), under the steady load (every mode of the run in turn, after the usual warm-up) and after it.
 */
async function memoryOfTarget(
  target: Target,
  upstream: RunningServer,
  config: Config,
  plan: MemoryPlan,
): Promise<MemoryRow | undefined> {
  const modes = modesOf(target, config.modes)
  if (modes.length === 0) return undefined
  const server = await startServer(target.name, { UPSTREAM_URL: upstream.origin }, [
    ...config.serverNodeArgs,
    '--expose-gc',
  ])
  try {
    const endpoints = modes.map((mode) => endpointOf(target, mode, server.origin))
    const load = fixedRateLoad(endpoints, RATE_CONNECTIONS)
    try {
      // A cold JIT serves far fewer requests a second: without the warm-up the steady rate falls behind.
      const memory = await measureMemory(server, load, plan, async () => {
        for (const endpoint of endpoints) await checkAnswer(endpoint)
        for (const endpoint of endpoints) await warmUp(endpoint, config.warmupRequests, WARMUP_CONCURRENCY)
      })
      return { target, memory }
    } finally {
      await load.close()
    }
  } finally {
    await server.stop()
  }
}

/**
 * A load the server could not keep up with, or that failed, measured something else than a steady state;
 * memory that grows through the steady part is the leak the soak looks for.
 */
function reportMemoryProblems({ target, memory }: MemoryRow, plan: MemoryPlan): void {
  const found: string[] = []
  const { load } = memory
  if (load.overloaded) found.push(`it fell behind ${plan.rate} req/s, so the load was cut short`)
  if (load.failures > 0) found.push(`${load.failures} non-2xx answers or errors under the load`)
  if (!memory.gcRan) found.push('no garbage collection ran before the after-load reading')
  if (memory.growth === undefined) {
    // A load cut short has said why already.
    if (!load.overloaded) {
      found.push(
        `no steady state: the load ended before ${memory.steadyFromSeconds.toFixed(0)} s ` +
          '(the log store fills first); give BENCH_SOAK_SECONDS more',
      )
    }
  } else if (plan.soak && memory.growth > GROWTH_LIMIT) {
    found.push(
      `RSS grew ${(memory.growth * 100).toFixed(1)}% from the first steady sample to the last ` +
        `(more than ${GROWTH_LIMIT * 100}%)`,
    )
  }
  if (found.length > 0) warn(`${target.name} memory: ${found.join('; ')}`)
}

function memoryLine({ target, memory }: MemoryRow): string {
  const mib = (bytes: number | undefined) => (bytes === undefined ? '-' : (bytes / 1024 / 1024).toFixed(1))
  const growth = memory.growth === undefined ? '-' : `${(memory.growth * 100).toFixed(1)}%`
  return (
    `${target.name.padEnd(NAME_WIDTH)} memory  RSS idle ${mib(memory.idle.rssBytes)} MiB, steady ` +
    `${mib(memory.steadyRssBytes)} MiB, after ${mib(memory.after.rssBytes)} MiB, growth ${growth}, ` +
    `load p99 ${memory.load.p99Ms.toFixed(3)} ms`
  )
}

/**
 * The TTFT part: `direct`, the bare Fastify proxy, the Fastify mount and that mount with the guard step (those
 * of them in the run), each started anew; the mount's rows are its commit points, asked for per request, and
 * the guard row is at the default one. After the answer checks and
 * the usual warm-up (on the same requests with the events sent at once), the rows are timed in turn.
 */
async function benchTtft(
  upstream: RunningServer,
  config: Config,
  plan: TtftPlan,
): Promise<TtftResult | undefined> {
  const targets = config.targets.filter((t) => TTFT_TARGETS.includes(t.name))
  if (targets.length === 0) {
    warn(`TTFT not measured: BENCH_ONLY has none of ${TTFT_TARGETS.join(', ')}`)
    return undefined
  }
  const started: TargetUnderTest[] = []
  try {
    for (const target of targets) {
      const under = await prepareTarget(target, ['sse'], upstream, config)
      if (under !== undefined) started.push(under)
    }
    const variants = started.flatMap((under) =>
      ttftVariants(under.target, endpointOf(under.target, 'sse', under.origin), plan),
    )
    for (const variant of variants) await checkAnswer(variant.endpoint)
    for (const variant of variants) {
      await warmUp(variant.unspaced, config.warmupRequests, WARMUP_CONCURRENCY)
    }
    const ownPids = [...new Set(started.flatMap((under) => under.ownPids))]
    await waitForQuietMachine(ownPids, QUIET_WAIT_MS)
    const foreignCpu = watchForeignCpu(ownPids)
    const rows = await measureTtft(variants, plan, TTFT_SETTLE_TURNS)
    return { plan, rows, foreignCores: foreignCpu() }
  } finally {
    await Promise.all(started.map((under) => under.server?.stop()))
  }
}

/**
 * Any failed answer makes a row suspect. A commit header the gateway did not apply, or events the upstream
 * did not space, time every answer unlike the row's commit point; a busy machine, only some (a process kept
 * waiting between two writes of one event), which the progress line counts.
 */
function reportTtftProblems({ plan, rows }: TtftResult): void {
  for (const row of rows) {
    const found: string[] = []
    if (row.failures > 0) found.push(`${row.failures} non-200 answers or streams without answer content`)
    if (row.unexpected > plan.requests / 2) {
      found.push(
        `${row.unexpected} of ${plan.requests} answers without ${expectation(row, plan.gapMs).text}: ` +
          'the row measured another commit point',
      )
    }
    if (found.length > 0) warn(`${row.target.name} TTFT ${commitLabel(row)}: ${found.join('; ')}`)
  }
}

function ttftLine(row: TtftRow): string {
  const ms = ({ p50Ms, p99Ms }: { p50Ms: number; p99Ms: number }) =>
    `p50 ${p50Ms.toFixed(2)} p99 ${p99Ms.toFixed(2)}`
  return (
    `${row.target.name.padEnd(NAME_WIDTH)} ttft ${commitLabel(row).padEnd(17)} ` +
    `first byte ${ms(row.firstByte)}, first token ${ms(row.firstToken)}, end ${ms(row.end)} ms` +
    (row.unexpected > 0 ? ` (${row.unexpected} timed unlike the commit point)` : '')
  )
}

async function counters(upstream: RunningServer, server: RunningServer | undefined) {
  const [upstreamStats, serverStats] = await Promise.all([upstream.stats(), server?.stats()])
  return {
    upstreamAnswers: upstreamStats.answers ?? 0,
    // The guard rows' checks: Llama Guard calls and requests carrying the email address, as the upstream
    // counted them, and the requests the gateway's server received.
    guardCalls: upstreamStats.guardCalls ?? 0,
    unredacted: upstreamStats.unredacted ?? 0,
    requests: serverStats?.requests ?? 0,
    storeErrors: serverStats?.storeErrors ?? 0,
    logs: serverStats && logQueueOf(serverStats),
  }
}

interface LogQueueCounts {
  /** Requests the gateway's server received, read in the same stats reply as the queue's counters. */
  requests: number
  written: number
  dropped: number
  queued: number
}

/** The gateway's log queue counters; `undefined` from a server whose logs are off or not reported. */
function logQueueOf(stats: Record<string, number>): LogQueueCounts | undefined {
  const { logsWritten, logsDropped, logsQueued, requests = 0 } = stats
  if (logsWritten === undefined || logsDropped === undefined || logsQueued === undefined) return undefined
  return { requests, written: logsWritten, dropped: logsDropped, queued: logsQueued }
}

/**
 * Waits until the gateway has written or dropped a record for every request its server received since
 * `before` and emptied its queue, or `LOG_SETTLE_MS` passed, then gives its counts since `before`.
 *
 * Requests and records are both counted in the gateway's process and read in one stats reply, so they are
 * taken at the same instant. The upstream's count is no measure of this: the load generator closes its
 * connections at the end of a throughput run, and a request the gateway had sent on by then is cancelled
 * and recorded (as aborted) at once, while the upstream may count it later, once the next row's counters
 * were read: that row then had an upstream answer without a record of its own. And a request cancelled
 * before it was sent on is recorded without any upstream answer, which hid such a shortfall or a lost record.
 */
async function settleLogs(
  server: RunningServer,
  before: LogQueueCounts | undefined,
  after: LogQueueCounts | undefined,
): Promise<LogCounts | undefined> {
  if (before === undefined || after === undefined) return undefined
  const deadline = performance.now() + LOG_SETTLE_MS
  let now = after
  // Against the requests received so far, not when the run ended: one the gateway read from its socket
  // after that is this row's request too, and its record comes after it.
  const settled = (c: LogQueueCounts) =>
    c.queued === 0 && c.written + c.dropped - before.written - before.dropped >= c.requests - before.requests
  while (!settled(now) && performance.now() < deadline) {
    await sleep(LOG_POLL_MS)
    now = logQueueOf(await server.stats()) ?? now
  }
  return {
    requests: now.requests - before.requests,
    written: now.written - before.written,
    dropped: now.dropped - before.dropped,
    queuedAtEnd: after.queued,
  }
}

/** `round`, when the run has rounds, says which one the line is (`round 2/3`). */
function progressLine(
  { target, mode, latency, throughput, foreignCores, logs, guard }: Measurement,
  round?: string,
): string {
  const foreign = foreignCores === undefined ? '' : `  (others: ${foreignCores.toFixed(2)} cores)`
  const records =
    logs === undefined
      ? ''
      : `\n${''.padEnd(NAME_WIDTH)} ${mode.padEnd(11)} log records: ${logs.written} written, ` +
        `${logs.dropped} dropped of ${logs.requests} requests ` +
        `(${logs.queuedAtEnd} still queued when the throughput run ended)`
  const guarded =
    guard === undefined
      ? ''
      : `\n${''.padEnd(NAME_WIDTH)} ${mode.padEnd(11)} guard: ${guard.classifierCalls} guard model calls ` +
        `for ${guard.requests} requests, ${guard.unredacted} reached the upstream unredacted`
  return (
    `${target.name.padEnd(NAME_WIDTH)} ${mode.padEnd(11)} ${round === undefined ? '' : `${round}  `}` +
    `p50 ${latency.p50Ms.toFixed(3)} ms  ` +
    `p99 ${latency.p99Ms.toFixed(3)} ms  ${throughput.requestsPerSecond.toFixed(0)} req/s${foreign}${records}` +
    guarded
  )
}

function describeRun(config: Config): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  const lines = [`node ${process.version}, ${cpus().length} x ${cpu}`]
  if (config.standard) {
    lines.push(
      `${config.requests} sequential requests, ${config.durationSeconds} s at ${CONNECTIONS} connections, ` +
        `${config.warmupRequests} warm-up requests, per target and mode`,
    )
    if (config.rounds > 1) {
      lines.push(
        `${config.rounds} rounds of every target and mode, ${laterRoundWarmup(config)} warm-up requests ` +
          'after the first; each row the median of its rounds',
      )
    }
  }
  if (config.frontier) {
    lines.push(
      `frontier: p99 under ${FRONTIER_THRESHOLDS_MS.join(', ')} ms, fixed-rate runs of ` +
        `${FRONTIER_SETTLE_SECONDS} + ${config.frontierSeconds} s on up to ${RATE_CONNECTIONS} connections`,
    )
  }
  if (config.memory) lines.push(memoryTitle(config))
  if (config.ttft) {
    const { requests, gapMs, holdMs } = config.ttft
    lines.push(
      `ttft: sse with the upstream's events ${gapMs} ms apart, ${requests} requests per row in turn; ` +
        `commit first-byte, first-token, first-token +${holdMs} ms, complete`,
    )
  }
  return lines.join('\n')
}

function memoryTitle(config: Config): string {
  const { rate, seconds, sampleSeconds } = config.memory!
  return (
    `MEMORY (logs on): ${rate} req/s of ${config.modes.join(', ')} in turn for ${seconds} s, ` +
    `sampled every ${sampleSeconds} s`
  )
}

/** A rate run as JSON: `Infinity` (a run cut short) has no JSON form, so such a p99 is `null`. */
function runJson(run: RateRun) {
  const finite = (ms: number) => (Number.isFinite(ms) ? ms : null)
  return { ...run, p50Ms: finite(run.p50Ms), p99Ms: finite(run.p99Ms) }
}

/** One round of a row: its own figures and counters, before the medians and sums. */
function roundJson(m: Measurement) {
  return {
    ...m.latency,
    ...m.throughput,
    foreignCores: m.foreignCores,
    upstreamAnswers: m.upstreamAnswers,
    storeErrors: m.storeErrors,
    logs: m.logs,
    guard: m.guard,
  }
}

function toJson(
  config: Config,
  { measurements, frontiers }: TargetResults,
  memory: readonly MemoryRow[],
  ttft: TtftResult | undefined,
  modes: readonly Mode[],
) {
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    config: { ...config, targets: config.targets.map((t) => t.name), connections: CONNECTIONS },
    results: measurements.map((m) => ({
      target: m.target.name,
      mode: m.mode,
      ...m.latency,
      ...m.throughput,
      upstreamAnswers: m.upstreamAnswers,
      storeErrors: m.storeErrors,
      logs: m.logs,
      guard: m.guard,
      ...compare(m, measurements),
      rounds: m.rounds?.map(roundJson),
    })),
    aims: checkAims(measurements, modes),
    frontier: frontiers.map((f) => ({
      target: f.target.name,
      mode: f.mode,
      thresholdsMs: f.points.map((p) => p.thresholdMs),
      // The highest rate with p99 under each threshold, or a bound: the frontier is `above` it when no run
      // was over the threshold, `below` it when every run was.
      rates: f.points.map((p) => p.rate),
      bounds: f.points.map((p) => p.bound),
      shareOfBare: frontierShares(f, frontiers).map((share) => share ?? null),
      foreignCores: f.foreignCores,
      runs: f.runs.map(runJson),
    })),
    memory: memory.map(({ target, memory: m }) => ({
      target: target.name,
      ...m,
      load: runJson(m.load),
    })),
    ttft: ttft && {
      ...ttft.plan,
      foreignCores: ttft.foreignCores,
      rows: ttft.rows.map((row) => ({
        target: row.target.name,
        commit: row.commit ?? null,
        holdMs: row.holdMs,
        firstByte: row.firstByte,
        firstToken: row.firstToken,
        end: row.end,
        failures: row.failures,
        unexpected: row.unexpected,
        ...compareTtft(row, ttft.rows),
      })),
    },
    problems,
  }
}

async function main(): Promise<void> {
  const config = readConfig()
  console.log(describeRun(config))
  const upstream = await startServer('upstream', {}, config.serverNodeArgs)
  // Rounds are of the latency and throughput runs: without them there is nothing to repeat.
  const results =
    config.standard && config.rounds > 1
      ? await benchInRounds(upstream, config)
      : await benchEachTarget(upstream, config)
  const memory: MemoryRow[] = []
  if (config.memory) {
    for (const target of config.targets.filter((t) => t.role === 'gateway')) {
      const row = await memoryOfTarget(target, upstream, config, config.memory)
      if (row === undefined) continue
      reportMemoryProblems(row, config.memory)
      console.error(memoryLine(row))
      memory.push(row)
    }
  }
  const ttft = config.ttft && (await benchTtft(upstream, config, config.ttft))
  if (ttft) {
    reportTtftProblems(ttft)
    for (const row of ttft.rows) console.error(ttftLine(row))
  }

  const { measurements, frontiers } = results
  if (config.standard) {
    for (const mode of config.modes) console.log(`\n${formatModeTable(mode, measurements)}`)
    const policyTable = formatPolicyTable(measurements)
    if (policyTable !== undefined) console.log(`\n${policyTable}`)
    const guardTable = formatGuardTable(measurements)
    if (guardTable !== undefined) console.log(`\n${guardTable}`)
    const loggingTable = formatLoggingTable(measurements)
    if (loggingTable !== undefined) console.log(`\n${loggingTable}`)
    const baselineTable = formatBaselineTable(measurements)
    if (baselineTable !== undefined) console.log(`\n${baselineTable}`)
  }
  const frontierTable = formatFrontierTable(frontiers)
  if (frontierTable !== undefined) console.log(`\n${frontierTable}`)
  const memoryTable = config.memory && formatMemoryTable(memory, memoryTitle(config), config.memory.soak)
  if (memoryTable) {
    console.log(`\n${memoryTable}`)
    for (const row of memory) console.log(`\n${formatMemoryCurve(row)}`)
  }
  if (ttft) console.log(`\n${formatTtftTable(ttft)}`)
  if (config.standard) console.log(`\n${formatAims(checkAims(measurements, config.modes))}`)
  for (const problem of problems) console.log(`\n!!!!! WARNING: ${problem} !!!!!`)

  const json = JSON.stringify(toJson(config, results, memory, ttft, config.modes), null, 2)
  if (process.argv.includes('--json')) console.log(json)
  const out = process.env.BENCH_OUT
  if (out) {
    await writeFile(out, `${json}\n`)
    console.log(`\nfigures written to ${out}`)
  }
}

await runBench(main)
