import autocannon from 'autocannon'
import { Client, Pool } from 'undici'
import { type Mode, REQUEST_HEADERS } from './targets.js'

export interface Endpoint {
  readonly origin: string
  readonly path: string
  readonly mode: Mode
  readonly body: string
}

export interface LatencyResult {
  p50Ms: number
  p99Ms: number
  failures: number
}

export interface ThroughputResult {
  requestsPerSecond: number
  non2xx: number
  errors: number
  timeouts: number
}

const SSE_EVENTS_EXPECTED = 21
// A hung proxy should fail the run within seconds, not after undici's five-minute defaults.
const CLIENT_TIMEOUTS = { headersTimeout: 10_000, bodyTimeout: 10_000 }

/**
 * Fails unless the endpoint answers the mode's response in full: a proxy that drops or cuts the body would
 * otherwise look fast.
 */
export async function checkAnswer(endpoint: Endpoint): Promise<void> {
  const client = new Client(endpoint.origin, CLIENT_TIMEOUTS)
  try {
    const response = await client.request(postRequest(endpoint))
    const text = await response.body.text()
    const problem = answerProblem(endpoint.mode, response.statusCode, text)
    if (problem !== undefined) {
      throw new Error(
        `${endpoint.origin}${endpoint.path} (${endpoint.mode}): ${problem}: ${text.slice(0, 300)}`,
      )
    }
  } finally {
    await client.close()
  }
}

function answerProblem(mode: Mode, status: number, text: string): string | undefined {
  if (status !== 200) return `status ${status}`
  if (mode === 'json') {
    return text.includes('"object":"chat.completion"') ? undefined : 'not a chat.completion'
  }
  const events = text.split('\n\n').filter((event) => event.startsWith('data: ')).length
  if (events !== SSE_EVENTS_EXPECTED) return `${events} events instead of ${SSE_EVENTS_EXPECTED}`
  return text.endsWith('data: [DONE]\n\n') ? undefined : 'the stream does not end with [DONE]'
}

/** Gets the JIT and the connection pools of every process on the path into their steady state. */
export async function warmUp(endpoint: Endpoint, requests: number, concurrency: number): Promise<void> {
  const pool = new Pool(endpoint.origin, { ...CLIENT_TIMEOUTS, connections: concurrency })
  let remaining = requests
  const loop = async () => {
    while (remaining-- > 0) {
      const response = await pool.request(postRequest(endpoint))
      await response.body.arrayBuffer()
    }
  }
  try {
    await Promise.all(Array.from({ length: concurrency }, loop))
  } finally {
    await pool.close()
  }
}

/** One request at a time over one keep-alive connection, each timed from sending to the last body byte. */
export async function measureLatency(endpoint: Endpoint, requests: number): Promise<LatencyResult> {
  const client = new Client(endpoint.origin, CLIENT_TIMEOUTS)
  const samples = new Float64Array(requests)
  let failures = 0
  try {
    for (let i = 0; i < requests; i++) {
      const start = performance.now()
      const response = await client.request(postRequest(endpoint))
      await response.body.arrayBuffer()
      samples[i] = performance.now() - start
      if (response.statusCode !== 200) failures++
    }
  } finally {
    await client.close()
  }
  samples.sort()
  return { p50Ms: percentile(samples, 0.5), p99Ms: percentile(samples, 0.99), failures }
}

function percentile(sorted: Float64Array, fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? Number.NaN
}

/** Closed-loop load: `connections` clients, each sending its next request as soon as the last one ends. */
export async function measureThroughput(
  endpoint: Endpoint,
  connections: number,
  durationSeconds: number,
): Promise<ThroughputResult> {
  const result = await autocannon({
    url: `${endpoint.origin}${endpoint.path}`,
    method: 'POST',
    headers: REQUEST_HEADERS,
    body: endpoint.body,
    connections,
    duration: durationSeconds,
  })
  return {
    requestsPerSecond: result.requests.average,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  }
}

function postRequest(endpoint: Endpoint) {
  return { method: 'POST', path: endpoint.path, headers: REQUEST_HEADERS, body: endpoint.body } as const
}
