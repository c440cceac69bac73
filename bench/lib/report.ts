import { BUSY_CORES } from './machine.js'
import type { LatencyResult, ThroughputResult } from './measure.js'
import { bareNameFor, gatewayNameFor, isCompat, type Mode, type Target } from './targets.js'

export interface Measurement {
  readonly target: Target
  readonly mode: Mode
  readonly latency: LatencyResult
  readonly throughput: ThroughputResult
  /** Cores other processes on the machine kept busy meanwhile, when that can be measured. */
  readonly foreignCores: number | undefined
  /** Answers the upstream gave from the warm-up to the end of the throughput run (all of them, for `direct`). */
  readonly upstreamAnswers: number
  /** Store calls the gateway saw fail or time out meanwhile, each ridden over by its failure policy. */
  readonly storeErrors: number
}

/** How a proxy row compares with the baselines; `undefined` where a baseline was not measured. */
export interface Comparison {
  addedP50OverDirectMs: number | undefined
  addedP50OverBareMs: number | undefined
  shareOfBareNode: number | undefined
  shareOfBare: number | undefined
  /** For a policy target: p50 added over the same mount without the policy, and throughput as a share of it. */
  addedP50OverGatewayMs: number | undefined
  shareOfGateway: number | undefined
}

/** `info` marks a figure reported for reading, with no threshold to pass. */
export type Verdict = 'PASS' | 'MISS' | 'info' | 'n/a'

export interface AimCheck {
  readonly aim: string
  readonly subject: string
  readonly value: string
  readonly verdict: Verdict
}

type Lookup = (mode: Mode, name: string) => Measurement | undefined

function lookupIn(measurements: readonly Measurement[]): Lookup {
  return (mode, name) => measurements.find((m) => m.mode === mode && m.target.name === name)
}

export function compare(measurement: Measurement, all: readonly Measurement[]): Comparison {
  const find = lookupIn(all)
  const { mode, target } = measurement
  const direct = find(mode, 'direct')
  const bareNode = find(mode, 'bare-node')
  // Only a gateway has its "own framework's bare proxy"; for a bare proxy that would be itself.
  const bare =
    target.role === 'gateway' && target.framework ? find(mode, bareNameFor(target.framework)) : undefined
  const gateway =
    target.role === 'policy' && target.framework ? find(mode, gatewayNameFor(target.framework)) : undefined
  const p50 = measurement.latency.p50Ms
  const rps = measurement.throughput.requestsPerSecond
  return {
    addedP50OverDirectMs: target.role === 'direct' || !direct ? undefined : p50 - direct.latency.p50Ms,
    addedP50OverBareMs: bare ? p50 - bare.latency.p50Ms : undefined,
    shareOfBareNode:
      bareNode && target.role !== 'direct' ? rps / bareNode.throughput.requestsPerSecond : undefined,
    shareOfBare: bare ? rps / bare.throughput.requestsPerSecond : undefined,
    addedP50OverGatewayMs: gateway ? p50 - gateway.latency.p50Ms : undefined,
    shareOfGateway: gateway ? rps / gateway.throughput.requestsPerSecond : undefined,
  }
}

const COLUMNS = [
  'target',
  'p50 ms',
  'p99 ms',
  'req/s',
  '+p50 direct',
  '+p50 bare-fw',
  '% bare-node',
  '% bare-fw',
]

function isDisturbed(m: Measurement): boolean {
  return m.foreignCores !== undefined && m.foreignCores > BUSY_CORES
}

export function formatModeTable(mode: Mode, all: readonly Measurement[]): string {
  const ofMode = all.filter((m) => m.mode === mode)
  const rows = ofMode.map((m) => {
    const c = compare(m, all)
    return [
      isDisturbed(m) ? `${m.target.name} *` : m.target.name,
      m.latency.p50Ms.toFixed(3),
      m.latency.p99Ms.toFixed(3),
      m.throughput.requestsPerSecond.toFixed(0),
      signedMs(c.addedP50OverDirectMs),
      signedMs(c.addedP50OverBareMs),
      percent(c.shareOfBareNode),
      percent(c.shareOfBare),
    ]
  })
  const disturbed = ofMode.filter(isDisturbed)
  const footnote = disturbed.length
    ? `\n* other processes kept ${disturbed.map((m) => m.foreignCores!.toFixed(2)).join(', ')} cores busy meanwhile`
    : ''
  return `${mode.toUpperCase()}\n${formatTable(COLUMNS, rows)}${footnote}`
}

