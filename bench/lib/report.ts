import { FRONTIER_THRESHOLDS_MS, type FrontierPoint } from './frontier.js'
import { BUSY_CORES } from './machine.js'
import type { LatencyResult, ThroughputResult } from './measure.js'
import { GROWTH_LIMIT, type MemoryResult, type MemorySample } from './memory.js'
import type { RateRun } from './rate.js'
import { pairedShares, rangeOf } from './rounds.js'
import {
  bareNameFor,
  counterpartOf,
  gatewayNameFor,
  isCompat,
  logsOffNameFor,
  MODES,
  type Mode,
  type Target,
} from './targets.js'
import { commitLabel, type TtftResult, type TtftRow } from './ttft.js'

/** What the gateway's log queue did with the records of one mode's requests, by its own count. */
export interface LogCounts {
  /**
   * Requests the gateway's server received, from the warm-up to the queue's settling: each must have a
   * record. Counted in the gateway's process, read with the queue's counters in one stats reply.
   */
  readonly requests: number
  /** Records stored, counted once the queue had emptied after the throughput run. */
  readonly written: number
  /** Records lost: a full queue or a failed write. */
  readonly dropped: number
  /** Records still waiting for a batch when the throughput run ended: a store falling behind shows here. */
  readonly queuedAtEnd: number
}

/** What shows a guard row's step ran, counted from the warm-up to the end of the throughput run. */
export interface GuardCounts {
  /** Requests the gateway's server received. */
  readonly requests: number
  /** Llama Guard calls the upstream answered: two per request (the prompt, the answer) for the model row. */
  readonly classifierCalls: number
  /** Requests that reached the upstream with the email address still in them: DLP redacts it, so none. */
  readonly unredacted: number
}

export interface Measurement {
  readonly target: Target
  readonly mode: Mode
  readonly latency: LatencyResult
  readonly throughput: ThroughputResult
  /** Cores other processes on the machine kept busy meanwhile, when that can be measured. */
  readonly foreignCores: number | undefined
  /** Answers the upstream gave from the warm-up to the end of the throughput run (all of them, for `direct`). */
  readonly upstreamAnswers: number
  /** Store calls the gateway saw fail or time out meanwhile, each ridden over by its failure policy. */
  readonly storeErrors: number
  /** For a mount with request logs on that reports its log queue; `undefined` otherwise. */
  readonly logs: LogCounts | undefined
  /** For a guard row; `undefined` otherwise. */
  readonly guard?: GuardCounts | undefined
  /** With `BENCH_ROUNDS` over 1, the rounds this row is the median of, in the order they ran. */
  readonly rounds?: readonly Measurement[]
}

/** How a proxy row compares with the baselines; `undefined` where a baseline was not measured. */
export interface Comparison {
  addedP50OverDirectMs: number | undefined
  addedP50OverBareMs: number | undefined
  shareOfBareNode: number | undefined
  shareOfBare: number | undefined
  /** For a policy target: p50 added over the same mount without the policy, and throughput as a share of it. */
  addedP50OverGatewayMs: number | undefined
  shareOfGateway: number | undefined
  /** For a mount with request logs on: p50 added over the same mount with logs off, and throughput share. */
  addedP50OverLogsOffMs: number | undefined
  shareOfLogsOff: number | undefined
  /**
   * The same shares by CPU time per request (the baseline's over this row's): the throughput share this row
   * would have were its server alone on a core, which the machine's noise barely moves.
   */
  cpuShareOfBare: number | undefined
  cpuShareOfGateway: number | undefined
  cpuShareOfLogsOff: number | undefined
}

/** `info` marks a figure reported for reading, with no threshold to pass. */
export type Verdict = 'PASS' | 'MISS' | 'info' | 'n/a'

export interface AimCheck {
  readonly aim: string
  readonly subject: string
  readonly value: string
  readonly verdict: Verdict
}

type Lookup = (mode: Mode, name: string) => Measurement | undefined

function lookupIn(measurements: readonly Measurement[]): Lookup {
  return (mode, name) => measurements.find((m) => m.mode === mode && m.target.name === name)
}

