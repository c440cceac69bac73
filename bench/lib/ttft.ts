import { Client } from 'undici'
import { EVENT_GAP_PARAM, OPENAI_STREAM_TEXT } from '../servers/answer.js'
import { MIN_HOLD_BACK_CHARS } from '../servers/guard-config.js'
import { CLIENT_TIMEOUTS, type Endpoint, percentile, postRequest } from './measure.js'
import { REQUEST_HEADERS, type Target } from './targets.js'

// The TTFT part: what holding a stream back before committing it to the client costs the time to its first
// token. The upstream sends the `sse` answer's events a few ms apart, so the first token comes well before
// the end; the gateway is asked per request (`cf-aig-stream-commit`, `cf-aig-stream-hold`) when to commit,
// so one server serves every commit point, side by side with `direct` and the bare proxy of its framework.
// The guard row adds the same mount with DLP and guardrails, at the default commit point: what their
// hold-back costs the first token on top of it.

/** When the gateway commits a stream to the client (`streams.commit`, `cf-aig-stream-commit`). */
export type Commit = 'first-byte' | 'first-token' | 'complete'

export interface TtftPlan {
  /** Requests timed per row. */
  readonly requests: number
  /** How far apart the upstream sends a stream's events (`?event-gap-ms=`). */
  readonly gapMs: number
  /** The hold of the `first-token` row that has one (`cf-aig-stream-hold`), whole ms. */
  readonly holdMs: number
}

/** One row: a target and, for a gateway mount, the commit point its requests ask for. */
export interface TtftVariant {
  readonly target: Target
  /** `undefined` for `direct` and the bare proxy, which hold nothing back. */
  readonly commit: Commit | undefined
  /** `cf-aig-stream-hold` in ms; 0 sends no such header. */
  readonly holdMs: number
  /** The request timed: the upstream spaces its events. */
  readonly endpoint: Endpoint
  /** The same request with the events sent at once: the warm-up, many times faster. */
  readonly unspaced: Endpoint
}

export interface Spread {
  readonly p50Ms: number
  readonly p99Ms: number
}

export interface TtftRow {
  readonly target: Target
  readonly commit: Commit | undefined
  readonly holdMs: number
  /** From sending the request to the first body byte, whatever it carries. */
  readonly firstByte: Spread
  /** From sending the request to the first body byte that carries answer content. */
  readonly firstToken: Spread
  /** From sending the request to the last body byte. */
  readonly end: Spread
  /** Non-200 answers and streams that carried no answer content; timed all the same. */
  readonly failures: number
  /** Answers timed otherwise than their commit point gives: see `expectation`. */
  readonly unexpected: number
}

export interface TtftResult {
  readonly plan: TtftPlan
  readonly rows: readonly TtftRow[]
  /** Cores other processes kept busy over the timed requests, when that can be measured. */
  readonly foreignCores: number | undefined
}

/** A Chat Completions chunk with text in it: the first one names the role with empty content. */
const ANSWER_CONTENT = /"content":\s*"(?!")/

/**
 * The rows of one target: one for `direct` or a bare proxy, one per commit point for a gateway mount, and
 * for the guard row one at the default commit point, `first-token`, read against the mount's own.
 */
export function ttftVariants(target: Target, base: Endpoint, plan: TtftPlan): TtftVariant[] {
  // The guard row's expectation (its first token comes with the end) holds only while DLP's window is longer
  // than the whole streamed text.
  if (target.guard !== undefined && OPENAI_STREAM_TEXT.length >= MIN_HOLD_BACK_CHARS) {
    throw new Error('the streamed answer outgrew the DLP hold-back: the guard row needs another expectation')
  }
  const spaced = `${base.path}?${EVENT_GAP_PARAM}=${plan.gapMs}`
  const commits: [Commit | undefined, number][] =
    target.guard !== undefined
      ? [['first-token', 0]]
      : target.role === 'gateway'
        ? [
            ['first-byte', 0],
            ['first-token', 0],
            ['first-token', plan.holdMs],
            ['complete', 0],
          ]
        : [[undefined, 0]]
  return commits.map(([commit, holdMs]) => {
    const headers = commitHeaders(commit, holdMs)
    return {
      target,
      commit,
      holdMs,
      endpoint: { ...base, path: spaced, headers },
      unspaced: { ...base, headers },
    }
  })
}

function commitHeaders(commit: Commit | undefined, holdMs: number): Readonly<Record<string, string>> {
  if (commit === undefined) return REQUEST_HEADERS
  const hold = holdMs > 0 ? { 'cf-aig-stream-hold': String(holdMs) } : {}
  return { ...REQUEST_HEADERS, 'cf-aig-stream-commit': commit, ...hold }
}

/** `first-token +20ms` for a hold, `-` for a row that is not a gateway's. */
export function commitLabel({ commit, holdMs }: Pick<TtftRow, 'commit' | 'holdMs'>): string {
  if (commit === undefined) return '-'
  return holdMs > 0 ? `${commit} +${holdMs}ms` : commit
}

