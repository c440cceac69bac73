import { DLP_HEADER, GUARD_PROMPT, type GuardClassifierKind } from '../servers/guard-config.js'
import { ROUTE_METADATA, ROUTE_MODEL, ROUTE_NAME } from '../servers/route.js'

/** The frameworks a proxy can run in; `node` is plain node:http. */
export type Framework = 'node' | 'express' | 'koa' | 'fastify'

/** A response header that shows a policy ran; `value`, when given, is what it must say. */
export interface Marker {
  readonly header: string
  readonly value?: string
}

export interface Target {
  readonly name: string
  /**
   * `direct` is the upstream itself, the baseline every proxy adds to. A `policy` target is a gateway mount
   * with a response cache or a rate limit added, compared with `direct` and with the same mount without it.
   * A `logs` target is a gateway mount whose request logs are off or go to another store than the default.
   * A guard row (`guard`) is a `policy` target too: the mount with the guard step added. A `baseline` target
   * is a Fastify mount of another build of the package (`BENCH_BASELINE`), read against this one's.
   */
  readonly role: 'direct' | 'bare' | 'gateway' | 'policy' | 'logs' | 'baseline'
  readonly framework: Framework | undefined
  /** The only modes it runs in; every mode when absent. */
  readonly modes?: readonly Mode[]
  /** A header every answer must carry, so that a row cannot measure a path that skipped its policy. */
  readonly marker?: Marker
  /** Answers come from the cache: no measured request may reach the upstream. */
  readonly cached?: boolean
  /** Needs the Redis at `REDIS_URL`; the run warns and goes on without the row when it cannot connect. */
  readonly redis?: boolean
  /** Needs the Postgres at `DATABASE_URL`; left out with a warning, as for Redis, when it cannot connect. */
  readonly postgres?: boolean
  /**
   * Where the mount's request log records go, for the LOGGING table: `off` is the baseline the others are
   * read against. The plain `gateway-fastify` runs on the defaults, logs on in the memory store.
   */
  readonly logs?: LogStoreKind
  /** A dynamic route's row: its compat requests name the route instead of a model, with what its walk reads. */
  readonly route?: RouteRequest
  /**
   * A guard row: the mount with DLP and guardrails, whose classifier is keyword and pattern rules or a Llama
   * Guard model on the upstream. Its requests carry one email address for DLP to find and redact.
   */
  readonly guard?: GuardClassifierKind
}

export interface RouteRequest {
  /** The body's `model`: `dynamic/{name}`. */
  readonly model: string
  /** Headers beside `REQUEST_HEADERS` (the `cf-aig-metadata` the route's condition and keys read). */
  readonly headers: Readonly<Record<string, string>>
}

export type LogStoreKind = 'off' | 'memory' | 'postgres'

// The same JSON request every time is all a cache hit needs, and a limit is decided before the answer's
// shape matters: one mode tells their cost and keeps the default run short.
const POLICY_MODES: readonly Mode[] = ['json']
const CACHE_HIT: Marker = { header: 'cf-aig-cache-status', value: 'HIT' }
const RATE_LIMITED: Marker = { header: 'ratelimit' }
// A stream is where logging costs most (the gateway keeps the streamed body for the record); JSON is the
// plain case. Compat requests log the same record, so they would add runs without telling anything new.
const LOG_MODES: readonly Mode[] = ['json', 'sse']
// A route is walked once per request, before the call, whatever the answer: one compat mode tells its cost.
const ROUTE_MODES: readonly Mode[] = ['compat-json']
// The guard step scans a whole answer in JSON and holds a stream's text back as it scans it: both shapes. With
// rules, compat-sse adds the scan of a translated stream (one run more); the model row's cost is its calls to
// the guard model, the same whatever the answer's shape.
const GUARD_RULES_MODES: readonly Mode[] = ['json', 'sse', 'compat-sse']
const GUARD_MODEL_MODES: readonly Mode[] = ['json', 'sse']
// Set by the gateway only with DLP findings: the requests' email address, found and redacted.
const DLP_FOUND: Marker = { header: DLP_HEADER }

