/**
 * DLP over JSON bodies: every string in the body is scanned on its own (keys are not), as the reference
 * scans the raw text of prompts, answers and tool calls; a redaction rewrites those strings and leaves the
 * JSON's shape alone. Findings name the string by JSON pointer and the span by offsets in it.
 */
import type { LogDlpFinding } from '../logs/types.js'
import type { DlpAction, DlpCheck } from './config.js'
import { type DlpMask, redactText, type DlpFinding as ScanFinding, scanText } from './dlp/index.js'

/** Findings kept per request, in records and headers. */
export const MAX_DLP_FINDINGS = 100
/**
 * Strings deeper than this are not scanned, and the result says `truncated`: the walk recurses, and a body
 * may nest as deep as its bytes allow. A tool's result or a function's arguments are JSON of anyone's
 * shape, so the bound is far past what a real one needs, and well within the stack.
 */
const MAX_DEPTH = 1000

/** A finding as the log record keeps it: named, placed, never the text. */
export type DlpHit = LogDlpFinding
export type DlpCheckName = LogDlpFinding['check']

/** What DLP found in one check and did: the strongest action of the findings' policies. */
export interface DlpResult {
  readonly action: 'FLAG' | 'REDACT' | 'BLOCK' | undefined
  readonly hits: DlpHit[]
  readonly truncated: boolean
}

const RANK = { flag: 1, redact: 2, block: 3 } as const
const ACTION_NAMES = { flag: 'FLAG', redact: 'REDACT', block: 'BLOCK' } as const

/** The strongest action of the policies that serve a finding's profile. */
export function actionOf(check: DlpCheck, profileId: string): { action: DlpAction; policyIds: string[] } {
  const policies = check.policiesOf.get(profileId) ?? []
  let action: DlpAction = 'flag'
  for (const policy of policies) if (RANK[policy.action] > RANK[action]) action = policy.action
  return { action, policyIds: policies.map((policy) => policy.id) }
}

/**
 * Short strings a collector remembers as clean: a stream's events repeat theirs (an id, the model, the
 * object's type) in every event, and each would otherwise be scanned again, a few µs each.
 */
const MAX_CLEAN_STRINGS = 128
const MAX_CLEAN_STRING_CHARS = 128

/** Collects hits of several scans into one result, keeping at most `MAX_DLP_FINDINGS`. */
export class DlpCollector {
  readonly hits: DlpHit[] = []
  #rank = 0
  #truncated = false
  #flags = 0
  readonly #clean = new Set<string>()

  constructor(
    readonly check: DlpCheck,
    readonly name: DlpCheckName,
  ) {}

  /** Adds a scan's findings of the string at `path`; returns those whose action is `redact`. */
  add(findings: readonly ScanFinding[], path: string, offset = 0): ScanFinding[] {
    const redacted: ScanFinding[] = []
    for (const finding of findings) {
      const { action, policyIds } = actionOf(this.check, finding.profileId)
      this.#rank = Math.max(this.#rank, RANK[action])
      if (action === 'redact') redacted.push(finding)
      else if (action === 'flag') this.#flags++
      if (this.hits.length >= MAX_DLP_FINDINGS) {
        this.#truncated = true
        continue
      }
      this.hits.push({
        check: this.name,
        profileId: finding.profileId,
        entryId: finding.entryId,
        policyIds,
        path,
        start: finding.start + offset,
        end: finding.end + offset,
      })
    }
    return redacted
  }

  /** Whether `text` was scanned before and had no finding. */
  isClean(text: string): boolean {
    return this.#clean.has(text)
  }

