import autocannon from 'autocannon'
import { Client, type Dispatcher, Pool } from 'undici'
import { ANSWER_TEXT, ANTHROPIC_DELTA_COUNT, OPENAI_STREAM_TEXT } from '../servers/answer.js'
import {
  type Answer,
  expectedAnswer,
  isStreaming,
  type Marker,
  type Mode,
  REQUEST_HEADERS,
  requestBody,
  requestHeaders,
  requestPath,
  type Target,
} from './targets.js'

export interface Endpoint {
  readonly origin: string
  readonly path: string
  readonly mode: Mode
  readonly body: string
  readonly answer: Answer
  /** A header every answer must carry: proof that the policy under test ran. */
  readonly marker: Marker | undefined
  /**
   * The request's headers, when not `REQUEST_HEADERS` alone (the TTFT part's commit headers, a dynamic
   * route's metadata).
   */
  readonly headers?: Readonly<Record<string, string>>
}

/** What a target is asked in a mode, at a server's origin. */
export function endpointOf(target: Target, mode: Mode, origin: string): Endpoint {
  const headers = requestHeaders(target)
  return {
    origin,
    path: requestPath(target, mode),
    mode,
    body: requestBody(target, mode),
    answer: expectedAnswer(target, mode),
    marker: target.marker,
    ...(headers === undefined ? {} : { headers }),
  }
}

export interface LatencyResult {
  p50Ms: number
  p99Ms: number
  failures: number
  /** Answers without the endpoint's marker header (a cache miss, a skipped limit). */
  unmarked: number
}

export interface ThroughputResult {
  requestsPerSecond: number
  /** Requests completed in the run. */
  requests: number
  /**
   * CPU time the server under test (and its helpers) used per request meanwhile, in microseconds: what the
   * machine's noise barely moves. `undefined` for `direct` or without /proc.
   */
  cpuUsPerRequest?: number | undefined
  /** The part of `cpuUsPerRequest` that the server's helper processes (its local Redis, Postgres) used. */
  helperCpuUsPerRequest?: number | undefined
  non2xx: number
  errors: number
  timeouts: number
}

const SSE_EVENTS_EXPECTED = 21
const ANTHROPIC_END = 'event: message_stop\ndata: {"type":"message_stop"}\n\n'
// A hung proxy should fail the run within seconds, not after undici's five-minute defaults.
export const CLIENT_TIMEOUTS = { headersTimeout: 10_000, bodyTimeout: 10_000 }

/**
 * Fails unless the endpoint answers the mode's response in full: a proxy that drops or cuts the body would
 * otherwise look fast. With a marker, the second answer must carry it: the first fills a cache.
 */
export async function checkAnswer(endpoint: Endpoint): Promise<void> {
  const client = new Client(endpoint.origin, CLIENT_TIMEOUTS)
  try {
    for (let i = 0; i < (endpoint.marker ? 2 : 1); i++) {
      const response = await client.request(postRequest(endpoint))
      const text = await response.body.text()
      const problem =
        answerProblem(endpoint, response.statusCode, text) ??
        (i === 0 ? undefined : markerProblem(endpoint.marker, response.headers))
      if (problem !== undefined) {
        throw new Error(
          `${endpoint.origin}${endpoint.path} (${endpoint.mode}): ${problem}: ${text.slice(0, 300)}`,
        )
      }
    }
  } finally {
    await client.close()
  }
}

type ResponseHeaders = Dispatcher.ResponseData['headers']

/** Why an answer does not carry the marker, or `undefined` when it does (or there is none). */
export function markerProblem(marker: Marker | undefined, headers: ResponseHeaders): string | undefined {
  if (marker === undefined) return undefined
  const value = headers[marker.header]
  if (value === undefined) return `no ${marker.header} header`
  if (marker.value !== undefined && value !== marker.value) return `${marker.header}: ${String(value)}`
  return undefined
}

function answerProblem(endpoint: Endpoint, status: number, text: string): string | undefined {
  if (status !== 200) return `status ${status}`
  const streaming = isStreaming(endpoint.mode)
  switch (endpoint.answer) {
    case 'openai':
      return streaming ? openaiStreamProblem(text) : openaiJsonProblem(text)
    case 'anthropic':
      return streaming ? anthropicStreamProblem(text) : anthropicJsonProblem(text)
    case 'translated':
      return streaming ? wholeStreamProblem(text, ANSWER_TEXT) : wholeJsonProblem(text)
    // The guard step releases a stream's text as it has scanned it, in events of its own making: the text
    // must come whole, and unmasked (nothing in it is a finding), whatever events carry it.
    case 'guarded':
      return streaming ? wholeStreamProblem(text, OPENAI_STREAM_TEXT) : wholeJsonProblem(text)
  }
}

