import { readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'

// The machine has two cores and other people's jobs (test runs, builds) may land on it mid-run. These
// helpers measure how much CPU went to processes other than the bench's own, so that figures taken while
// something else was running are flagged rather than trusted.

/** Linux reports process CPU time in clock ticks of 1/100 s (USER_HZ) on every mainstream architecture. */
const TICKS_PER_SECOND = 100
/** Other processes using more than this many cores make a measurement suspect. */
export const BUSY_CORES = 0.2

/** CPU seconds spent by all cores, busy only (not idle or iowait). */
function machineBusySeconds(): number {
  let ms = 0
  for (const { times } of cpus()) ms += times.user + times.nice + times.sys + times.irq
  return ms / 1000
}

/** CPU seconds used so far by a process, or `undefined` without /proc (or once it has exited). */
function processSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name, which sits in parentheses and may itself contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND
  } catch {
    return undefined
  }
}

function ownSeconds(childPids: readonly number[]): number | undefined {
  let total = processSeconds(process.pid)
  for (const pid of childPids) {
    const seconds = processSeconds(pid)
    if (total === undefined || seconds === undefined) return undefined
    total += seconds
  }
  return total
}

/**
 * Starts watching; the returned function gives the cores other processes kept busy on average since then
 * (0.5 = half a core), or `undefined` where that cannot be told.
 */
export function watchForeignCpu(childPids: readonly number[]): () => number | undefined {
  const startedAt = performance.now()
  const machineBefore = machineBusySeconds()
  const ownBefore = ownSeconds(childPids)
  return () => {
    const ownAfter = ownSeconds(childPids)
    if (ownBefore === undefined || ownAfter === undefined) return undefined
    const wallSeconds = (performance.now() - startedAt) / 1000
    const foreign = machineBusySeconds() - machineBefore - (ownAfter - ownBefore)
    return Math.max(0, foreign / wallSeconds)
  }
}

/** Waits, up to `maxWaitMs`, for a quarter second in which other processes leave the cores alone. */
export async function waitForQuietMachine(childPids: readonly number[], maxWaitMs: number): Promise<void> {
  const deadline = performance.now() + maxWaitMs
  while (performance.now() < deadline) {
    const foreignCpu = watchForeignCpu(childPids)
    await sleep(250)
    const cores = foreignCpu()
    if (cores === undefined || cores < BUSY_CORES) return
  }
}

/**
 * Starts counting the CPU time of `pids`; the returned function gives the seconds they used since then.
 * A server's CPU time per request hardly moves with what else the machine does, where its throughput does.
 */
export function watchCpuSeconds(pids: readonly number[]): () => number | undefined {
  const before = pids.map(processSeconds)
  return () => {
    let total = 0
    for (const [i, pid] of pids.entries()) {
      const start = before[i]
      const end = processSeconds(pid)
      if (start === undefined || end === undefined) return undefined
      total += end - start
    }
    return total
  }
}