const POLICY_COLUMNS = [
  'target',
  'p50 ms',
  'req/s',
  'direct p50',
  '+p50 direct',
  'direct req/s',
  '% direct',
  '+p50 gateway-fw',
  '% gateway-fw',
]

/**
 * Cache hits and limits side by side with what they are weighed against: `direct` (a hit should beat the
 * provider) and the same gateway mount without the policy (what the policy costs, or saves).
 */
export function formatPolicyTable(all: readonly Measurement[]): string | undefined {
  const policies = all.filter((m) => m.target.role === 'policy')
  if (policies.length === 0) return undefined
  const rows = policies.map((m) => {
    const c = compare(m, all)
    const direct = lookupIn(all)(m.mode, 'direct')
    return [
      `${isDisturbed(m) ? `${m.target.name} *` : m.target.name} (${m.mode})`,
      m.latency.p50Ms.toFixed(3),
      m.throughput.requestsPerSecond.toFixed(0),
      direct ? direct.latency.p50Ms.toFixed(3) : '-',
      signedMs(c.addedP50OverDirectMs),
      direct ? direct.throughput.requestsPerSecond.toFixed(0) : '-',
      percent(direct ? m.throughput.requestsPerSecond / direct.throughput.requestsPerSecond : undefined),
      signedMs(c.addedP50OverGatewayMs),
      percent(c.shareOfGateway),
    ]
  })
  const disturbed = policies.filter(isDisturbed)
  const footnote = disturbed.length
    ? `\n* other processes kept ${disturbed.map((m) => m.foreignCores!.toFixed(2)).join(', ')} cores busy meanwhile`
    : ''
  return `CACHE AND LIMITS\n${formatTable(POLICY_COLUMNS, rows)}${footnote}`
}

/** The first `textColumns` columns are left-aligned, the numbers after them right-aligned. */
function formatTable(header: readonly string[], rows: readonly string[][], textColumns = 1): string {
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]?.length ?? 0)))
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i < textColumns ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd()
  const rule = widths.map((w) => '-'.repeat(w)).join('  ')
  return [line(header), rule, ...rows.map(line)].join('\n')
}

function signedMs(value: number | undefined): string {
  if (value === undefined) return '-'
  return `${value >= 0 ? '+' : ''}${value.toFixed(3)}`
}

function percent(share: number | undefined): string {
  return share === undefined ? '-' : `${(share * 100).toFixed(1)}%`
}

/** Checks every aim for every gateway mount and mode measured; a missing baseline gives `n/a`. */
export function checkAims(all: readonly Measurement[], modes: readonly Mode[]): AimCheck[] {
  const gateways = uniqueGatewayTargets(all)
  const checks: AimCheck[] = []
  for (const mode of modes) {
    for (const target of gateways) {
      const measurement = lookupIn(all)(mode, target.name)
      if (!measurement) continue
      const comparison = compare(measurement, all)
      checks.push(...(isCompat(mode) ? compatAims : modeAims)(measurement, comparison))
    }
  }
  if (modes.includes('json') && modes.includes('sse')) {
    for (const target of gateways) checks.push(streamingAim(target, all))
  }
  for (const m of all) if (m.target.role === 'policy') checks.push(...policyAims(m, all))
  return checks
}

/**
 * A cache hit must beat the provider itself, here a fake one that answers precomputed bytes at once: a real
 * provider takes far longer. A limit's cost is reported against the same mount without it, as `info`.
 */
function policyAims(m: Measurement, all: readonly Measurement[]): AimCheck[] {
  const subject = `${m.target.name} ${m.mode}`
  const c = compare(m, all)
  if (m.target.cached) {
    const direct = lookupIn(all)(m.mode, 'direct')
    const share = direct ? m.throughput.requestsPerSecond / direct.throughput.requestsPerSecond : undefined
    return [
      atMost('cache hit: p50 <= direct', subject, c.addedP50OverDirectMs, 0, 'ms'),
      atLeast('cache hit: throughput >= direct', subject, share, 1),
    ]
  }
  const gateway = gatewayNameFor(m.target.framework!)
  return [
    addedMs(`limit step: p50 over ${gateway}`, subject, c.addedP50OverGatewayMs),
    shareOf(`limit step: throughput share of ${gateway}`, subject, c.shareOfGateway),
  ]
}

