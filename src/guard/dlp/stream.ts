/**
 * Scanning an answer that arrives in chunks, releasing text as soon as no finding can still start in it.
 *
 * The invariant: text is released only once every finding that starts in it has been decided, and a
 * finding is decided once the text seen reaches `reach` characters past its start (every built-in
 * detector and keyword declares its reach; an RE2 pattern is given the window). The hold-back window is at
 * least the longest reach, so a finding that started in released text cannot appear later: it would have
 * had all its text in the window before its start was released. Each matcher's walk resumes where it
 * stopped, so the findings are those a scan of the whole text would report.
 *
 * Limits, by design:
 * - An RE2 pattern match longer than the window may be missed or cut short across chunks: it is decided
 *   with only the window's text after its start.
 * - In redact mode, overlapping findings are masked as one, as `redactText` does; a run of overlapping
 *   findings longer than twice the window is masked in pieces, with one mask per piece.
 * - Memory holds the window, one slice of at most 64 Ki characters of the current chunk, and 64 characters
 *   of released text for the context words some detectors read. A chunk larger than a slice is scanned
 *   slice by slice, in place.
 */
import { GatewayOptionsError } from '../../errors.js'
import { CONTEXT_CHARS } from './detectors/index.js'
import { checkMask, maskSpans } from './redact.js'
import { findingsOf } from './scan.js'
import type { CompiledDlpProfiles, DlpFinding, DlpMask, DlpMatcher } from './types.js'

/** The window for profiles whose findings are all short; longer when a detector can report more. */
export const DEFAULT_HOLD_BACK_CHARS = 256
/** 1 Mi characters. */
const MAX_HOLD_BACK_CHARS = 1_048_576
/** A chunk is scanned in slices of at most this many characters. */
const SLICE_CHARS = 65_536

export interface DlpStreamOptions {
  /**
   * How many characters are held back, unreleased, at the end of the text seen so far. At least the
   * longest reach of the profiles' detectors and keywords (`compiled.maxFindingChars`); by default that,
   * or 256 if longer.
   */
  readonly holdBackChars?: number | undefined
  /** `'redact'` (the default) releases the text with findings masked; `'detect'` releases it unchanged. */
  readonly action?: 'redact' | 'detect' | undefined
  /** The mask in redact mode, as for `redactText`. Default `'label'`. */
  readonly mask?: DlpMask | undefined
}

/** What one `push` or `end` gives back. */
export interface DlpStreamOutput {
  /** The text now safe to pass on (masked in redact mode); may be empty. */
  readonly release: string
  /** Findings that start in the released text, positions counted from the start of the stream. */
  readonly findings: DlpFinding[]
}

export interface DlpStreamScanner {
  push(chunk: string): DlpStreamOutput
  /** Releases the rest; the scanner is then done and throws on further calls. */
  end(): DlpStreamOutput
}

/** A hit not yet released, with stream positions. */
interface Held {
  readonly start: number
  readonly end: number
  readonly matcher: DlpMatcher
  reported: boolean
}

/**
 * Makes a scanner for one stream; see the module comment for what it guarantees. Concatenated, the
 * releases are the stream's text (masked in redact mode) and the findings are those of `scanText` on the
 * whole text, without its `maxScanChars` bound: every slice scanned is small.
 *
 * @example
 * const scanner = createStreamScanner(compileDlpProfiles(['pii']))
 * let out = ''
 * for (const chunk of ['mail me at ana@exa', 'mple.com today']) out += scanner.push(chunk).release
 * out += scanner.end().release // 'mail me at [REDACTED:email] today'
 */