export function compare(measurement: Measurement, all: readonly Measurement[]): Comparison {
  const find = lookupIn(all)
  const { mode, target } = measurement
  const direct = find(mode, 'direct')
  const bareNode = find(mode, 'bare-node')
  // Only a gateway has its "own framework's bare proxy"; for a bare proxy that would be itself.
  const bare =
    target.role === 'gateway' && target.framework ? find(mode, bareNameFor(target.framework)) : undefined
  const gateway =
    target.role === 'policy' && target.framework ? find(mode, gatewayNameFor(target.framework)) : undefined
  const logsOff =
    logsOn(target) && target.framework ? find(mode, logsOffNameFor(target.framework)) : undefined
  const p50 = measurement.latency.p50Ms
  const rps = measurement.throughput.requestsPerSecond
  return {
    addedP50OverDirectMs: target.role === 'direct' || !direct ? undefined : p50 - direct.latency.p50Ms,
    addedP50OverBareMs: bare ? p50 - bare.latency.p50Ms : undefined,
    shareOfBareNode:
      bareNode && target.role !== 'direct' ? rps / bareNode.throughput.requestsPerSecond : undefined,
    shareOfBare: bare ? rps / bare.throughput.requestsPerSecond : undefined,
    addedP50OverGatewayMs: gateway ? p50 - gateway.latency.p50Ms : undefined,
    shareOfGateway: gateway ? rps / gateway.throughput.requestsPerSecond : undefined,
    addedP50OverLogsOffMs: logsOff ? p50 - logsOff.latency.p50Ms : undefined,
    shareOfLogsOff: logsOff ? rps / logsOff.throughput.requestsPerSecond : undefined,
    cpuShareOfBare: cpuShare(bare, measurement),
    cpuShareOfGateway: cpuShare(gateway, measurement),
    cpuShareOfLogsOff: cpuShare(logsOff, measurement),
  }
}

function cpuShare(baseline: Measurement | undefined, row: Measurement): number | undefined {
  const base = baseline?.throughput.cpuUsPerRequest
  const own = row.throughput.cpuUsPerRequest
  return base === undefined || own === undefined ? undefined : base / own
}

function cpuCell(m: Measurement, part: 'all' | 'helpers' = 'all'): string {
  const us = part === 'all' ? m.throughput.cpuUsPerRequest : m.throughput.helperCpuUsPerRequest
  return us === undefined ? '-' : us.toFixed(0)
}

/** A mount whose request logs are on, whichever store they go to. */
export function logsOn(target: Target): boolean {
  return target.logs !== undefined && target.logs !== 'off'
}

const COLUMNS = [
  'target',
  'p50 ms',
  'p99 ms',
  'req/s',
  '+p50 direct',
  '+p50 bare-fw',
  '% bare-node',
  '% bare-fw',
  'cpu us/req',
  'cpu % bare-fw',
]

function isDisturbed(m: Measurement): boolean {
  return m.foreignCores !== undefined && m.foreignCores > BUSY_CORES
}

function nameCell(m: Measurement): string {
  return isDisturbed(m) ? `${m.target.name} *` : m.target.name
}

function disturbedFootnote(rows: readonly Measurement[]): string {
  const disturbed = rows.filter(isDisturbed)
  return disturbed.length
    ? `\n* other processes kept ${disturbed.map((m) => m.foreignCores!.toFixed(2)).join(', ')} cores busy meanwhile`
    : ''
}

/** With rounds, how far p50 and req/s moved between them: a comparison within that range is noise. */
const ROUND_COLUMNS = ['p50 min-max', 'req/s min-max']

export function formatModeTable(mode: Mode, all: readonly Measurement[]): string {
  const ofMode = all.filter((m) => m.mode === mode)
  const roundCount = Math.max(0, ...ofMode.map((m) => m.rounds?.length ?? 0))
  const rows = ofMode.map((m) => {
    const c = compare(m, all)
    return [
      nameCell(m),
      m.latency.p50Ms.toFixed(3),
      m.latency.p99Ms.toFixed(3),
      m.throughput.requestsPerSecond.toFixed(0),
      signedMs(c.addedP50OverDirectMs),
      signedMs(c.addedP50OverBareMs),
      percent(c.shareOfBareNode),
      percent(c.shareOfBare),
      cpuCell(m),
      percent(c.cpuShareOfBare),
      ...(roundCount > 0 ? roundCells(m) : []),
    ]
  })
  const title =
    roundCount > 0 ? `${mode.toUpperCase()} (medians of ${roundCount} rounds)` : mode.toUpperCase()
  const columns = roundCount > 0 ? [...COLUMNS, ...ROUND_COLUMNS] : COLUMNS
  return `${title}\n${formatTable(columns, rows)}${disturbedFootnote(ofMode)}`
}

