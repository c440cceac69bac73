import { writeFile } from 'node:fs/promises'
import { cpus } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { waitForQuietMachine, watchForeignCpu } from './lib/machine.js'
import { checkAnswer, type Endpoint, measureLatency, measureThroughput, warmUp } from './lib/measure.js'
import { type RunningServer, startServer, stopAllServers } from './lib/processes.js'
import {
  checkAims,
  compare,
  formatAims,
  formatLoggingTable,
  formatModeTable,
  formatPolicyTable,
  type LogCounts,
  logsOn,
  type Measurement,
} from './lib/report.js'
import {
  expectedAnswer,
  MODES,
  type Mode,
  modesOf,
  requestBody,
  requestPath,
  TARGETS,
  type Target,
} from './lib/targets.js'

const CONNECTIONS = 32
const WARMUP_CONCURRENCY = 8
// Another job on the machine often finishes within seconds; waiting a little beats a disturbed figure.
const QUIET_WAIT_MS = 5_000
const NAME_WIDTH = Math.max(...TARGETS.map((t) => t.name.length))
// Records go to the store in batches at least once a second: a store that keeps up has written every
// record of a mode well within this after its last request.
const LOG_SETTLE_MS = 10_000
const LOG_POLL_MS = 100

interface Config {
  durationSeconds: number
  requests: number
  warmupRequests: number
  targets: readonly Target[]
  modes: readonly Mode[]
  serverNodeArgs: readonly string[]
}

function readConfig(): Config {
  const targetNames = TARGETS.map((t) => t.name)
  const only = listFromEnv('BENCH_ONLY', targetNames)
  return {
    durationSeconds: numberFromEnv('BENCH_DURATION', 4),
    requests: numberFromEnv('BENCH_REQUESTS', 1500),
    // Fewer leaves the JIT mid-way: p50s then drift down over the first few thousand requests.
    warmupRequests: numberFromEnv('BENCH_WARMUP', 4000),
    targets: TARGETS.filter((t) => only.includes(t.name)),
    modes: MODES.filter((m) => listFromEnv('BENCH_MODES', MODES).includes(m)),
    // e.g. BENCH_SERVER_ARGS='--cpu-prof --cpu-prof-dir=prof' to profile the servers under test.
    serverNodeArgs: (process.env.BENCH_SERVER_ARGS ?? '').split(/\s+/).filter(Boolean),
  }
}

function numberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!(value > 0)) throw new Error(`${name} must be a positive number, got '${raw}'`)
  return value
}

function listFromEnv<T extends string>(name: string, known: readonly T[]): readonly T[] {
  const raw = process.env[name]
  if (raw === undefined || raw.trim() === '') return known
  const picked = raw.split(',').map((item) => item.trim())
  const unknown = picked.filter((item) => !(known as readonly string[]).includes(item))
  if (unknown.length > 0)
    throw new Error(`${name}: unknown ${unknown.join(', ')} (known: ${known.join(', ')})`)
  return picked as T[]
}

const problems: string[] = []

function warn(problem: string): void {
  problems.push(problem)
  console.error(`\n!!!!! WARNING: ${problem} !!!!!\n`)
}

/**
 * Errors, non-2xx answers and answers that skipped the policy under test (a cache miss, a limit step that
 * did not run, a store that failed and was ridden over) make every figure of the row meaningless, so they
 * are shouted, twice.
 */
function reportProblems(m: Measurement): void {
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
  found.push(...logProblems(m))
  if (found.length > 0) warn(`${m.target.name} ${m.mode}: ${found.join('; ')}`)
}

/**
 * A logging row measures nothing unless the gateway wrote a record for each request: every one the upstream
 * answered must have one, written (or dropped) by the time its queue settled after the throughput run.
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
  const missing = m.upstreamAnswers - written - dropped
  if (missing > 0) {
    const after = `${LOG_SETTLE_MS / 1000} s after the run`
    found.push(`${missing} of the ${m.upstreamAnswers} requests had no record written ${after}`)
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

async function benchTarget(target: Target, upstream: RunningServer, config: Config): Promise<Measurement[]> {
  const modes = modesOf(target, config.modes)
  if (modes.length === 0) return []
  const server = await startTarget(target, upstream, config)
  if (server === null) return []
  const origin = server?.origin ?? upstream.origin
  const ownPids = server ? [upstream.pid, server.pid, ...server.helperPids] : [upstream.pid]
  const measurements: Measurement[] = []
  try {
    for (const mode of modes) {
      const endpoint: Endpoint = {
        origin,
        path: requestPath(target, mode),
        mode,
        body: requestBody(target, mode),
        answer: expectedAnswer(target, mode),
        marker: target.marker,
      }
      await checkAnswer(endpoint)
      // From here on, a cache must answer everything: the check above has filled it.
      const before = await counters(upstream, server)
      await waitForQuietMachine(ownPids, QUIET_WAIT_MS)
      const foreignCpu = watchForeignCpu(ownPids)
      await warmUp(endpoint, config.warmupRequests, WARMUP_CONCURRENCY)
      const latency = await measureLatency(endpoint, config.requests)
      const throughput = await measureThroughput(endpoint, CONNECTIONS, config.durationSeconds)
      const foreignCores = foreignCpu()
      const after = await counters(upstream, server)
      const upstreamAnswers = after.upstreamAnswers - before.upstreamAnswers
      // After the clock stopped: waiting for the store is no part of any request's figure.
      const logs = server && (await settleLogs(server, before.logs, after.logs, upstreamAnswers))
      const measurement: Measurement = {
        target,
        mode,
        latency,
        throughput,
        foreignCores,
        upstreamAnswers,
        storeErrors: after.storeErrors - before.storeErrors,
        logs,
      }
      reportProblems(measurement)
      console.error(progressLine(measurement))
      measurements.push(measurement)
    }
  } finally {
    await server?.stop()
  }
  return measurements
}

async function counters(upstream: RunningServer, server: RunningServer | undefined) {
  const [upstreamStats, serverStats] = await Promise.all([upstream.stats(), server?.stats()])
  return {
    upstreamAnswers: upstreamStats.answers ?? 0,
    storeErrors: serverStats?.storeErrors ?? 0,
    logs: serverStats && logQueueOf(serverStats),
  }
}

interface LogQueueCounts {
  written: number
  dropped: number
  queued: number
}

/** The gateway's log queue counters; `undefined` from a server whose logs are off or not reported. */
function logQueueOf(stats: Record<string, number>): LogQueueCounts | undefined {
  const { logsWritten, logsDropped, logsQueued } = stats
  if (logsWritten === undefined || logsDropped === undefined || logsQueued === undefined) return undefined
  return { written: logsWritten, dropped: logsDropped, queued: logsQueued }
}