function modeAims(m: Measurement, c: Comparison): AimCheck[] {
  const subject = `${m.target.name} ${m.mode}`
  const checks = [
    atMost('added p50 over direct <= 0.35 ms', subject, c.addedP50OverDirectMs, 0.35, 'ms'),
    atLeast('throughput >= 60% of bare-node', subject, c.shareOfBareNode, 0.6),
    atLeast(`throughput >= 85% of bare-${m.target.framework}`, subject, c.shareOfBare, 0.85),
    atMost(`p50 <= 0.1 ms over bare-${m.target.framework}`, subject, c.addedP50OverBareMs, 0.1, 'ms'),
  ]
  if (m.target.framework === 'fastify') {
    checks.push(atLeast('Fastify mount >= 75% of bare-node', subject, c.shareOfBareNode, 0.75))
  }
  return checks
}

/**
 * Translation to Anthropic and back, against the same framework relaying Anthropic's own call untouched: the
 * cost should stay well under a millisecond per request. The throughput share is reported, not judged.
 */
function compatAims(m: Measurement, c: Comparison): AimCheck[] {
  const subject = `${m.target.name} ${m.mode}`
  const bare = `bare-${m.target.framework}`
  return [
    atMost(`translation: p50 <= 1 ms over ${bare}`, subject, c.addedP50OverBareMs, 1, 'ms'),
    shareOf(`translation: throughput share of ${bare}`, subject, c.shareOfBare),
  ]
}

/** Streaming must not cost more than buffering: the gateway relays events as they come. */
function streamingAim(target: Target, all: readonly Measurement[]): AimCheck {
  const addedFor = (mode: Mode) => {
    const m = lookupIn(all)(mode, target.name)
    return m ? compare(m, all).addedP50OverDirectMs : undefined
  }
  const sse = addedFor('sse')
  const json = addedFor('json')
  const aim = 'SSE added p50 <= JSON added p50'
  if (sse === undefined || json === undefined)
    return { aim, subject: target.name, value: '-', verdict: 'n/a' }
  return {
    aim,
    subject: target.name,
    value: `${signedMs(sse)} vs ${signedMs(json)} ms`,
    verdict: sse <= json ? 'PASS' : 'MISS',
  }
}

function atMost(
  aim: string,
  subject: string,
  value: number | undefined,
  limit: number,
  unit: string,
): AimCheck {
  if (value === undefined) return { aim, subject, value: '-', verdict: 'n/a' }
  return { aim, subject, value: `${signedMs(value)} ${unit}`, verdict: verdictOf(value <= limit) }
}

function atLeast(aim: string, subject: string, share: number | undefined, floor: number): AimCheck {
  if (share === undefined) return { aim, subject, value: '-', verdict: 'n/a' }
  return { aim, subject, value: percent(share), verdict: verdictOf(share >= floor) }
}

function addedMs(aim: string, subject: string, value: number | undefined): AimCheck {
  if (value === undefined) return { aim, subject, value: '-', verdict: 'n/a' }
  return { aim, subject, value: `${signedMs(value)} ms`, verdict: 'info' }
}

function shareOf(aim: string, subject: string, share: number | undefined): AimCheck {
  if (share === undefined) return { aim, subject, value: '-', verdict: 'n/a' }
  return { aim, subject, value: percent(share), verdict: 'info' }
}

function verdictOf(pass: boolean): Verdict {
  return pass ? 'PASS' : 'MISS'
}

function uniqueGatewayTargets(all: readonly Measurement[]): Target[] {
  const byName = new Map<string, Target>()
  for (const m of all) if (m.target.role === 'gateway') byName.set(m.target.name, m.target)
  return [...byName.values()]
}

export function formatAims(checks: readonly AimCheck[]): string {
  const rows = checks.map((c) => [c.verdict, c.subject, c.aim, c.value])
  return `AIMS\n${formatTable(['', 'subject', 'aim', 'measured'], rows, 3)}`
}
