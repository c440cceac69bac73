import { execFileSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { Pool } from 'undici'
import {
  type Breakdown,
  breakdownOf,
  CATEGORIES,
  type CacheGeometry,
  type CacheMisses,
  CallgrindProcess,
  cacheGeometry,
  callgrindWrapper,
  readDump,
  requireCallgrind,
} from './lib/callgrind.js'
import { countFromEnv, listFromEnv, problems, serverNodeArgsFromEnv, warn } from './lib/env.js'
import { checkAnswer, type Endpoint, endpointOf, markerProblem, postRequest } from './lib/measure.js'
import { type RunningServer, runBench, startServer } from './lib/processes.js'
import { formatTable } from './lib/report.js'
import { median } from './lib/rounds.js'
import { MODES, type Mode, modesOf, referencesOf, TARGETS, type Target } from './lib/targets.js'

// Instructions executed per request by the server under test, counted by callgrind: the rounds of a row agree
// within a percent or two (with logs off), where the time bench's figures move by up to 2x on this machine.
// Across runs a row may settle in another state: see "Instructions per request" in bench/README.md.

const DEFAULT_TARGETS: readonly string[] = [
  'bare-fastify',
  'gateway-fastify',
  'gateway-fastify-logs-off',
  ...(process.env.BENCH_BASELINE ? ['baseline-fastify', 'baseline-fastify-logs-off'] : []),
]
const DEFAULT_MODES: readonly Mode[] = ['json', 'sse']
// As the warm-up of the time bench: enough requests in flight that the server's connection pool to the
// upstream and its event loop work as they do under load, few enough that none waits for a connection.
const CONCURRENCY = 8
// Starting node and tsx on valgrind's translated code takes some ten times as long as on its own, longer
// again with two servers starting at once.
const START_TIMEOUT_MS = 300_000
// Killed, valgrind leaves its vgdb pipes in /tmp: it writes its last dump and exits within seconds, slower
// while another counted server shares the cores.
const STOP_TIMEOUT_MS = 30_000
// Counted, a request takes some thirty times as long as at full speed (longer while another counted server
// shares the cores), and a full collection seconds: the time bench's 10 s limits are too close.
const REQUEST_TIMEOUTS = { headersTimeout: 120_000, bodyTimeout: 120_000 }
// Counted but in no round: whatever the sudden slowdown of switching counting on moves (timers that fired
// between requests now fire during them) happens here rather than in the first round.
const SETTLE_REQUESTS = 200
// V8's memory reducer runs full, compacting collections once the allocation rate, per second of wall time,
// looks like that of a process going idle. Counting slows the server so much that it looked idle: those
// collections fell at random in the rounds, adding up to 100k instructions per request to one. A server
// under load at full speed allocates too fast for it.
const COUNTED_NODE_ARGS = ['--no-memory-reducer']
const NAME_WIDTH = Math.max(...TARGETS.map((t) => t.name.length))

interface Config {
  targets: readonly Target[]
  modes: readonly Mode[]
  /** `BENCH_ROUNDS`: counted rounds per target and mode; each row is their median. */
  rounds: number
  /** `BENCH_INSTR_REQUESTS`: requests per counted round. */
  requests: number
  /** `BENCH_INSTR_WARMUP`: requests before counting starts. */
  warmupRequests: number
  /** `BENCH_INSTR_PARALLEL`: servers counted at once. */
  parallel: number
  /** `BENCH_KEEP_CALLGRIND=1`: leave the dumps for callgrind_annotate rather than delete them. */
  keepDumps: boolean
  /** `BENCH_CACHE_SIM`: the caches simulated to count misses (see `cachesFromEnv`); `undefined` when off. */
  caches: CacheGeometry | undefined
  /** `BENCH_SERVER_ARGS`: node flags for the counted servers (`--perf-basic-prof` names the JIT's code). */
  serverNodeArgs: readonly string[]
  /**
   * `BENCH_INSTR_STORES=gateway`: count rows that need Redis or Postgres too, their gateway process alone
   * (what the store's server does for it goes uncounted, and each table says so).
   */
  gatewayOnly: boolean
}

function readConfig(): Config {
  const targetNames = TARGETS.map((t) => t.name)
  const only = listFromEnv('BENCH_ONLY', targetNames, DEFAULT_TARGETS)
  const targets = TARGETS.filter((t) => only.includes(t.name))
  const gatewayOnly = listFromEnv('BENCH_INSTR_STORES', ['refuse', 'gateway'], ['refuse'])[0] === 'gateway'
  for (const target of targets) {
    const refusal = refusalOf(target, gatewayOnly)
    if (refusal !== undefined) throw new Error(`BENCH_ONLY: ${target.name} ${refusal}`)
  }
  return {
    targets,
    modes: MODES.filter((m) => listFromEnv('BENCH_MODES', MODES, DEFAULT_MODES).includes(m)),
    rounds: countFromEnv('BENCH_ROUNDS', 3),
    requests: countFromEnv('BENCH_INSTR_REQUESTS', 2000),
    // The JIT takes thousands of requests to settle: V8 optimized some 100 functions in the second
    // thousand requests (logs-off sse, `--trace-opt`), 15 in the fourth, one or two a thousand after 8000.
    // A logging row starts to evict from its memory store only past its 10,000 records: more than that.
    warmupRequests: countFromEnv('BENCH_INSTR_WARMUP', 20000),
    parallel: countFromEnv('BENCH_INSTR_PARALLEL', 2),
    keepDumps: process.env.BENCH_KEEP_CALLGRIND === '1',
    caches: cachesFromEnv(process.env.BENCH_CACHE_SIM),
    serverNodeArgs: serverNodeArgsFromEnv(),
    gatewayOnly,
  }
}

const CACHES_GIVEN = /^(\d+,\d+,\d+)\s+(\d+,\d+,\d+)\s+(\d+,\d+,\d+)$/

/**
 * `BENCH_CACHE_SIM`: `1` for this machine's caches as sysfs lists them, or the three caches given as
 * valgrind takes them (`size,ways,line` in bytes: L1i, L1d, L2), for a machine whose sysfs lists none (a
 * virtual machine may not).
 */
function cachesFromEnv(value: string | undefined): CacheGeometry | undefined {
  if (value === undefined || value === '' || value === '0') return undefined
  if (value === '1') {
    const caches = cacheGeometry()
    if (caches === undefined)
      throw new Error(
        'BENCH_CACHE_SIM=1: this machine lists no L1 and L2 caches in /sys/devices/system/cpu; give them ' +
          'as "L1i L1d L2", each size,ways,line in bytes (e.g. "32768,8,64 32768,8,64 1048576,8,64")',
      )
    return caches
  }
  const given = CACHES_GIVEN.exec(value.trim())
  if (given === null)
    throw new Error(`BENCH_CACHE_SIM: ${value} is neither 1 nor "L1i L1d L2", each size,ways,line in bytes`)
  return { i1: given[1]!, d1: given[2]!, l2: given[3]! }
}

/** Why a target cannot be counted; `undefined` when it can. */
function refusalOf(target: Target, gatewayOnly: boolean): string | undefined {
  if (target.role === 'direct') return 'is the upstream itself: there is no server of its own to count'
  // Callgrind counts only the process it runs: a store's server would do part of the row's work uncounted.
  if (gatewayOnly) return undefined
  const store = target.redis ? 'Redis' : target.postgres ? 'Postgres' : undefined
  if (store === undefined) return undefined
  return (
    `needs ${store}, whose work callgrind would not count: measure it with npm run bench, or count its ` +
    'gateway process alone with BENCH_INSTR_STORES=gateway'
  )
}

/** One counted round: its figures per request. */
interface Round {
  instructions: number
  breakdown: Breakdown
  /** Per request, with the cache simulation. */
  misses: CacheMisses | undefined
  /** Requests of the round that failed, or were answered without the target's marker. */
  failed: number
  file: string
}

interface Row {
  target: Target
  mode: Mode
  rounds: readonly Round[]
  /** Per request, the median over the rounds. */
  instructions: number
  /** The median round's (of an even count, the mean of the two middle rounds'): it adds up to the median. */
  breakdown: Breakdown
  /** Each level's median over the rounds, with the cache simulation. */
  misses: CacheMisses | undefined
  seconds: number
}

/**
 * The load on one server: `CONCURRENCY` keep-alive connections, the same from the warm-up to the last round.
 * New connections for each phase made the server run paths the warm-up had not (sockets closing, new ones
 * accepted), which deoptimized a dozen functions of node's and Fastify's on those paths: recompiling them put
 * some 100k instructions on each request of the first round and 30k on the second.
 */
class Load {
  private readonly pool: Pool

  constructor(private readonly endpoint: Endpoint) {
    this.pool = new Pool(endpoint.origin, { ...REQUEST_TIMEOUTS, connections: CONCURRENCY })
  }

  /**
   * `requests` requests, `CONCURRENCY` at a time, each read to its end. Gives how many failed: an error, a
   * status other than 200, or an answer without the target's marker (a path that skipped its policy). A
   * failed request runs less code than a served one, so a round with any counted something else.
   */
  async send(requests: number): Promise<number> {
    const { pool, endpoint } = this
    let remaining = requests
    let failed = 0
    const loop = async () => {
      while (remaining-- > 0) {
        try {
          const response = await pool.request(postRequest(endpoint))
          await response.body.arrayBuffer()
          if (response.statusCode !== 200 || markerProblem(endpoint.marker, response.headers)) failed++
        } catch {
          failed++
        }
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, loop))
    return failed
  }

  close(): Promise<void> {
    return this.pool.close()
  }
}

/**
 * Starts the target's server under callgrind, not counting; checks its answer and warms it up; then starts
 * counting and counts `rounds` rounds, each zeroed before its requests and dumped after them.
 */
async function countTarget(
  target: Target,
  mode: Mode,
  upstream: RunningServer,
  config: Config,
  dir: string,
): Promise<Row> {
  const started = performance.now()
  const since = (from: number) => `${((performance.now() - from) / 1000).toFixed(0)} s`
  const row = `${target.name.padEnd(NAME_WIDTH)} ${mode.padEnd(11)}`
  const outFile = join(dir, `${target.name}.${mode}.%p.out`)
  const server = await startServer(
    target.name,
    { UPSTREAM_URL: upstream.origin },
    [...COUNTED_NODE_ARGS, ...config.serverNodeArgs],
    {
      wrapper: callgrindWrapper(outFile, config.caches),
      startTimeoutMs: START_TIMEOUT_MS,
      stopTimeoutMs: STOP_TIMEOUT_MS,
    },
  )
  const endpoint = endpointOf(target, mode, server.origin)
  const load = new Load(endpoint)
  try {
    const callgrind = new CallgrindProcess(server.pid, outFile.replace('%p', String(server.pid)))
    await checkAnswer(endpoint)
    const warmupStarted = performance.now()
    const warmupFailed = await load.send(config.warmupRequests)
    if (warmupFailed > 0) warn(`${target.name} ${mode}: ${warmupFailed} warm-up requests failed`)
    console.error(`${row} started and warmed up in ${since(started)} (warm-up ${since(warmupStarted)})`)
    await callgrind.startCounting()
    await load.send(SETTLE_REQUESTS)
    const rounds: Round[] = []
    for (let round = 1; round <= config.rounds; round++) {
      const label = `round ${round}/${config.rounds}`
      const roundStarted = performance.now()
      await callgrind.zeroCounts()
      const failed = await load.send(config.requests)
      const file = await callgrind.dumpCounts(`round-${round}`)
      const { total, breakdown, misses } = await readDump(file)
      const perRequest = (count: number) => count / config.requests
      const counted: Round = {
        instructions: perRequest(total),
        breakdown: breakdownOf((category) => perRequest(breakdown[category])),
        misses: misses && { i1: perRequest(misses.i1), d1: perRequest(misses.d1), l2: perRequest(misses.l2) },
        failed,
        file,
      }
      if (failed > 0)
        warn(`${target.name} ${mode} (${label}): ${failed} of ${config.requests} requests failed`)
      console.error(
        `${row} ${label}  ${kilo(counted.instructions)} k instr/req  (${describe(counted.breakdown)}` +
          `${counted.misses ? `; misses ${describeMisses(counted.misses)}` : ''}; ${since(roundStarted)})`,
      )
      rounds.push(counted)
    }
    console.error(`${row} done in ${since(started)}`)
    return combineRounds(target, mode, rounds, (performance.now() - started) / 1000)
  } finally {
    await load.close().finally(() => server.stop())
  }
}

function combineRounds(target: Target, mode: Mode, rounds: readonly Round[], seconds: number): Row {
  const sorted = [...rounds].sort((a, b) => a.instructions - b.instructions)
  const half = Math.floor(sorted.length / 2)
  const middle = sorted.length % 2 === 1 ? [sorted[half]!] : [sorted[half - 1]!, sorted[half]!]
  return {
    target,
    mode,
    rounds,
    instructions: median(rounds.map((r) => r.instructions)),
    breakdown: breakdownOf(
      (category) => middle.reduce((sum, r) => sum + r.breakdown[category], 0) / middle.length,
    ),
    misses: rounds[0]?.misses && {
      i1: median(rounds.map((r) => r.misses!.i1)),
      d1: median(rounds.map((r) => r.misses!.d1)),
      l2: median(rounds.map((r) => r.misses!.l2)),
    },
    seconds,
  }
}

function kilo(count: number): string {
  return (count / 1000).toFixed(1)
}

function describe(breakdown: Breakdown): string {
  return CATEGORIES.map((category) => `${category} ${kilo(breakdown[category])}`).join(', ')
}

// Misses are some hundreds to tens of thousands a request: thousands to two places.
function kiloMisses(count: number): string {
  return (count / 1000).toFixed(2)
}

function describeMisses(misses: CacheMisses): string {
  return `I1 ${kiloMisses(misses.i1)}, D1 ${kiloMisses(misses.d1)}, L2 ${kiloMisses(misses.l2)}`
}

/** Every target and mode, `parallel` at a time: valgrind runs a process's threads on one core. */
async function countAll(upstream: RunningServer, config: Config, dir: string): Promise<Row[]> {
  const pairs = config.targets.flatMap((target) =>
    modesOf(target, config.modes).map((mode) => ({ target, mode })),
  )
  const rows: (Row | undefined)[] = []
  let next = 0
  const worker = async () => {
    while (next < pairs.length) {
      const index = next++
      const { target, mode } = pairs[index]!
      try {
        rows[index] = await countTarget(target, mode, upstream, config, dir)
      } catch (error) {
        warn(`${target.name} ${mode} not counted: ${(error as Error).message}`)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(config.parallel, pairs.length) }, worker))
  return rows.filter((row) => row !== undefined)
}

/** The rows a row is read against: its framework's bare proxy, its logs-off mount, the baseline build's. */
function ratios(row: Row, all: readonly Row[]) {
  const references = referencesOf(row.target)
  const over = (name: string | undefined) => {
    const other = all.find((r) => r.mode === row.mode && r.target.name === name)
    return other === undefined ? undefined : row.instructions / other.instructions
  }
  return {
    overBare: over(references.bare),
    overLogsOff: over(references.logsOff),
    overBaseline: over(references.baseline),
  }
}

const COLUMNS = ['target', 'k instr/req', 'min-max', ...CATEGORIES, '/ bare-fw', '/ logs-off', '/ baseline']
const MISS_COLUMNS = ['k I1 miss', 'k D1 miss', 'k L2 miss']

function formatModeTable(mode: Mode, all: readonly Row[], config: Config): string {
  const rows = all
    .filter((row) => row.mode === mode)
    .map((row) => {
      const values = row.rounds.map((r) => r.instructions)
      const r = ratios(row, all)
      const failed = row.rounds.some((round) => round.failed > 0)
      const storeUncounted = row.target.redis === true || row.target.postgres === true
      return [
        `${row.target.name}${failed ? ' !' : ''}${storeUncounted ? ' *' : ''}`,
        kilo(row.instructions),
        `${kilo(Math.min(...values))}-${kilo(Math.max(...values))}`,
        ...CATEGORIES.map((c) => kilo(row.breakdown[c])),
        ratio(r.overBare),
        ratio(r.overLogsOff),
        ratio(r.overBaseline),
        ...(row.misses ? [row.misses.i1, row.misses.d1, row.misses.l2].map(kiloMisses) : []),
      ]
    })
  const title =
    `${mode.toUpperCase()}: instructions per request, in thousands (median of ${config.rounds} rounds of ` +
    `${config.requests} requests; ${CATEGORIES.join(', ')}: the median round's` +
    `${config.caches ? '; misses per request in thousands, each level the median of the rounds' : ''})`
  const notes: string[] = []
  if (rows.some((cells) => cells[0]!.includes(' !')))
    notes.push('! some of its counted requests failed: the row counts something else')
  if (rows.some((cells) => cells[0]!.endsWith(' *')))
    notes.push('* its gateway process alone: what its Redis or Postgres server did for it is not counted')
  const columns = config.caches ? [...COLUMNS, ...MISS_COLUMNS] : COLUMNS
  return `${title}\n${formatTable(columns, rows)}${notes.map((note) => `\n${note}`).join('')}`
}

function ratio(value: number | undefined): string {
  return value === undefined ? '-' : `${value.toFixed(2)}x`
}

function describeRun(config: Config): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  const valgrind = execFileSync('valgrind', ['--version']).toString().trim()
  const { caches } = config
  return [
    `node ${process.version}, ${valgrind}, ${cpus().length} x ${cpu}`,
    ...(caches
      ? [
          `caches simulated (size,ways,line): I1 ${caches.i1}, D1 ${caches.d1}, L2 as the last level ${caches.l2}`,
        ]
      : []),
    `${config.warmupRequests} warm-up requests uncounted, ${SETTLE_REQUESTS} counted in no round, then ` +
      `${config.rounds} rounds of ${config.requests} requests, ${CONCURRENCY} at a time, per target and mode; ` +
      `up to ${config.parallel} servers at once`,
  ].join('\n')
}