  /** Remembers a short string that a scan found nothing in. */
  noteClean(text: string): void {
    if (text.length <= MAX_CLEAN_STRING_CHARS && this.#clean.size < MAX_CLEAN_STRINGS) this.#clean.add(text)
  }

  /** A string was longer than the scan's bound: only its start was scanned. */
  markTruncated(): void {
    this.#truncated = true
  }

  /** How many findings were only flagged: passed on as they are, masked only in the log's copy. */
  get flags(): number {
    return this.#flags
  }

  get blocks(): boolean {
    return this.#rank === RANK.block
  }

  result(): DlpResult {
    const action = (Object.keys(RANK) as DlpAction[]).find((name) => RANK[name] === this.#rank)
    return { action: action && ACTION_NAMES[action], hits: this.hits, truncated: this.#truncated }
  }
}

/**
 * Scans every string of `json`; returns the body with `redact` findings masked (every finding with
 * `maskAll`), the same object when nothing was masked, and records every finding in `collector`.
 */
export function scanJson(
  collector: DlpCollector,
  json: unknown,
  mask: DlpMask,
  options: { maskAll?: boolean } = {},
): unknown {
  // The pointer is built only for a string with findings: most strings have none.
  const keys: string[] = []
  const pointer = () => keys.map((key) => `/${escapePointer(key)}`).join('')
  const walk = (value: unknown, depth: number): unknown => {
    if (typeof value === 'string') {
      if (collector.isClean(value)) return value
      const { findings, truncated } = scanText(collector.check.compiled, value)
      if (truncated) collector.markTruncated()
      if (findings.length === 0) {
        collector.noteClean(value)
        return value
      }
      const redacted = collector.add(findings, pointer())
      const masked = options.maskAll ? findings : redacted
      return masked.length === 0 ? value : redactText(value, masked, mask)
    }
    if (typeof value !== 'object' || value === null) return value
    if (depth >= MAX_DEPTH) {
      collector.markTruncated()
      return value
    }
    let copy: unknown[] | Record<string, unknown> | undefined
    const entries = Array.isArray(value) ? value.entries() : Object.entries(value)
    for (const [key, item] of entries) {
      if (typeof item !== 'string' && (typeof item !== 'object' || item === null)) continue
      keys.push(String(key))
      const next = walk(item, depth + 1)
      keys.pop()
      if (next === item) continue
      copy ??= Array.isArray(value) ? [...value] : { ...(value as Record<string, unknown>) }
      ;(copy as Record<string, unknown>)[key as string] = next
    }
    return copy ?? value
  }
  return walk(json, 0)
}

function escapePointer(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1')
}

/** The strongest action of several checks' results: BLOCK over REDACT over FLAG. */
export function strongestAction(results: readonly DlpResult[]): 'FLAG' | 'REDACT' | 'BLOCK' {
  if (results.some((result) => result.action === 'BLOCK')) return 'BLOCK'
  return results.some((result) => result.action === 'REDACT') ? 'REDACT' : 'FLAG'
}

/**
 * The reference's `cf-aig-dlp` header: findings grouped by check and profile, with the entries and
 * policies that matched, and (beyond the reference) where: pointer and offsets, never the text.
 */
export function dlpHeader(results: readonly DlpResult[]): string | undefined {
  const hits = results.flatMap((result) => result.hits)
  if (hits.length === 0) return undefined
  const groups = new Map<string, { check: DlpCheckName; profileId: string; hits: DlpHit[] }>()
  for (const hit of hits) {
    const key = `${hit.check}\n${hit.profileId}`
    const group = groups.get(key) ?? { check: hit.check, profileId: hit.profileId, hits: [] }
    group.hits.push(hit)
    groups.set(key, group)
  }
  const action = strongestAction(results)
  return JSON.stringify({
    findings: [...groups.values()].map((group) => ({
      profile: {
        context: {},
        entry_ids: [...new Set(group.hits.map((hit) => hit.entryId))],
        profile_id: group.profileId,
      },
      policy_ids: [...new Set(group.hits.flatMap((hit) => hit.policyIds))],
      check: group.check,
      positions: group.hits.slice(0, 20).map((hit) => ({
        entry_id: hit.entryId,
        path: hit.path,
        start: hit.start,
        end: hit.end,
      })),
    })),
    action,
  })
}
