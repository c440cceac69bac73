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

export interface StatsMessage {
  stats: Record<string, number>
}
