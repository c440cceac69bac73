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

/**
 * `ALLOCATIONS_START` has the server sample what it allocates (V8's sampling heap profiler, collected
 * objects included); `ALLOCATIONS_STOP` ends it, and the server answers an `AllocationsMessage`.
 */
export const ALLOCATIONS_START = 'allocations-start'
export const ALLOCATIONS_STOP = 'allocations-stop'

/** Where the sampled bytes were allocated: one entry per function, by the bytes it allocated itself. */
export interface AllocationSite {
  readonly functionName: string
  /** The script's URL (`node:...`, `file:///...`), empty for V8's own allocations. */
  readonly url: string
  /** 1-based, as editors count. */
  readonly line: number
  readonly bytes: number
}

export interface AllocationsMessage {
  allocations: AllocationSite[]
}