export const TARGETS: readonly Target[] = [
  { name: 'direct', role: 'direct', framework: undefined },
  { name: 'bare-node', role: 'bare', framework: 'node' },
  { name: 'bare-express', role: 'bare', framework: 'express' },
  { name: 'bare-koa', role: 'bare', framework: 'koa' },
  { name: 'bare-fastify', role: 'bare', framework: 'fastify' },
  { name: 'gateway-express', role: 'gateway', framework: 'express' },
  { name: 'gateway-koa', role: 'gateway', framework: 'koa' },
  { name: 'gateway-fastify', role: 'gateway', framework: 'fastify', logs: 'memory' },
  policyTarget('cache', 'memory'),
  policyTarget('cache', 'redis'),
  policyTarget('limit', 'memory'),
  policyTarget('limit', 'redis'),
  logsTarget('off'),
  logsTarget('postgres'),
  // `bench/servers/gateway-fastify-route-memory.ts`: compat-json's request addressed to a dynamic route that
  // ends at the model compat-json names. A compat answer names its model only after a route (or a fallback
  // chain), and a walk off the intended path ends at another model: the marker shows the walk ran as meant.
  {
    name: 'gateway-fastify-route-memory',
    role: 'policy',
    framework: 'fastify',
    modes: ROUTE_MODES,
    marker: { header: 'cf-aig-model', value: ROUTE_MODEL },
    route: {
      model: `dynamic/${ROUTE_NAME}`,
      headers: { 'cf-aig-metadata': JSON.stringify(ROUTE_METADATA) },
    },
  },
  guardTarget('rules'),
  guardTarget('model'),
  ...(process.env.BENCH_BASELINE
    ? [
        baselineTarget('gateway-fastify'),
        baselineTarget('gateway-fastify-logs-off'),
        { ...baselineTarget('gateway-fastify-logs-postgres'), postgres: true },
      ]
    : []),
]

/**
 * `bench/servers/baseline-fastify*.ts`: with `BENCH_BASELINE` set to another checkout of the project, built
 * (`npm run build` there), the same mount as `counterpart` from that build, so a change is measured against
 * its base in one run rather than across two.
 */
function baselineTarget(
  counterpart: 'gateway-fastify' | 'gateway-fastify-logs-off' | 'gateway-fastify-logs-postgres',
): Target {
  return {
    name: counterpart.replace('gateway-', 'baseline-'),
    role: 'baseline',
    framework: 'fastify',
    modes: LOG_MODES,
  }
}

/**
 * The targets a row is read against: its framework's bare proxy (for a mount), its logs-off mount (for a
 * row with logs on) and the baseline build's row of the same mount (with `BENCH_BASELINE`).
 */
export function referencesOf(target: Target): { bare?: string; logsOff?: string; baseline?: string } {
  const { framework, role, logs } = target
  const mounted = role !== 'direct' && role !== 'bare' && framework !== undefined
  const baseline = TARGETS.find((t) => t.role === 'baseline' && counterpartOf(t) === target.name)
  return {
    ...(mounted ? { bare: bareNameFor(framework) } : {}),
    ...(mounted && logs !== undefined && logs !== 'off' ? { logsOff: logsOffNameFor(framework) } : {}),
    ...(baseline === undefined ? {} : { baseline: baseline.name }),
  }
}

/** The row of this build a baseline row is read against. */
export function counterpartOf(baseline: Target): string {
  return baseline.name.replace('baseline-', 'gateway-')
}

/** `bench/servers/gateway-fastify-{policy}-{store}.ts`: the Fastify mount with a cache or a limit added. */
function policyTarget(policy: 'cache' | 'limit', store: 'memory' | 'redis'): Target {
  return {
    name: `gateway-fastify-${policy}-${store}`,
    role: 'policy',
    framework: 'fastify',
    modes: POLICY_MODES,
    marker: policy === 'cache' ? CACHE_HIT : RATE_LIMITED,
    cached: policy === 'cache',
    redis: store === 'redis',
  }
}

/** `bench/servers/gateway-fastify-logs-{store}.ts`: the Fastify mount, request logs off or in Postgres. */
function logsTarget(store: 'off' | 'postgres'): Target {
  return {
    name: `gateway-fastify-logs-${store}`,
    role: 'logs',
    framework: 'fastify',
    modes: LOG_MODES,
    postgres: store === 'postgres',
    logs: store,
  }
}

/**
 * `bench/servers/gateway-fastify-guard-{classifier}.ts`: the Fastify mount with DLP and guardrails. Every
 * answer must carry `cf-aig-dlp`, which the gateway sets only when DLP found something in the request.
 */
