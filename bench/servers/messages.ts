// What the runner and its servers say to each other over IPC. No side effects: the runner imports this
// module, and `shared.ts` installs signal and message handlers that belong in the servers only.

/** The message every bench server sends its parent once it accepts connections. */
export interface ReadyMessage {
  port: number
  /**
   * Processes outside the bench that this server makes work on its behalf (the local Redis it uses): their
   * CPU belongs to the measurement, not to "other processes on the machine".
   */
  helperPids?: number[]
}

/** The parent sends `STATS_REQUEST` and gets a `StatsMessage` back. */
export const STATS_REQUEST = 'stats'
/**
 * The same reply, after a full garbage collection when the server runs with `--expose-gc` (`gcRan` says
 * whether it did): what the memory part reads once the load has stopped.
 */
export const GC_STATS_REQUEST = 'gc-stats'

/**
 * The server's counters, and always its memory: `rssBytes` (resident set size) and `heapUsedBytes` (the V8
 * heap in use), as `process.memoryUsage()` gives them when it answers.
 */
export interface StatsMessage {
  stats: Record<string, number>
}
