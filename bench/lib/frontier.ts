import type { RateRun } from './rate.js'

// The throughput frontier: per target and mode, the highest rate at which p99 stays under each threshold.
// Throughput alone can hold while the tail gets worse (a GC pause, a lock, a queue that forms sooner); the
// rate at which p99 crosses 1, 5 and 10 ms moves when that happens.

/** The p99 thresholds, in ms, tightest first. */
export const FRONTIER_THRESHOLDS_MS = [1, 5, 10] as const
/** Where the ramp starts: low enough that a healthy proxy is under the tightest threshold on two cores. */
const START_RATE = 250
/** On a machine so busy that even the start is over the tightest threshold, the ramp goes down to this. */
const MIN_RATE = 50
/** Far above what two shared cores serve: the ramp always ends on a threshold before this. */
const MAX_RATE = 64_000
const RAMP_FACTOR = 2
/** Halvings of the (geometric) gap left by the ramp: 3 leave each frontier within 2^(1/8), about 9%. */
const BISECTIONS = 3

/** What the search found for one threshold. */
export interface FrontierPoint {
  readonly thresholdMs: number
  /**
   * `found`: `rate` is the highest rate measured under the threshold, below the lowest one over it.
   * `above`: no rate measured was over the threshold; the frontier is above `rate`, the highest measured.
   * `below`: every rate measured was over it; the frontier is below `rate`, the lowest measured.
   */
  readonly bound: 'found' | 'above' | 'below'
  readonly rate: number
}

export interface FrontierSearch {
  readonly points: FrontierPoint[]
  /** Every rate measured, in the order measured. */
  readonly runs: RateRun[]
}

/**
 * A geometric ramp until p99 crosses the loosest threshold (first down, while even `START_RATE` is over the
 * tightest), then, per threshold, a few bisections between the highest rate under it and the lowest rate
 * above that one that is over it. Every run informs every threshold.
 */
export async function searchFrontier(measure: (rate: number) => Promise<RateRun>): Promise<FrontierSearch> {
  const runs: RateRun[] = []
  const run = async (rate: number) => {
    const done = await measure(rate)
    runs.push(done)
    return done
  }
  const tightest = Math.min(...FRONTIER_THRESHOLDS_MS)
  const loosest = Math.max(...FRONTIER_THRESHOLDS_MS)
  const start = await run(START_RATE)
  let lowest = start
  for (
    let rate = START_RATE / RAMP_FACTOR;
    !under(lowest, tightest) && rate >= MIN_RATE;
    rate /= RAMP_FACTOR
  ) {
    lowest = await run(Math.round(rate))
  }
  if (under(start, loosest)) {
    for (let rate = START_RATE * RAMP_FACTOR; rate <= MAX_RATE; rate *= RAMP_FACTOR) {
      if (!under(await run(rate), loosest)) break
    }
  }
  for (const threshold of FRONTIER_THRESHOLDS_MS) {
    for (let i = 0; i < BISECTIONS; i++) {
      const { highestUnder, lowestOver } = bracket(runs, threshold)
      if (highestUnder === undefined || lowestOver === undefined) break
      const rate = Math.round(Math.sqrt(highestUnder * lowestOver))
      if (rate === highestUnder || rate === lowestOver) break
      await run(rate)
    }
  }
  return { points: FRONTIER_THRESHOLDS_MS.map((ms) => pointOf(runs, ms)), runs }
}

/** A run cut short, or one with no timed request, has a p99 that is not a number: over every threshold. */
function under(run: RateRun, thresholdMs: number): boolean {
  return run.p99Ms < thresholdMs
}

/**
 * The highest rate measured under the threshold, and the lowest above it that is over. A busy machine
 * does not give a monotone curve, and its disturbances strike at random while a server past its capacity is
 * over every time: a low rate that a disturbance put over the threshold does not hide the higher rates that
 * stayed under (so a frontier needs a run under the threshold at that rate, not a curve under it all along).
 */
function bracket(runs: readonly RateRun[], thresholdMs: number) {
  const unders = runs.filter((r) => under(r, thresholdMs)).map((r) => r.rate)
  const highestUnder = unders.length > 0 ? Math.max(...unders) : undefined
  const overs = runs
    .filter((r) => !under(r, thresholdMs) && (highestUnder === undefined || r.rate > highestUnder))
    .map((r) => r.rate)
  return { highestUnder, lowestOver: overs.length > 0 ? Math.min(...overs) : undefined }
}

function pointOf(runs: readonly RateRun[], thresholdMs: number): FrontierPoint {
  const { highestUnder, lowestOver } = bracket(runs, thresholdMs)
  if (highestUnder === undefined) return { thresholdMs, bound: 'below', rate: lowestOver! }
  return { thresholdMs, bound: lowestOver === undefined ? 'above' : 'found', rate: highestUnder }
}