function openaiJsonProblem(text: string): string | undefined {
  return text.includes('"object":"chat.completion"') ? undefined : 'not a chat.completion'
}

function openaiStreamProblem(text: string): string | undefined {
  const events = text.split('\n\n').filter((event) => event.startsWith('data: ')).length
  if (events !== SSE_EVENTS_EXPECTED) return `${events} events instead of ${SSE_EVENTS_EXPECTED}`
  return text.endsWith('data: [DONE]\n\n') ? undefined : 'the stream does not end with [DONE]'
}

function anthropicJsonProblem(text: string): string | undefined {
  return text.includes('"type":"message"') ? undefined : 'not an Anthropic message'
}

function anthropicStreamProblem(text: string): string | undefined {
  const deltas = text.split('\n\n').filter((event) => event.startsWith('event: content_block_delta\n')).length
  if (deltas !== ANTHROPIC_DELTA_COUNT) return `${deltas} text deltas instead of ${ANTHROPIC_DELTA_COUNT}`
  return text.endsWith(ANTHROPIC_END) ? undefined : 'the stream does not end with message_stop'
}

/** The gateway's translation (or guard) must keep the text whole, not merely produce the right shape. */
function wholeJsonProblem(text: string): string | undefined {
  const problem = openaiJsonProblem(text)
  if (problem !== undefined) return problem
  const completion = parseJson(text) as { choices?: { message?: { content?: unknown } }[] } | undefined
  const content = completion?.choices?.[0]?.message?.content
  return content === ANSWER_TEXT ? undefined : 'the content is not the upstream text'
}

/** `chat.completion.chunk` events ending in `[DONE]` whose contents make `expected`, however they are cut. */
function wholeStreamProblem(text: string, expected: string): string | undefined {
  if (!text.endsWith('data: [DONE]\n\n')) return 'the stream does not end with [DONE]'
  const events = text.split('\n\n').filter((event) => event.startsWith('data: ') && event !== 'data: [DONE]')
  let content = ''
  for (const event of events) {
    const chunk = parseJson(event.slice('data: '.length)) as
      | { object?: unknown; choices?: { delta?: { content?: unknown } }[] }
      | undefined
    if (chunk?.object !== 'chat.completion.chunk') return `not a chat.completion.chunk: ${event}`
    const piece = chunk.choices?.[0]?.delta?.content
    if (typeof piece === 'string') content += piece
  }
  return content === expected ? undefined : `the deltas make '${content}', not the upstream text`
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** Gets the JIT and the connection pools of every process on the path into their steady state. */
export function warmUp(endpoint: Endpoint, requests: number, concurrency: number): Promise<void> {
  return sendRequests(endpoint, requests, concurrency, false)
}

/**
 * `requests` requests, `concurrency` at a time, each read to its end; with `requireOk`, any answer but a 200
 * fails it (a failed request runs less code than the one measured).
 */
export async function sendRequests(
  endpoint: Endpoint,
  requests: number,
  concurrency: number,
  requireOk: boolean,
): Promise<void> {
  const pool = new Pool(endpoint.origin, { ...CLIENT_TIMEOUTS, connections: concurrency })
  let remaining = requests
  const loop = async () => {
    while (remaining-- > 0) {
      const response = await pool.request(postRequest(endpoint))
      await response.body.arrayBuffer()
      if (requireOk && response.statusCode !== 200)
        throw new Error(`${endpoint.origin}${endpoint.path} answered ${response.statusCode}`)
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
  let unmarked = 0
  try {
    for (let i = 0; i < requests; i++) {
      const start = performance.now()
      const response = await client.request(postRequest(endpoint))
      await response.body.arrayBuffer()
      samples[i] = performance.now() - start
      if (response.statusCode !== 200) failures++
      // After the clock stopped: the check must not count as the server's time.
      if (markerProblem(endpoint.marker, response.headers) !== undefined) unmarked++
    }
  } finally {
    await client.close()
  }
  samples.sort()
  return { p50Ms: percentile(samples, 0.5), p99Ms: percentile(samples, 0.99), failures, unmarked }
}

export function percentile(sorted: Float64Array, fraction: number): number {
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
    headers: endpoint.headers ?? REQUEST_HEADERS,
    body: endpoint.body,
    connections,
    duration: durationSeconds,
  })
  return {
    requestsPerSecond: result.requests.average,
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  }
}

export function postRequest(endpoint: Endpoint) {
  const headers = endpoint.headers ?? REQUEST_HEADERS
  return { method: 'POST', path: endpoint.path, headers, body: endpoint.body } as const
}
