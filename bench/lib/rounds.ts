import type { LatencyResult, ThroughputResult } from './measure.js'
import type { GuardCounts, LogCounts, Measurement } from './report.js'

// With `BENCH_ROUNDS`, every target and mode is measured once per round. A slow stretch of the machine (the
// hypervisor taking the CPU away, which no process count shows) then lands on one round of every row rather
// than on the whole of one row; the median of each figure leaves it out.

/** The median; of an even count, the mean of the two middle values. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  if (sorted.length % 2 === 1) return sorted[middle]!
  return (sorted[middle - 1]! + sorted[middle]!) / 2
}

export interface Range {
  readonly min: number
  readonly max: number
}

/** The lowest and highest of one figure over a row's rounds: how much the machine moved it. */
export function rangeOf(rounds: readonly Measurement[], figure: (m: Measurement) => number): Range {
  const values = rounds.map(figure)
  return { min: Math.min(...values), max: Math.max(...values) }
}

/** A figure of one row over another's, round by round: the median share and the middle half of them. */
export interface PairedShares {
  readonly median: number
  readonly lowQuartile: number
  readonly highQuartile: number
}

/**
 * `figure` of `row` over that of `other`, taken round by round (round i of one against round i of the
 * other, measured in the same pass over the targets) rather than median over median: the machine's slow
 * stretches come and go over seconds, so two rows measured close together share them, and the spread of the
 * shares shows how far the machine moved the comparison. `undefined` with fewer than two rounds each.
 */
export function pairedShares(
  row: Measurement,
  other: Measurement,
  figure: (m: Measurement) => number,
): PairedShares | undefined {
  const mine = row.rounds ?? []
  const theirs = other.rounds ?? []
  if (mine.length < 2 || mine.length !== theirs.length) return undefined
  const shares = mine.map((round, i) => figure(round) / figure(theirs[i]!)).sort((a, b) => a - b)
  return { median: median(shares), lowQuartile: quantile(shares, 0.25), highQuartile: quantile(shares, 0.75) }
}

/** The `q` quantile of ascending `sorted` values, interpolated between the two nearest. */
function quantile(sorted: readonly number[], q: number): number {
  const position = q * (sorted.length - 1)
  const low = Math.floor(position)
  const high = Math.ceil(position)
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low)
}

/**
 * One row from the rounds of a target and mode. p50, p99 and req/s are each the median of their own
 * figures (a round that was slow on one need not be on the other). Problem counters are summed, so that the
 * row still shows every failure, unmarked answer, store error, record and guard call any round had.
 */
export function combineRounds(rounds: readonly Measurement[]): Measurement {
  const first = rounds[0]
  if (first === undefined) throw new Error('a row needs at least one round')
  return {
    target: first.target,
    mode: first.mode,
    latency: combineLatency(rounds.map((m) => m.latency)),
    throughput: combineThroughput(rounds.map((m) => m.throughput)),
    foreignCores: medianForeignCores(rounds),
    upstreamAnswers: sum(rounds.map((m) => m.upstreamAnswers)),
    storeErrors: sum(rounds.map((m) => m.storeErrors)),
    logs: combineLogs(rounds.map((m) => m.logs)),
    guard: combineGuard(rounds.map((m) => m.guard)),
    rounds,
  }
}

function combineLatency(rounds: readonly LatencyResult[]): LatencyResult {
  return {
    p50Ms: median(rounds.map((r) => r.p50Ms)),
    p99Ms: median(rounds.map((r) => r.p99Ms)),
    failures: sum(rounds.map((r) => r.failures)),
    unmarked: sum(rounds.map((r) => r.unmarked)),
  }
}

function combineThroughput(rounds: readonly ThroughputResult[]): ThroughputResult {
  return {
    requestsPerSecond: median(rounds.map((r) => r.requestsPerSecond)),
    requests: sum(rounds.map((r) => r.requests)),
    cpuUsPerRequest: medianIfKnown(rounds.map((r) => r.cpuUsPerRequest)),
    helperCpuUsPerRequest: medianIfKnown(rounds.map((r) => r.helperCpuUsPerRequest)),
    non2xx: sum(rounds.map((r) => r.non2xx)),
    errors: sum(rounds.map((r) => r.errors)),
    timeouts: sum(rounds.map((r) => r.timeouts)),
  }
}

/**
 * The median row is suspect when the rounds it comes from mostly were: one disturbed round of three barely
 * moves a median, so it does not mark the row. Unknown when any round could not tell.
 */
function medianForeignCores(rounds: readonly Measurement[]): number | undefined {
  return medianIfKnown(rounds.map((m) => m.foreignCores))
}

/** The median, when every round could tell the figure; `undefined` otherwise. */
function medianIfKnown(values: readonly (number | undefined)[]): number | undefined {
  return values.every((value) => value !== undefined) ? median(values as number[]) : undefined
}

/**
 * Requests, records written and records dropped add up over rounds; `queuedAtEnd` is a snapshot, not a count, so the row keeps
 * the round whose store fell furthest behind.
 */
function combineLogs(rounds: readonly (LogCounts | undefined)[]): LogCounts | undefined {
  const reported = rounds.filter((logs) => logs !== undefined)
  if (reported.length === 0) return undefined
  return {
    requests: sum(reported.map((logs) => logs.requests)),
    written: sum(reported.map((logs) => logs.written)),
    dropped: sum(reported.map((logs) => logs.dropped)),
    queuedAtEnd: Math.max(...reported.map((logs) => logs.queuedAtEnd)),
  }
}

/** A guard row's counts add up over rounds. */
function combineGuard(rounds: readonly (GuardCounts | undefined)[]): GuardCounts | undefined {
  const reported = rounds.filter((guard) => guard !== undefined)
  if (reported.length === 0) return undefined
  return {
    requests: sum(reported.map((guard) => guard.requests)),
    classifierCalls: sum(reported.map((guard) => guard.classifierCalls)),
    unredacted: sum(reported.map((guard) => guard.unredacted)),
  }
}

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0)
}