/**
 * Waits until the gateway has written or dropped a record for each of `expected` requests and emptied its
 * queue, or `LOG_SETTLE_MS` passed, then gives its counts since `before`.
 */
async function settleLogs(
  server: RunningServer,
  before: LogQueueCounts | undefined,
  after: LogQueueCounts | undefined,
  expected: number,
): Promise<LogCounts | undefined> {
  if (before === undefined || after === undefined) return undefined
  const deadline = performance.now() + LOG_SETTLE_MS
  let now = after
  const settled = (c: LogQueueCounts) =>
    c.queued === 0 && c.written + c.dropped - before.written - before.dropped >= expected
  while (!settled(now) && performance.now() < deadline) {
    await sleep(LOG_POLL_MS)
    now = logQueueOf(await server.stats()) ?? now
  }
  return {
    written: now.written - before.written,
    dropped: now.dropped - before.dropped,
    queuedAtEnd: after.queued,
  }
}

function progressLine({ target, mode, latency, throughput, foreignCores, logs }: Measurement): string {
  const foreign = foreignCores === undefined ? '' : `  (others: ${foreignCores.toFixed(2)} cores)`
  const records =
    logs === undefined
      ? ''
      : `\n${''.padEnd(NAME_WIDTH)} ${mode.padEnd(11)} log records: ${logs.written} written, ` +
        `${logs.dropped} dropped (${logs.queuedAtEnd} still queued when the throughput run ended)`
  return (
    `${target.name.padEnd(NAME_WIDTH)} ${mode.padEnd(11)} p50 ${latency.p50Ms.toFixed(3)} ms  ` +
    `p99 ${latency.p99Ms.toFixed(3)} ms  ${throughput.requestsPerSecond.toFixed(0)} req/s${foreign}${records}`
  )
}

function describeRun(config: Config): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  return (
    `node ${process.version}, ${cpus().length} x ${cpu}\n` +
    `${config.requests} sequential requests, ${config.durationSeconds} s at ${CONNECTIONS} connections, ` +
    `${config.warmupRequests} warm-up requests, per target and mode`
  )
}

function toJson(config: Config, measurements: readonly Measurement[], modes: readonly Mode[]) {
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
      ...compare(m, measurements),
    })),
    aims: checkAims(measurements, modes),
    problems,
  }
}

async function main(): Promise<void> {
  const config = readConfig()
  console.log(describeRun(config))
  const upstream = await startServer('upstream', {}, config.serverNodeArgs)
  const measurements: Measurement[] = []
  for (const target of config.targets) {
    measurements.push(...(await benchTarget(target, upstream, config)))
  }
  for (const mode of config.modes) console.log(`\n${formatModeTable(mode, measurements)}`)
  const policyTable = formatPolicyTable(measurements)
  if (policyTable !== undefined) console.log(`\n${policyTable}`)
  const loggingTable = formatLoggingTable(measurements)
  if (loggingTable !== undefined) console.log(`\n${loggingTable}`)
  console.log(`\n${formatAims(checkAims(measurements, config.modes))}`)
  for (const problem of problems) console.log(`\n!!!!! WARNING: ${problem} !!!!!`)

  const json = JSON.stringify(toJson(config, measurements, config.modes), null, 2)
  if (process.argv.includes('--json')) console.log(json)
  const out = process.env.BENCH_OUT
  if (out) {
    await writeFile(out, `${json}\n`)
    console.log(`\nfigures written to ${out}`)
  }
}

// Children must not outlive the run, whether it ends normally, fails or is interrupted.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void stopAllServers().finally(() => process.exit(130))
  })
}

try {
  await main()
} catch (error) {
  console.error(error)
  process.exitCode = 1
} finally {
  await stopAllServers()
}