export interface StreamTiming {
  readonly status: number
  readonly firstByteMs: number
  /** `undefined` when no answer content came. */
  readonly firstTokenMs: number | undefined
  readonly endMs: number
}

/**
 * What each row's answers must show, so that a row cannot measure another commit point than its own (a
 * header the gateway did not apply) or a stream the upstream did not space (a query a proxy dropped). Half
 * a gap tells "in the same write" from "an event later". The guard row's text is held by DLP until the
 * stream ends (it is shorter than the window), which no other row's is: its first token comes with the end.
 */
export function expectation(row: Pick<TtftRow, 'target' | 'commit' | 'holdMs'>, gapMs: number) {
  const margin = gapMs / 2
  const { commit, holdMs } = row
  if (row.target.guard !== undefined) {
    return {
      text:
        `the first token within ${margin} ms of the last byte (the streamed text, ` +
        `${OPENAI_STREAM_TEXT.length} characters, held back by DLP until the end)`,
      holds: (t: StreamTiming) => t.endMs - (t.firstTokenMs ?? t.endMs) < margin,
    }
  }
  if (commit === undefined || commit === 'first-byte') {
    return {
      text: `the first byte at least ${margin} ms before the first token (the role chunk, then the answer)`,
      holds: (t: StreamTiming) => (t.firstTokenMs ?? t.endMs) - t.firstByteMs >= margin,
    }
  }
  if (commit === 'complete') {
    return {
      text: `the first byte within ${margin} ms of the last (the whole answer at once)`,
      holds: (t: StreamTiming) => t.endMs - t.firstByteMs < margin,
    }
  }
  if (holdMs > 0) {
    return {
      text: `the first token ${holdMs} ms or more after sending (held that long once the answer began)`,
      holds: (t: StreamTiming) => (t.firstTokenMs ?? t.endMs) >= holdMs,
    }
  }
  return {
    text: `the first byte within ${margin} ms of the first token (the role chunk held until the answer)`,
    holds: (t: StreamTiming) => (t.firstTokenMs ?? t.endMs) - t.firstByteMs < margin,
  }
}

/**
 * `plan.requests` requests per row, one at a time, the rows in turn (each on its own keep-alive connection),
 * so that a slow stretch of the machine falls on every row alike. The first `settleTurns` turns are not
 * timed: new connections, and the servers' own to the upstream.
 */
export async function measureTtft(
  variants: readonly TtftVariant[],
  plan: TtftPlan,
  settleTurns: number,
): Promise<TtftRow[]> {
  const clients = variants.map((v) => new Client(v.endpoint.origin, CLIENT_TIMEOUTS))
  const timings = variants.map((): StreamTiming[] => [])
  try {
    for (let turn = -settleTurns; turn < plan.requests; turn++) {
      for (const [i, variant] of variants.entries()) {
        const timing = await timeStream(clients[i]!, variant.endpoint)
        if (turn >= 0) timings[i]!.push(timing)
      }
    }
  } finally {
    await Promise.all(clients.map((client) => client.close()))
  }
  return variants.map((variant, i) => rowOf(variant, timings[i]!, plan.gapMs))
}

/** One request, timed from sending to its first body byte, its first byte of answer content and its last. */
async function timeStream(client: Client, endpoint: Endpoint): Promise<StreamTiming> {
  const start = performance.now()
  const response = await client.request(postRequest(endpoint))
  let firstByteMs: number | undefined
  let firstTokenMs: number | undefined
  let seen = ''
  for await (const chunk of response.body) {
    const at = performance.now() - start
    firstByteMs ??= at
    if (firstTokenMs !== undefined) continue
    // Everything so far: an event cut between two chunks is still found.
    seen += (chunk as Buffer).toString('latin1')
    if (ANSWER_CONTENT.test(seen)) firstTokenMs = at
  }
  const endMs = performance.now() - start
  return { status: response.statusCode, firstByteMs: firstByteMs ?? endMs, firstTokenMs, endMs }
}

function rowOf(variant: TtftVariant, timings: readonly StreamTiming[], gapMs: number): TtftRow {
  const { target, commit, holdMs } = variant
  const expected = expectation(variant, gapMs)
  const spread = (of: (t: StreamTiming) => number): Spread => {
    const sorted = Float64Array.from(timings, of).sort()
    return { p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99) }
  }
  return {
    target,
    commit,
    holdMs,
    firstByte: spread((t) => t.firstByteMs),
    firstToken: spread((t) => t.firstTokenMs ?? t.endMs),
    end: spread((t) => t.endMs),
    failures: timings.filter((t) => t.status !== 200 || t.firstTokenMs === undefined).length,
    unexpected: timings.filter((t) => !expected.holds(t)).length,
  }
}