function roundCells(m: Measurement): string[] {
  const rounds = m.rounds ?? [m]
  const p50 = rangeOf(rounds, (r) => r.latency.p50Ms)
  const rps = rangeOf(rounds, (r) => r.throughput.requestsPerSecond)
  return [`${p50.min.toFixed(3)}-${p50.max.toFixed(3)}`, `${rps.min.toFixed(0)}-${rps.max.toFixed(0)}`]
}

const POLICY_COLUMNS = [
  'target',
  'p50 ms',
  'req/s',
  'direct p50',
  '+p50 direct',
  'direct req/s',
  '% direct',
  '+p50 gateway-fw',
  '% gateway-fw',
  'cpu % gateway-fw',
]

/**
 * Cache hits, limits and dynamic routes side by side with what they are weighed against: `direct` (a hit
 * should beat the provider) and the same gateway mount without the policy (what the policy costs, or saves).
 */
export function formatPolicyTable(all: readonly Measurement[]): string | undefined {
  const policies = all.filter((m) => m.target.role === 'policy' && m.target.guard === undefined)
  if (policies.length === 0) return undefined
  const rows = policies.map((m) => {
    const c = compare(m, all)
    const direct = lookupIn(all)(m.mode, 'direct')
    return [
      `${nameCell(m)} (${m.mode})`,
      m.latency.p50Ms.toFixed(3),
      m.throughput.requestsPerSecond.toFixed(0),
      direct ? direct.latency.p50Ms.toFixed(3) : '-',
      signedMs(c.addedP50OverDirectMs),
      direct ? direct.throughput.requestsPerSecond.toFixed(0) : '-',
      percent(direct ? m.throughput.requestsPerSecond / direct.throughput.requestsPerSecond : undefined),
      signedMs(c.addedP50OverGatewayMs),
      percent(c.shareOfGateway),
      percent(c.cpuShareOfGateway),
    ]
  })
  const title = policies.some((m) => m.target.route) ? 'CACHE, LIMITS AND ROUTES' : 'CACHE AND LIMITS'
  return `${title}\n${formatTable(POLICY_COLUMNS, rows)}${disturbedFootnote(policies)}`
}

const GUARD_COLUMNS = [
  'target',
  'p50 ms',
  'p99 ms',
  'req/s',
  'gateway-fw p50',
  '+p50 gateway-fw',
  'gateway-fw req/s',
  '% gateway-fw',
  'cpu % gateway-fw',
  'guard calls/req',
]

/**
 * The guard step against the same mount without it, measured in the same run: what scanning the request and
 * the answer (and holding a stream's text back while it is scanned) costs, and for the model row what its two
 * calls to the guard model add. `guard calls/req` is the upstream's count of Llama Guard calls over the
 * requests the gateway received.
 */
export function formatGuardTable(all: readonly Measurement[]): string | undefined {
  const find = lookupIn(all)
  const modeOrder = (m: Measurement) => MODES.indexOf(m.mode)
  const guarded = all.filter((m) => m.target.guard !== undefined).sort((a, b) => modeOrder(a) - modeOrder(b))
  if (guarded.length === 0) return undefined
  const gatewayOf = (m: Measurement) => find(m.mode, gatewayNameFor(m.target.framework!))
  // A disturbed baseline skews the delta as much as a disturbed row: either marks the row.
  const disturbed = guarded.flatMap((m) =>
    [m, gatewayOf(m)].filter((r): r is Measurement => r !== undefined && isDisturbed(r)),
  )
  const rows = guarded.map((m) => {
    const c = compare(m, all)
    const gateway = gatewayOf(m)
    const marked = isDisturbed(m) || (gateway !== undefined && isDisturbed(gateway))
    const calls = m.guard && m.guard.requests > 0 ? m.guard.classifierCalls / m.guard.requests : undefined
    return [
      `${marked ? `${m.target.name} *` : m.target.name} (${m.mode})`,
      m.latency.p50Ms.toFixed(3),
      m.latency.p99Ms.toFixed(3),
      m.throughput.requestsPerSecond.toFixed(0),
      gateway ? gateway.latency.p50Ms.toFixed(3) : '-',
      signedMs(c.addedP50OverGatewayMs),
      gateway ? gateway.throughput.requestsPerSecond.toFixed(0) : '-',
      percent(c.shareOfGateway),
      percent(c.cpuShareOfGateway),
      calls === undefined ? '-' : calls.toFixed(2),
    ]
  })
  const footnote = disturbed.length
    ? `\n* other processes kept cores busy meanwhile: ${[...new Set(disturbed)]
        .map((m) => `${m.target.name} (${m.mode}) ${m.foreignCores!.toFixed(2)}`)
        .join(', ')}`
    : ''
  return `GUARD\n${formatTable(GUARD_COLUMNS, rows)}${footnote}`
}