export function createStreamScanner(
  compiled: CompiledDlpProfiles,
  options: DlpStreamOptions = {},
): DlpStreamScanner {
  const holdBack = holdBackOf(compiled, options.holdBackChars)
  const action = options.action ?? 'redact'
  if (action !== 'redact' && action !== 'detect') {
    throw new GatewayOptionsError("Invalid DLP stream options: action must be 'redact' or 'detect'")
  }
  const mask = options.mask ?? 'label'
  checkMask(mask)
  const { matchers } = compiled
  const cursors = matchers.map(() => 0)
  let held: Held[] = []
  let buffer = ''
  let bufferStart = 0
  let seen = 0
  let released = 0
  let ended = false

  const step = (final: boolean): DlpStreamOutput => {
    for (const [index, matcher] of matchers.entries()) {
      const walk = matcher.walk(buffer, cursors[index]! - bufferStart, final, matcher.reach ?? holdBack)
      for (const span of walk.spans) {
        held.push({ start: span.start + bufferStart, end: span.end + bufferStart, matcher, reported: false })
      }
      cursors[index] = walk.cursor + bufferStart
    }
    let cut = final ? seen : Math.min(seen, ...cursors)
    if (action === 'redact' && !final) cut = keepRegionsWhole(held, released, cut, seen, holdBack)
    if (cut <= released) return { release: '', findings: [] }

    const due = held.filter((hit) => !hit.reported && hit.start < cut)
    for (const hit of due) hit.reported = true
    const findings = findingsOf(due.map(({ start, end, matcher }) => ({ span: { start, end }, matcher })))
    const text = buffer.slice(released - bufferStart, cut - bufferStart)
    const release =
      action === 'detect'
        ? text
        : maskSpans(
            text,
            held
              .filter((hit) => hit.start < cut)
              .map(({ start, end, matcher }) => ({
                start: Math.max(start, released) - released,
                end: Math.min(end, cut) - released,
                entryIds: matcher.owners.map((owner) => owner.entryId),
              })),
            mask,
          )
    held = held.filter((hit) => hit.end > cut)
    released = cut
    const keepFrom = Math.max(bufferStart, released - CONTEXT_CHARS)
    buffer = buffer.slice(keepFrom - bufferStart)
    bufferStart = keepFrom
    return { release, findings }
  }

  return {
    push(chunk) {
      if (ended) throw new Error('DLP stream scanner: push() after end()')
      if (typeof chunk !== 'string') throw new TypeError('DLP stream scanner: a chunk must be a string')
      const releases: string[] = []
      const findings: DlpFinding[] = []
      for (let offset = 0; offset < chunk.length; offset += SLICE_CHARS) {
        const slice =
          offset === 0 && chunk.length <= SLICE_CHARS ? chunk : chunk.slice(offset, offset + SLICE_CHARS)
        buffer += slice
        seen += slice.length
        if (seen - released > holdBack) {
          const out = step(false)
          releases.push(out.release)
          findings.push(...out.findings)
        }
      }
      return { release: releases.join(''), findings }
    },
    end() {
      if (ended) throw new Error('DLP stream scanner: end() called twice')
      ended = true
      const out = step(true)
      buffer = ''
      held = []
      return out
    },
  }
}

/**
 * Moves the cut back to the start of a merged region of held hits that runs over it, so that the region is
 * masked once, as a whole-text redaction masks it; unless the region began more than twice the window ago,
 * which bounds what is held.
 */
function keepRegionsWhole(
  held: readonly Held[],
  released: number,
  cut: number,
  seen: number,
  holdBack: number,
) {
  const spans = held
    .map(({ start, end }) => ({ start: Math.max(start, released), end }))
    .sort((a, b) => a.start - b.start)
  let regionStart = -1
  let regionEnd = -1
  for (const span of spans) {
    if (span.start >= cut) break
    if (span.start < regionEnd) {
      regionEnd = Math.max(regionEnd, span.end)
    } else {
      regionStart = span.start
      regionEnd = span.end
    }
  }
  if (regionEnd > cut && seen - regionStart <= 2 * holdBack) return regionStart
  return cut
}

/** The window: as asked, and never shorter than the longest reach, which the invariant needs. */
function holdBackOf(compiled: CompiledDlpProfiles, asked: number | undefined): number {
  const longest = compiled.matchers.reduce<DlpMatcher | undefined>(
    (best, matcher) => ((matcher.reach ?? 0) > (best?.reach ?? 0) ? matcher : best),
    undefined,
  )
  const least = Math.max(1, longest?.reach ?? 0)
  if (asked === undefined) return Math.max(DEFAULT_HOLD_BACK_CHARS, least)
  if (!Number.isInteger(asked) || asked < least || asked > MAX_HOLD_BACK_CHARS) {
    const why = longest === undefined ? '' : `, the longest reach of a finding of ${longest.key} (${least})`
    throw new GatewayOptionsError(
      `Invalid DLP stream options: holdBackChars must be an integer from ${least}${why} to ${MAX_HOLD_BACK_CHARS}`,
    )
  }
  return asked
}
