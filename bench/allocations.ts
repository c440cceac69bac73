import { countFromEnv, listFromEnv, problems, serverNodeArgsFromEnv, warn } from './lib/env.js'
import { checkAnswer, endpointOf, sendRequests, warmUp } from './lib/measure.js'
import { type RunningServer, runBench, startServer } from './lib/processes.js'
import { formatTable } from './lib/report.js'
import { median } from './lib/rounds.js'
import { MODES, type Mode, modesOf, referencesOf, TARGETS, type Target } from './lib/targets.js'
import type { AllocationSite } from './servers/messages.js'

// Bytes the server under test allocates per request, and where: V8's sampling heap profiler in the server,
// counting what was collected too. Like an instruction count, and unlike time, this hardly moves with the
// machine's load: the rounds of a row agree within about 1%. What it shows that instructions do not is
// memory traffic: every byte allocated is written once, in cache lines the young generation (megabytes,
// beyond this machine's L2) has long evicted, and every few hundred requests a scavenge walks what survived.
//
//   npm run build && npx tsx bench/allocations.ts
//   BENCH_ONLY=bare-express,gateway-express BENCH_MODES=json npx tsx bench/allocations.ts

const DEFAULT_TARGETS = ['bare-fastify', 'gateway-fastify', 'gateway-fastify-logs-off']
const DEFAULT_MODES: readonly Mode[] = ['json', 'sse']
// As the instruction count's: a server's pools and event loop as under load, no request waiting for a socket.
const CONCURRENCY = 8
const NAME_WIDTH = Math.max(...TARGETS.map((t) => t.name.length))
// Where an allocation happened, by its script: the gateway's own code (its build, or its sources with
// BENCH_SOURCE=1), node's, a package's under node_modules, the bench server's, or V8's own (no script).
const ORIGINS = ['gateway', 'node', 'undici', 'framework', 'bench', 'v8'] as const
type Origin = (typeof ORIGINS)[number]

interface Config {
  targets: readonly Target[]
  modes: readonly Mode[]
  /** `BENCH_ROUNDS`: sampled rounds per target and mode; each row is their median. */
  rounds: number
  /** `BENCH_ALLOC_REQUESTS`: requests per sampled round. */
  requests: number
  /** `BENCH_ALLOC_WARMUP`: requests before sampling starts. */
  warmupRequests: number
  /** `BENCH_ALLOC_TOP`: the gateway's sites listed per row. */
  topSites: number
}

function readConfig(): Config {
  const only = listFromEnv(
    'BENCH_ONLY',
    TARGETS.map((t) => t.name),
    DEFAULT_TARGETS,
  )
  return {
    targets: TARGETS.filter((t) => only.includes(t.name) && t.role !== 'direct'),
    modes: MODES.filter((m) => listFromEnv('BENCH_MODES', MODES, DEFAULT_MODES).includes(m)),
    rounds: countFromEnv('BENCH_ROUNDS', 3),
    requests: countFromEnv('BENCH_ALLOC_REQUESTS', 10000),
    // As for the instruction count: the JIT settles, and a logging row's memory store fills and evicts.
    warmupRequests: countFromEnv('BENCH_ALLOC_WARMUP', 20000),
    topSites: countFromEnv('BENCH_ALLOC_TOP', 12),
  }
}

interface Round {
  /** Bytes per request, by origin. */
  readonly byOrigin: Record<Origin, number>
  readonly total: number
  /** The gateway's own sites, bytes per request, most first. */
  readonly gatewaySites: readonly AllocationSite[]
}

interface Row {
  readonly target: Target
  readonly mode: Mode
  readonly rounds: readonly Round[]
}

function originOf(url: string): Origin {
  if (url === '') return 'v8'
  if (url.startsWith('node:')) return 'node'
  const inPackage = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)
  if (inPackage !== null) return inPackage[1] === 'undici' ? 'undici' : 'framework'
  if (url.includes('/bench/')) return 'bench'
  return 'gateway'
}

function roundOf(sites: readonly AllocationSite[], requests: number): Round {
  const byOrigin = Object.fromEntries(ORIGINS.map((origin) => [origin, 0])) as Record<Origin, number>
  const gatewaySites: AllocationSite[] = []
  for (const site of sites) {
    const origin = originOf(site.url)
    byOrigin[origin] += site.bytes / requests
    if (origin === 'gateway') gatewaySites.push({ ...site, bytes: site.bytes / requests })
  }
  gatewaySites.sort((a, b) => b.bytes - a.bytes)
  const total = ORIGINS.reduce((sum, origin) => sum + byOrigin[origin], 0)
  return { byOrigin, total, gatewaySites }
}

