/**
 * Spend per user, from analytics grouped by principal and by a session key per UTC day
 * (`groupBy=principal,metadata.<key>&bucket=day`).
 *
 * - An active user is a principal with at least one request in the range; requests without a principal
 *   are counted apart, as anonymous.
 * - A heavy user spends more than twice the median spend per active user.
 * - A session is one principal's requests that share the `cf-aig-metadata` session key's value (for
 *   `session`, `{"session": "abc"}`), across days; requests without that key make one session per
 *   principal and UTC day.
 * - A session is flagged when it cost more than twice the user's usual session: the median cost of that
 *   user's sessions in the range. It takes three sessions or more for one to stand out from the others.
 */
import type { AnalyticsRow } from '../../src/logs/types.js'

export interface UserSpend {
  readonly principal: string
  readonly requests: number
  readonly tokens: number
  readonly cost: number
  readonly sessions: number
  /** Spend over the median spend per user; null when the median is 0. */
  readonly ratio: number | null
  readonly heavy: boolean
}

export interface SessionSpend {
  readonly principal: string
  /** The session key's value, or null for a principal's day without one. */
  readonly session: string | null
  /** Start of the first UTC day the session had requests on. */
  readonly start: number
  readonly requests: number
  readonly cost: number
  /** The median cost of this user's sessions. */
  readonly usual: number
  readonly flagged: boolean
}

export interface SpendReport {
  readonly activeUsers: number
  readonly anonymousRequests: number
  readonly totalCost: number
  readonly medianSpend: number
  /** Every active user, biggest spender first. */
  readonly users: readonly UserSpend[]
  readonly heavyUsers: readonly UserSpend[]
  /** Flagged sessions, biggest spender first. */
  readonly flaggedSessions: readonly SessionSpend[]
  readonly sessions: number
}

/** How many times the median (a user's, or every user's) counts as standing out. */
export const OUTLIER_FACTOR = 2
const MIN_SESSIONS_TO_FLAG = 3

/**
 * The median of some numbers (the mean of the middle two for an even count); 0 for none.
 *
 * @example
 * median([1, 3, 10]) // 3
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

interface Totals {
  requests: number
  tokens: number
  cost: number
  start: number
}

function add(totals: Totals | undefined, row: AnalyticsRow): Totals {
  const start = row.bucketStart ?? 0
  return {
    requests: (totals?.requests ?? 0) + row.requests,
    tokens: (totals?.tokens ?? 0) + row.tokensIn + row.tokensOut,
    // Sums of exact decimals; rounded back to the stores' 1e-10 so that 0.1 + 0.2 stays 0.3.
    cost: Math.round(((totals?.cost ?? 0) + (row.cost ?? 0)) * 1e10) / 1e10,
    start: totals === undefined ? start : Math.min(totals.start, start),
  }
}

/**
 * The report for one range, from its analytics rows (see the module's comment for the definitions).
 *
 * @example
 * spendReport(rows, 'session').heavyUsers.map((user) => user.principal) // ['carol']
 */
export function spendReport(rows: readonly AnalyticsRow[], sessionKey: string): SpendReport {
  const sessionGroup = `metadata.${sessionKey}`
  const users = new Map<string, Totals>()
  const sessions = new Map<string, { principal: string; session: string | null; totals: Totals }>()
  let anonymousRequests = 0
  for (const row of rows) {
    const principal = row.group.principal ?? null
    if (principal === null) {
      anonymousRequests += row.requests
      continue
    }
    users.set(principal, add(users.get(principal), row))
    const session = row.group[sessionGroup] ?? null
    const id = JSON.stringify([principal, session ?? `day:${row.bucketStart ?? 0}`])
    const known = sessions.get(id)
    sessions.set(id, { principal, session, totals: add(known?.totals, row) })
  }

  const medianSpend = median([...users.values()].map((user) => user.cost))
  const byUser = new Map<string, SessionSpend[]>()
  for (const { principal, session, totals } of sessions.values()) {
    const list = byUser.get(principal) ?? []
    list.push({
      principal,
      session,
      start: totals.start,
      requests: totals.requests,
      cost: totals.cost,
      usual: 0,
      flagged: false,
    })
    byUser.set(principal, list)
  }
  const flaggedSessions: SessionSpend[] = []
  for (const list of byUser.values()) {
    const usual = median(list.map((session) => session.cost))
    for (const [index, session] of list.entries()) {
      const flagged =
        list.length >= MIN_SESSIONS_TO_FLAG && session.cost > 0 && session.cost > OUTLIER_FACTOR * usual
      list[index] = { ...session, usual, flagged }
      if (flagged) flaggedSessions.push(list[index]!)
    }
  }

  const userList = [...users.entries()]
    .map(([principal, totals]): UserSpend => {
      const heavy = totals.cost > 0 && totals.cost > OUTLIER_FACTOR * medianSpend
      return {
        principal,
        requests: totals.requests,
        tokens: totals.tokens,
        cost: totals.cost,
        sessions: byUser.get(principal)?.length ?? 0,
        ratio: medianSpend > 0 ? totals.cost / medianSpend : null,
        heavy,
      }
    })
    .sort((a, b) => b.cost - a.cost || a.principal.localeCompare(b.principal))
  return {
    activeUsers: users.size,
    anonymousRequests,
    totalCost: userList.reduce((sum, user) => Math.round((sum + user.cost) * 1e10) / 1e10, 0),
    medianSpend,
    users: userList,
    heavyUsers: userList.filter((user) => user.heavy),
    flaggedSessions: flaggedSessions.sort((a, b) => b.cost - a.cost),
    sessions: sessions.size,
  }
}
