import { Pool } from 'undici'
import { CLIENT_TIMEOUTS, type Endpoint, percentile, postRequest } from './measure.js'

// Load at a fixed rate, open loop: requests go out on a schedule whatever the answers do, so a server that
// falls behind shows it as latency instead of quietly being sent less. autocannon's `overallRate` is not
// that: each of its connections gets a quota per second, refilled by a timer that every connection set at
// the same moment, and spends it back to back; every second starts with a closed-loop burst at full
// concurrency (16 connections at 500 req/s gave a p50 of 7 ms where one connection at 2000 req/s gave
// under 1), and its latencies are whole milliseconds, too coarse for a 1 ms threshold.

/** How often the schedule is checked: each tick sends every request that has come due since the last. */
const TICK_MS = 1
/** Requests waiting for an answer, per connection, past which the server is taken to have fallen behind. */
const OVERLOAD_PER_CONNECTION = 4

export interface RateRun {
  /** Requests per second asked for. */
  readonly rate: number
  /** Requests timed (those sent after the settling part of the run). */
  readonly timed: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** Non-2xx answers and errors among every request sent; each is timed as never answered. */
  readonly failures: number
  /**
   * The run was cut short: more requests waited for answers than the connections could carry. Its p99 is
   * then `Infinity`: it is above any threshold.
   */
  readonly overloaded: boolean
}

/** A pool of keep-alive connections to one server, reused from one rate to the next. */
export interface FixedRateLoad {
  /**
   * Sends `rate` requests a second for `settleSeconds + seconds`, timing those sent after the first
   * `settleSeconds` (new connections, the backlog of the previous rate), each from the moment it is sent to
   * its last body byte, then waits for every answer. Requests take the endpoints in turn.
   */
  run(rate: number, seconds: number, settleSeconds: number): Promise<RateRun>
  close(): Promise<void>
}

export function fixedRateLoad(endpoints: readonly Endpoint[], connections: number): FixedRateLoad {
  const origin = endpoints[0]!.origin
  const pool = new Pool(origin, { ...CLIENT_TIMEOUTS, connections, pipelining: 1 })
  const requests = endpoints.map(postRequest)
  const maxOutstanding = connections * OVERLOAD_PER_CONNECTION
  return {
    run: (rate, seconds, settleSeconds) =>
      runAtRate(pool, requests, maxOutstanding, rate, seconds, settleSeconds),
    close: () => pool.close(),
  }
}

async function runAtRate(
  pool: Pool,
  requests: readonly ReturnType<typeof postRequest>[],
  maxOutstanding: number,
  rate: number,
  seconds: number,
  settleSeconds: number,
): Promise<RateRun> {
  const untimed = Math.round(rate * settleSeconds)
  const total = untimed + Math.round(rate * seconds)
  const samples = new Float64Array(total - untimed).fill(Number.POSITIVE_INFINITY)
  let sent = 0
  let outstanding = 0
  let failures = 0
  let overloaded = false

  const send = async (index: number) => {
    const sentAt = performance.now()
    try {
      const response = await pool.request(requests[index % requests.length]!)
      await response.body.arrayBuffer()
      if (response.statusCode < 200 || response.statusCode > 299) failures++
      else if (index >= untimed) samples[index - untimed] = performance.now() - sentAt
    } catch {
      failures++
    }
  }

  const startedAt = performance.now()
  await new Promise<void>((resolve) => {
    let scheduled = true
    const settle = () => {
      if (!scheduled && outstanding === 0) resolve()
    }
    const timer = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - startedAt) * rate) / 1000))
      while (sent < due && !overloaded) {
        if (outstanding >= maxOutstanding) overloaded = true
        else {
          outstanding++
          void send(sent++).finally(() => {
            outstanding--
            settle()
          })
        }
      }
      if (sent === total || overloaded) {
        clearInterval(timer)
        scheduled = false
        settle()
      }
    }, TICK_MS)
  })

  const timed = Math.max(0, sent - untimed)
  const sorted = samples.subarray(0, timed).sort()
  return {
    rate,
    timed,
    p50Ms: overloaded ? Number.POSITIVE_INFINITY : percentile(sorted, 0.5),
    p99Ms: overloaded ? Number.POSITIVE_INFINITY : percentile(sorted, 0.99),
    failures,
    overloaded,
  }
}