const LOGGING_COLUMNS = [
  'target',
  'store',
  'p50 ms',
  'req/s',
  'logs-off p50',
  '+p50 logs-off',
  'logs-off req/s',
  '% logs-off',
  'paired % logs-off',
  'cpu us/req',
  'of it store',
  'logs-off cpu',
  'cpu % logs-off',
  'written',
  'dropped',
]

/**
 * Request logs on, per store, against the same mount with logs off in the same run: what writing one record
 * per request costs the requests themselves. `paired % logs-off` is the throughput share round by round (see
 * `pairedCell`). `written` and `dropped` are the gateway's own counts of the records of that mode's
 * requests: a row that wrote none measured nothing.
 */
export function formatLoggingTable(all: readonly Measurement[]): string | undefined {
  const find = lookupIn(all)
  const logsOffOf = (m: Measurement) => find(m.mode, logsOffNameFor(m.target.framework!))
  const modeOrder = (m: Measurement) => MODES.indexOf(m.mode)
  const logging = all
    .filter((m) => logsOn(m.target) && logsOffOf(m) !== undefined)
    .sort((a, b) => modeOrder(a) - modeOrder(b))
  if (logging.length === 0) return undefined
  // A disturbed baseline skews the delta as much as a disturbed row: either marks the row.
  const disturbed = logging.flatMap((m) => [m, logsOffOf(m)!].filter(isDisturbed))
  const rows = logging.map((m) => {
    const c = compare(m, all)
    const off = logsOffOf(m)!
    const marked = isDisturbed(m) || isDisturbed(off)
    return [
      `${marked ? `${m.target.name} *` : m.target.name} (${m.mode})`,
      m.target.logs!,
      m.latency.p50Ms.toFixed(3),
      m.throughput.requestsPerSecond.toFixed(0),
      off.latency.p50Ms.toFixed(3),
      signedMs(c.addedP50OverLogsOffMs),
      off.throughput.requestsPerSecond.toFixed(0),
      percent(c.shareOfLogsOff),
      pairedCell(m, off),
      cpuCell(m),
      cpuCell(m, 'helpers'),
      cpuCell(off),
      percent(c.cpuShareOfLogsOff),
      m.logs ? String(m.logs.written) : '-',
      m.logs ? String(m.logs.dropped) : '-',
    ]
  })
  const footnote = disturbed.length
    ? `\n* other processes kept cores busy meanwhile: ${[...new Set(disturbed)]
        .map((m) => `${m.target.name} (${m.mode}) ${m.foreignCores!.toFixed(2)}`)
        .join(', ')}`
    : ''
  return `LOGGING\n${formatTable(LOGGING_COLUMNS, rows, 2)}${footnote}`
}

const BASELINE_COLUMNS = [
  'baseline row',
  'this build',
  'p50 ms',
  'this p50',
  'req/s',
  'this req/s',
  '% req/s',
  'paired % req/s',
  'cpu us/req',
  'this cpu',
  'cpu % baseline',
]

/**
 * The baseline build's rows (`BENCH_BASELINE`) beside this build's same mount, measured in the same run:
 * `% req/s` is this build's throughput as a share of the baseline's, `cpu % baseline` the baseline's CPU per
 * request over this build's (above 100%: this build does the same work in less CPU). With rounds, `paired %
 * req/s` is the same share taken round by round, its median and, in brackets, its middle half: a difference
 * inside that range is the machine's.
 */