async function measureTarget(upstream: RunningServer, target: Target, config: Config): Promise<Row[]> {
  const server = await startServer(target.name, { UPSTREAM_URL: upstream.origin }, serverNodeArgsFromEnv())
  const rows: Row[] = []
  try {
    for (const mode of modesOf(target, config.modes)) {
      const endpoint = endpointOf(target, mode, server.origin)
      await checkAnswer(endpoint)
      await warmUp(endpoint, config.warmupRequests, CONCURRENCY)
      const rounds: Round[] = []
      for (let i = 0; i < config.rounds; i++) {
        server.startSamplingAllocations()
        await sendRequests(endpoint, config.requests, CONCURRENCY, true)
        rounds.push(roundOf(await server.stopSamplingAllocations(), config.requests))
        console.log(
          `${target.name.padEnd(NAME_WIDTH)}  ${mode.padEnd(11)} round ${i + 1}/${config.rounds}  ` +
            `${kib(rounds[i]!.total)} KiB/req (gateway ${kib(rounds[i]!.byOrigin.gateway)})`,
        )
      }
      rows.push({ target, mode, rounds })
    }
  } finally {
    await server.stop()
  }
  return rows
}

const kib = (bytes: number) => (bytes / 1024).toFixed(2)

/** The round whose total is the median (of an even number, the lower middle one). */
function medianRound(rounds: readonly Round[]): Round {
  const sorted = [...rounds].sort((a, b) => a.total - b.total)
  return sorted[Math.floor((sorted.length - 1) / 2)]!
}

/** This row's median over the median of the row named `name` in the same mode, or `-`. */
function ratio(row: Row, rows: readonly Row[], name: string | undefined): string {
  const other = rows.find((r) => r.target.name === name && r.mode === row.mode)
  if (other === undefined) return '-'
  return `${(median(row.rounds.map((r) => r.total)) / median(other.rounds.map((r) => r.total))).toFixed(2)}x`
}

function report(rows: readonly Row[], config: Config): string {
  const out: string[] = []
  for (const mode of config.modes) {
    const ofMode = rows.filter((row) => row.mode === mode)
    if (ofMode.length === 0) continue
    out.push(
      `\n${mode.toUpperCase()}: KiB allocated per request (median of ${config.rounds} ` +
        `round${config.rounds === 1 ? '' : 's'} of ` +
        `${config.requests} requests; by origin: the median round's)`,
    )
    const header = ['target', 'KiB/req', 'min-max', ...ORIGINS, '/ bare-fw', '/ logs-off', '/ baseline']
    const cells = ofMode.map((row) => {
      const totals = row.rounds.map((r) => r.total)
      const middle = medianRound(row.rounds)
      const references = referencesOf(row.target)
      return [
        row.target.name,
        kib(median(totals)),
        `${kib(Math.min(...totals))}-${kib(Math.max(...totals))}`,
        ...ORIGINS.map((origin) => kib(middle.byOrigin[origin])),
        ratio(row, rows, references.bare),
        ratio(row, rows, references.logsOff),
        ratio(row, rows, references.baseline),
      ]
    })
    out.push(formatTable(header, cells))
    for (const row of ofMode) {
      const sites = medianRound(row.rounds).gatewaySites.slice(0, config.topSites)
      if (sites.length === 0) continue
      out.push(`\n${row.target.name} (${mode}): the gateway's sites allocating most, bytes per request`)
      for (const site of sites) {
        const file = site.url.slice(site.url.lastIndexOf('/') + 1)
        out.push(
          `  ${site.bytes.toFixed(0).padStart(6)}  ${site.functionName || '(anonymous)'}  ${file}:${site.line}`,
        )
      }
    }
  }
  return out.join('\n')
}

async function main(): Promise<void> {
  const config = readConfig()
  const upstream = await startServer('upstream', {}, [])
  const rows: Row[] = []
  for (const target of config.targets) {
    try {
      rows.push(...(await measureTarget(upstream, target, config)))
    } catch (error) {
      // A row that could not be measured (its Redis or Postgres out of reach, an answer but a 200): the
      // others still say something.
      warn(`${target.name}: ${error instanceof Error ? error.message : String(error)}`)
    }
  }
  console.log(report(rows, config))
  if (problems.length > 0)
    console.log(`\n${problems.length} warning(s):\n${problems.map((p) => `- ${p}`).join('\n')}`)
}

await runBench(main)