function guardTarget(classifier: GuardClassifierKind): Target {
  return {
    name: `gateway-fastify-guard-${classifier}`,
    role: 'policy',
    framework: 'fastify',
    modes: classifier === 'rules' ? GUARD_RULES_MODES : GUARD_MODEL_MODES,
    marker: DLP_FOUND,
    guard: classifier,
  }
}

/** The bare proxy a gateway mount is compared against: the same framework without the gateway. */
export function bareNameFor(framework: Framework): string {
  return `bare-${framework}`
}

/** The gateway a policy target is compared against: the same mount without the policy. */
export function gatewayNameFor(framework: Framework): string {
  return `gateway-${framework}`
}

/** The mount a logging row is compared against: the same framework's gateway with logs off. */
export function logsOffNameFor(framework: Framework): string {
  return `gateway-${framework}-logs-off`
}

/** The modes of `modes` that a target runs in. */
export function modesOf(target: Target, modes: readonly Mode[]): Mode[] {
  return modes.filter((mode) => target.modes?.includes(mode) ?? true)
}

/**
 * `json` and `sse` go to OpenAI through every proxy untouched. `compat-json` and `compat-sse` go to Anthropic:
 * the gateways take an OpenAI request on their compat surface and translate both ways, while `direct` and the
 * bare proxies send Anthropic's own request, so the bare rows are what the same call costs untranslated.
 */
export type Mode = 'json' | 'sse' | 'compat-json' | 'compat-sse'
export const MODES: readonly Mode[] = ['json', 'sse', 'compat-json', 'compat-sse']

export function isCompat(mode: Mode): boolean {
  return mode === 'compat-json' || mode === 'compat-sse'
}

export function isStreaming(mode: Mode): boolean {
  return mode === 'sse' || mode === 'compat-sse'
}

/**
 * What a target answers in a mode: OpenAI's answer relayed, Anthropic's relayed, Anthropic's translated
 * into OpenAI's shape by the gateway, or OpenAI's through the guard step (`guarded`: a stream's text may come
 * in other events than the upstream's, as the step releases it, but whole).
 */
export type Answer = 'openai' | 'anthropic' | 'translated' | 'guarded'

export function expectedAnswer(target: Target, mode: Mode): Answer {
  if (!isCompat(mode)) return target.guard === undefined ? 'openai' : 'guarded'
  return target.role === 'direct' || target.role === 'bare' ? 'anthropic' : 'translated'
}

/** The path the load generator requests. The bare proxies map `/ai/openai/*` to the upstream's `/v1/*`. */
export function requestPath(target: Target, mode: Mode): string {
  switch (expectedAnswer(target, mode)) {
    case 'openai':
    case 'guarded':
      return target.role === 'direct' ? '/v1/chat/completions' : '/ai/openai/chat/completions'
    case 'anthropic':
      return target.role === 'direct' ? '/v1/messages' : '/ai/openai/messages'
    case 'translated':
      return '/ai/compat/chat/completions'
  }
}

const MESSAGES = [{ role: 'user', content: 'Say hello to the benchmark.' }]
const GUARD_MESSAGES = [{ role: 'user', content: GUARD_PROMPT }]
const MAX_TOKENS = 256

/** The request body per target and mode; the upstream streams when it sees `"stream":true`. */
export function requestBody(target: Target, mode: Mode): string {
  const stream = isStreaming(mode) ? { stream: true } : {}
  const messages = target.guard === undefined ? MESSAGES : GUARD_MESSAGES
  switch (expectedAnswer(target, mode)) {
    case 'openai':
    case 'guarded':
      return JSON.stringify({ model: 'gpt-4o-mini', ...stream, messages })
    case 'anthropic':
      return JSON.stringify({
        model: 'claude-sonnet-4-5',
        max_tokens: MAX_TOKENS,
        ...stream,
        messages,
      })
    case 'translated':
      return JSON.stringify({
        model: target.route?.model ?? 'anthropic/claude-sonnet-4-5',
        messages,
        max_tokens: MAX_TOKENS,
        ...stream,
      })
  }
}

export const REQUEST_HEADERS = { 'content-type': 'application/json' } as const

/** The request headers per target; `undefined` for `REQUEST_HEADERS` alone. */
export function requestHeaders(target: Target): Readonly<Record<string, string>> | undefined {
  return target.route === undefined ? undefined : { ...REQUEST_HEADERS, ...target.route.headers }
}