export function formatBaselineTable(all: readonly Measurement[]): string | undefined {
  const find = lookupIn(all)
  const baselines = all.filter((m) => m.target.role === 'baseline')
  if (baselines.length === 0) return undefined
  const rows = baselines.map((m) => {
    const current = find(m.mode, counterpartOf(m.target))
    const marked = isDisturbed(m) || (current !== undefined && isDisturbed(current))
    return [
      `${marked ? `${m.target.name} *` : m.target.name} (${m.mode})`,
      current?.target.name ?? '-',
      m.latency.p50Ms.toFixed(3),
      current?.latency.p50Ms.toFixed(3) ?? '-',
      m.throughput.requestsPerSecond.toFixed(0),
      current?.throughput.requestsPerSecond.toFixed(0) ?? '-',
      percent(current && current.throughput.requestsPerSecond / m.throughput.requestsPerSecond),
      pairedCell(current, m),
      cpuCell(m),
      current ? cpuCell(current) : '-',
      percent(current && cpuShare(m, current)),
    ]
  })
  return `BASELINE (${process.env.BENCH_BASELINE})\n${formatTable(BASELINE_COLUMNS, rows, 2)}`
}

/** The frontier of one target in one mode: the highest rate under each p99 threshold. */
export interface FrontierResult {
  readonly target: Target
  readonly mode: Mode
  readonly points: readonly FrontierPoint[]
  readonly runs: readonly RateRun[]
  /** Cores other processes kept busy over the whole search, when that can be measured. */
  readonly foreignCores: number | undefined
}

/**
 * Per threshold, a gateway's frontier as a share of its framework's bare proxy's in the same mode;
 * `undefined` where either is only a bound (every run over the threshold, or none).
 */
export function frontierShares(f: FrontierResult, all: readonly FrontierResult[]): (number | undefined)[] {
  const bare =
    f.target.role === 'gateway' && f.target.framework
      ? all.find((b) => b.mode === f.mode && b.target.name === bareNameFor(f.target.framework!))
      : undefined
  return f.points.map((point, i) => {
    const base = bare?.points[i]
    if (point.bound !== 'found' || base?.bound !== 'found') return undefined
    return point.rate / base.rate
  })
}

/**
 * The highest rate (req/s) at which p99 stayed under 1, 5 and 10 ms, and for a gateway mount the same as a
 * share of its framework's bare proxy: a tail that got worse shows here even when throughput held.
 */
export function formatFrontierTable(all: readonly FrontierResult[]): string | undefined {
  if (all.length === 0) return undefined
  const under = FRONTIER_THRESHOLDS_MS.map((ms) => `p99<${ms}ms`)
  const header = ['target', 'mode', ...under, ...under.map((name) => `% bare-fw ${name.slice(3)}`), 'runs']
  const rows = all.map((f) => [
    f.foreignCores !== undefined && f.foreignCores > BUSY_CORES ? `${f.target.name} *` : f.target.name,
    f.mode,
    ...f.points.map(frontierCell),
    ...frontierShares(f, all).map(percent),
    String(f.runs.length),
  ])
  const disturbed = all.filter((f) => f.foreignCores !== undefined && f.foreignCores > BUSY_CORES)
  const footnote = disturbed.length
    ? `\n* other processes kept ${disturbed.map((f) => f.foreignCores!.toFixed(2)).join(', ')} cores busy meanwhile`
    : ''
  return `FRONTIER (req/s)\n${formatTable(header, rows, 2)}${footnote}`
}

/** `1600`; `>=64000` when no rate measured was over the threshold, `<50` when every one was. */
function frontierCell(point: FrontierPoint): string {
  if (point.bound === 'above') return `>=${point.rate}`
  return point.bound === 'below' ? `<${point.rate}` : String(point.rate)
}

/** One gateway's memory, for the MEMORY table and its curve. */
export interface MemoryRow {
  readonly target: Target
  readonly memory: MemoryResult
}

const MIB = 1024 * 1024

function mib(bytes: number | undefined): string {
  return bytes === undefined ? '-' : (bytes / MIB).toFixed(1)
}

/**
 * RSS idle, steady under load and after it, and its growth over the steady part, marked `!` past the limit
 * in a soak (`flagGrowth`).
 */
export function formatMemoryTable(
  rows: readonly MemoryRow[],
  title: string,
  flagGrowth: boolean,
): string | undefined {
  if (rows.length === 0) return undefined
  const header = ['target', 'idle MiB', 'steady MiB', 'after MiB', 'heap after', 'growth', 'load p99 ms']
  const cells = rows.map(({ target, memory }) => [
    target.name,
    mib(memory.idle.rssBytes),
    mib(memory.steadyRssBytes),
    mib(memory.after.rssBytes),
    mib(memory.after.heapUsedBytes),
    memory.growth === undefined
      ? '-'
      : `${memory.growth >= 0 ? '+' : ''}${(memory.growth * 100).toFixed(1)}%${flagGrowth && memory.growth > GROWTH_LIMIT ? ' !' : ''}`,
    memory.load.p99Ms.toFixed(3),
  ])
  return `${title}\n${formatTable(header, cells)}`
}