function toJson(config: Config, rows: readonly Row[]) {
  return {
    date: new Date().toISOString(),
    node: process.version,
    config: { ...config, targets: config.targets.map((t) => t.name) },
    results: rows.map((row) => ({
      target: row.target.name,
      mode: row.mode,
      instructionsPerRequest: row.instructions,
      breakdown: row.breakdown,
      ...(row.misses ? { missesPerRequest: row.misses } : {}),
      ...ratios(row, rows),
      seconds: row.seconds,
      rounds: row.rounds.map(({ file, ...round }) => (config.keepDumps ? { ...round, file } : round)),
    })),
    problems,
  }
}

let dumpDir: string | undefined
let keepDumps = false

async function removeDumps(): Promise<void> {
  if (dumpDir === undefined) return
  if (keepDumps) console.log(`\ncallgrind dumps kept in ${dumpDir} (callgrind_annotate FILE reads one)`)
  else await rm(dumpDir, { recursive: true, force: true })
  dumpDir = undefined
}

async function main(): Promise<void> {
  const config = readConfig()
  keepDumps = config.keepDumps
  await requireCallgrind()
  console.log(describeRun(config))
  dumpDir = await mkdtemp(join(tmpdir(), 'bench-callgrind-'))
  const upstream = await startServer('upstream', {}, [])
  const rows = await countAll(upstream, config, dumpDir)
  for (const mode of config.modes) {
    if (rows.some((row) => row.mode === mode)) console.log(`\n${formatModeTable(mode, rows, config)}`)
  }
  for (const problem of problems) console.log(`\n!!!!! WARNING: ${problem} !!!!!`)
  const out = process.env.BENCH_OUT
  if (out) {
    await writeFile(out, `${JSON.stringify(toJson(config, rows), null, 2)}\n`)
    console.log(`\nfigures written to ${out}`)
  }
}

// Children must not outlive the run, whether it ends normally, fails or is interrupted; the dumps go with
// them, and only once they stopped: a server writes its last one as it exits.
await runBench(main, removeDumps)