/** At most this many rows per curve: a ten-minute soak sampled every 5 s would otherwise print 120. */
const CURVE_ROWS = 13

/** RSS and heap over the load, every sample for a short one, evenly spaced ones (first and last kept) else. */
export function formatMemoryCurve({ target, memory }: MemoryRow): string {
  const { samples, steadyFromSeconds } = memory
  const picked =
    samples.length <= CURVE_ROWS
      ? samples
      : Array.from(
          { length: CURVE_ROWS },
          (_, i) => samples[Math.round((i * (samples.length - 1)) / (CURVE_ROWS - 1))]!,
        )
  const rows = picked.map((sample: MemorySample) => [
    sample.atSeconds.toFixed(0),
    mib(sample.rssBytes),
    mib(sample.heapUsedBytes),
  ])
  const title = `${target.name}: memory over the load (steady from ${steadyFromSeconds.toFixed(0)} s)`
  return `${title}\n${formatTable(['t s', 'RSS MiB', 'heap MiB'], rows, 0)}`
}

/** The first `textColumns` columns are left-aligned, the numbers after them right-aligned. */
export function formatTable(header: readonly string[], rows: readonly string[][], textColumns = 1): string {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]?.length ?? 0)))
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i < textColumns ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd()
  const rule = widths.map((w) => '-'.repeat(w)).join('  ')
  return [line(header), rule, ...rows.map(line)].join('\n')
}

function signedMs(value: number | undefined): string {
  if (value === undefined) return '-'
  return `${value >= 0 ? '+' : ''}${value.toFixed(3)}`
}

function percent(share: number | undefined): string {
  return share === undefined ? '-' : `${(share * 100).toFixed(1)}%`
}

/** `row`'s throughput as a share of `other`'s, round by round: `97.2% (91.0-104.1)`; `-` without rounds. */
function pairedCell(row: Measurement | undefined, other: Measurement): string {
  const shares = row && pairedShares(row, other, (m) => m.throughput.requestsPerSecond)
  if (shares === undefined) return '-'
  const points = (share: number) => (share * 100).toFixed(1)
  return `${points(shares.median)}% (${points(shares.lowQuartile)}-${points(shares.highQuartile)})`
}

/**
 * What a TTFT row adds over `direct` and, for a gateway row (the guard row included), over its framework's
 * bare proxy, at p50; for the guard row also over the same mount without the step at the same commit point.
 */
export interface TtftComparison {
  addedFirstTokenP50OverDirectMs: number | undefined
  addedFirstTokenP50OverBareMs: number | undefined
  addedEndP50OverBareMs: number | undefined
  addedFirstTokenP50OverGatewayMs: number | undefined
}

export function compareTtft(row: TtftRow, all: readonly TtftRow[]): TtftComparison {
  const { target } = row
  const direct = all.find((r) => r.target.role === 'direct')
  const mount = target.role === 'gateway' || target.guard !== undefined
  const bare =
    mount && target.framework ? all.find((r) => r.target.name === bareNameFor(target.framework!)) : undefined
  const gateway =
    target.guard !== undefined && target.framework
      ? all.find(
          (r) =>
            r.target.name === gatewayNameFor(target.framework!) &&
            r.commit === row.commit &&
            r.holdMs === row.holdMs,
        )
      : undefined
  return {
    addedFirstTokenP50OverDirectMs:
      direct && target.role !== 'direct' ? row.firstToken.p50Ms - direct.firstToken.p50Ms : undefined,
    addedFirstTokenP50OverBareMs: bare ? row.firstToken.p50Ms - bare.firstToken.p50Ms : undefined,
    addedEndP50OverBareMs: bare ? row.end.p50Ms - bare.end.p50Ms : undefined,
    addedFirstTokenP50OverGatewayMs: gateway ? row.firstToken.p50Ms - gateway.firstToken.p50Ms : undefined,
  }
}

const TTFT_COLUMNS = [
  'target',
  'commit',
  'byte p50',
  'token p50',
  'token p99',
  'end p50',
  'end p99',
  '+token p50 direct',
  '+token p50 bare-fw',
  '+end p50 bare-fw',
  '+token p50 gateway-fw',
]

/**
 * Per row, ms from sending the request to its first body byte, to the first byte of answer content (the
 * first token) and to its last byte; for the gateway's commit points, what each adds over the bare proxy.
 */
export function formatTtftTable({ plan, rows, foreignCores }: TtftResult): string {
  const cells = rows.map((row) => {
    const c = compareTtft(row, rows)
    return [
      row.target.name,
      commitLabel(row),
      row.firstByte.p50Ms.toFixed(2),
      row.firstToken.p50Ms.toFixed(2),
      row.firstToken.p99Ms.toFixed(2),
      row.end.p50Ms.toFixed(2),
      row.end.p99Ms.toFixed(2),
      signedMs(c.addedFirstTokenP50OverDirectMs),
      signedMs(c.addedFirstTokenP50OverBareMs),
      signedMs(c.addedEndP50OverBareMs),
      signedMs(c.addedFirstTokenP50OverGatewayMs),
    ]
  })
  const disturbed = foreignCores !== undefined && foreignCores > BUSY_CORES
  const title =
    `TTFT (sse, upstream events ${plan.gapMs} ms apart, ${plan.requests} requests per row in turn; ` +
    `ms from sending)${disturbed ? ' *' : ''}`
  const footnote = disturbed ? `\n* other processes kept ${foreignCores.toFixed(2)} cores busy meanwhile` : ''
  return `${title}\n${formatTable(TTFT_COLUMNS, cells, 2)}${footnote}`
}

/** Checks every aim for every gateway mount and mode measured; a missing baseline gives `n/a`. */
export function checkAims(all: readonly Measurement[], modes: readonly Mode[]): AimCheck[] {
  const gateways = uniqueGatewayTargets(all)
  const checks: AimCheck[] = []
  for (const mode of modes) {
    for (const target of gateways) {
      const measurement = lookupIn(all)(mode, target.name)
      if (!measurement) continue
      const comparison = compare(measurement, all)
      checks.push(...(isCompat(mode) ? compatAims : modeAims)(measurement, comparison))
    }
  }
  if (modes.includes('json') && modes.includes('sse')) {
    for (const target of gateways) checks.push(streamingAim(target, all))
  }
  for (const m of all) if (m.target.role === 'policy') checks.push(...policyAims(m, all))
  for (const m of all) if (logsOn(m.target)) checks.push(...loggingAims(m, all))
  return checks
}

/** What request logs cost, per store, against the same mount with logs off; `info`, with no threshold. */
function loggingAims(m: Measurement, all: readonly Measurement[]): AimCheck[] {
  const c = compare(m, all)
  // Modes the logs-off mount did not run in (the compat ones) have nothing to compare with.
  if (c.shareOfLogsOff === undefined) return []
  const subject = `${m.target.name} ${m.mode}`
  const off = logsOffNameFor(m.target.framework!)
  const floor = m.target.logs === 'postgres' ? 0.85 : 0.9
  const logs = `request logs (${m.target.logs})`
  return [
    addedMs(`${logs}: p50 over ${off}`, subject, c.addedP50OverLogsOffMs),
    atLeast(`${logs}: throughput >= ${floor * 100}% of ${off}`, subject, c.shareOfLogsOff, floor),
    shareOf(`${logs}: CPU per request share of ${off}`, subject, c.cpuShareOfLogsOff),
  ]
}

/**
 * A cache hit must beat the provider itself, here a fake one that answers precomputed bytes at once: a real
 * provider takes far longer. A limit's or a route's cost is reported against the same mount without it (for
 * a route, the same request naming the model itself), as `info`.
 */
function policyAims(m: Measurement, all: readonly Measurement[]): AimCheck[] {
  const subject = `${m.target.name} ${m.mode}`
  const c = compare(m, all)
  if (m.target.cached) {
    const direct = lookupIn(all)(m.mode, 'direct')
    const share = direct ? m.throughput.requestsPerSecond / direct.throughput.requestsPerSecond : undefined
    return [
      atMost('cache hit: p50 <= direct', subject, c.addedP50OverDirectMs, 0, 'ms'),
      atLeast('cache hit: throughput >= direct', subject, share, 1),
    ]
  }
  const gateway = gatewayNameFor(m.target.framework!)
  const policy = m.target.guard
    ? `guard step (${m.target.guard})`
    : m.target.route
      ? 'dynamic route'
      : 'limit step'
  return [
    addedMs(`${policy}: p50 over ${gateway}`, subject, c.addedP50OverGatewayMs),
    shareOf(`${policy}: throughput share of ${gateway}`, subject, c.shareOfGateway),
  ]
}

function modeAims(m: Measurement, c: Comparison): AimCheck[] {
  const subject = `${m.target.name} ${m.mode}`
  const checks = [
    atMost('added p50 over direct <= 0.35 ms', subject, c.addedP50OverDirectMs, 0.35, 'ms'),
    atLeast('throughput >= 60% of bare-node', subject, c.shareOfBareNode, 0.6),
    atLeast(`throughput >= 85% of bare-${m.target.framework}`, subject, c.shareOfBare, 0.85),
    atMost(`p50 <= 0.1 ms over bare-${m.target.framework}`, subject, c.addedP50OverBareMs, 0.1, 'ms'),
    shareOf(`CPU per request share of bare-${m.target.framework}`, subject, c.cpuShareOfBare),
  ]
  if (m.target.framework === 'fastify') {
    checks.push(atLeast('Fastify mount >= 75% of bare-node', subject, c.shareOfBareNode, 0.75))
  }
  return checks
}

/**
 * Translation to Anthropic and back, against the same framework relaying Anthropic's own call untouched: the
 * cost should stay well under a millisecond per request. The throughput share is reported, not judged.
 */
function compatAims(m: Measurement, c: Comparison): AimCheck[] {
  const subject = `${m.target.name} ${m.mode}`
  const bare = `bare-${m.target.framework}`
  return [
    atMost(`translation: p50 <= 1 ms over ${bare}`, subject, c.addedP50OverBareMs, 1, 'ms'),
    shareOf(`translation: throughput share of ${bare}`, subject, c.shareOfBare),
  ]
}

/** Streaming must not cost more than buffering: the gateway relays events as they come. */
function streamingAim(target: Target, all: readonly Measurement[]): AimCheck {
  const addedFor = (mode: Mode) => {
    const m = lookupIn(all)(mode, target.name)
    return m ? compare(m, all).addedP50OverDirectMs : undefined
  }
  const sse = addedFor('sse')
  const json = addedFor('json')
  const aim = 'SSE added p50 <= JSON added p50'
  if (sse === undefined || json === undefined)
    return { aim, subject: target.name, value: '-', verdict: 'n/a' }
  return {
    aim,
    subject: target.name,
    value: `${signedMs(sse)} vs ${signedMs(json)} ms`,
    verdict: sse <= json ? 'PASS' : 'MISS',
  }
}

function atMost(
  aim: string,
  subject: string,
  value: number | undefined,
  limit: number,
  unit: string,
): AimCheck {
  if (value === undefined) return { aim, subject, value: '-', verdict: 'n/a' }
  return { aim, subject, value: `${signedMs(value)} ${unit}`, verdict: verdictOf(value <= limit) }
}

function atLeast(aim: string, subject: string, share: number | undefined, floor: number): AimCheck {
  if (share === undefined) return { aim, subject, value: '-', verdict: 'n/a' }
  return { aim, subject, value: percent(share), verdict: verdictOf(share >= floor) }
}

function addedMs(aim: string, subject: string, value: number | undefined): AimCheck {
  if (value === undefined) return { aim, subject, value: '-', verdict: 'n/a' }
  return { aim, subject, value: `${signedMs(value)} ms`, verdict: 'info' }
}

function shareOf(aim: string, subject: string, share: number | undefined): AimCheck {
  if (share === undefined) return { aim, subject, value: '-', verdict: 'n/a' }
  return { aim, subject, value: percent(share), verdict: 'info' }
}

function verdictOf(pass: boolean): Verdict {
  return pass ? 'PASS' : 'MISS'
}

function uniqueGatewayTargets(all: readonly Measurement[]): Target[] {
  const byName = new Map<string, Target>()
  for (const m of all) if (m.target.role === 'gateway') byName.set(m.target.name, m.target)
  return [...byName.values()]
}

export function formatAims(checks: readonly AimCheck[]): string {
  const rows = checks.map((c) => [c.verdict, c.subject, c.aim, c.value])
  return `AIMS\n${formatTable(['', 'subject', 'aim', 'measured'], rows, 3)}`
}
