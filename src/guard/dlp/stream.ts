/**
 * Scanning an answer that arrives in chunks, releasing text as soon as no finding can still start in it.
 *
 * The invariant: text is released only once every finding that starts in it has been decided. Every push
 * walks each matcher on from where it stopped, and each walk stops at the first position that is still
 * open: where the text from there to its end is the beginning of a candidate (a key's `-----BEGIN` line,
 * a run of card digits not yet ended, an address's local part), or where a candidate starts that more
 * text could still change. Text before the first open position of all matchers is released:
 * - a position is decided as soon as the text after it cannot begin a candidate: at once for most text,
 *   and at the latest `startReach` characters on (the longest beginning of the matcher's candidates: 23
 *   for cards, 66 for email addresses, 72 for a key's BEGIN line, 3,514 for a JWT before its second dot);
 * - a candidate that has begun holds the text from its start until it is settled (the text shows where
 *   it ends and what its validation reads after it: a card's digit run ended, a key block's END line) or,
 *   at the latest, until the text runs its `reach` past its start (8,192 characters for private key
 *   blocks, 4,224 for JWTs);
 * - an RE2 pattern has no known beginning or length: the window is its reach, so the last
 *   `holdBackChars - 1` characters stay open, as each match is decided with the window's text after it.
 * The findings are those a scan of the whole text reports, and the releases, concatenated, the whole text.
 *
 * On text where no candidate begins, a push holds back only the open end: with the built-in profiles, on
 * prose (words, spaces, punctuation, no digits) at most the last word and the white space after it, as
 * an email address or a keyword may begin at any word. At worst it holds the longest `startReach` of the
 * profile's matchers: `financial` 64 (an IBAN's letters, digits and spaces), `pii` 66 (a local part and
 * its `@`), `government_ids` 11, `credentials` and `secrets` 3,514 for text beginning `eyJ` and 241
 * otherwise (`sk-` and a key's characters). A profile with an RE2 pattern holds `holdBackChars - 1`.
 *
 * `holdBackChars` caps what is held, and so memory: no matcher's reach exceeds it, so nothing is held
 * longer than that, except a region of findings already decided: a release does not end inside one (in
 * either mode, so that a caller masking findings in detect mode gets each whole), unless it runs past
 * twice the window (below).
 *
 * Limits, by design:
 * - An RE2 pattern match longer than the window may be missed or cut short across chunks: it is decided
 *   with only the window's text after its start.
 * - In redact mode, overlapping findings are masked as one, as `redactText` does; a run of overlapping
 *   findings longer than twice the window is masked in pieces, with one mask per piece.
 * - Memory holds at most the window, one slice of at most 64 Ki characters of the current chunk, and 64
 *   characters of released text for the context words some detectors read. A chunk larger than a slice
 *   is scanned slice by slice, in place.
 * - A high surrogate that ends a push is held until the rest of its character comes.
 */
import { GatewayOptionsError } from '../../errors.js'
import { CONTEXT_CHARS } from './detectors/index.js'
import { checkMask, maskSpans } from './redact.js'
import { findingsOf } from './scan.js'
import type { CompiledDlpProfiles, DlpFinding, DlpMask, DlpMatcher } from './types.js'

/**
 * The default cap on held-back text, and the reach of RE2 patterns, for profiles whose findings are all
 * short; longer when a detector can report more.
 */
export const DEFAULT_HOLD_BACK_CHARS = 256
/** 1 Mi characters. */
const MAX_HOLD_BACK_CHARS = 1_048_576
/** A chunk is scanned in slices of at most this many characters. */
const SLICE_CHARS = 65_536

export interface DlpStreamOptions {
  /**
   * The most characters held back, unreleased, at the end of the text seen so far: text is released as
   * soon as no finding can start in it, and this caps what a candidate not yet decided may hold. At least
   * the longest reach of the profiles' detectors and keywords (`compiled.maxFindingChars`); by default
   * that, or 256 if longer. It is also the reach given to RE2 patterns, whose matches have no known
   * longest length.
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
    // A high surrogate that ends the text is half a character: `u` patterns read the pair as one, so the
    // walks see the text without it until the other half comes.
    const last = buffer.charCodeAt(buffer.length - 1)
    const scanned = !final && last >= 0xd800 && last <= 0xdbff ? buffer.slice(0, -1) : buffer
    for (const [index, matcher] of matchers.entries()) {
      const walk = matcher.walk(scanned, cursors[index]! - bufferStart, final, holdBack)
      for (const span of walk.spans) {
        held.push({ start: span.start + bufferStart, end: span.end + bufferStart, matcher, reported: false })
      }
      cursors[index] = walk.cursor + bufferStart
    }
    let cut = final ? seen : Math.min(seen, ...cursors)
    if (!final) cut = keepRegionsWhole(held, released, cut, seen, holdBack)
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
        // Each walk resumes at its cursor and reads on to where the text is still open, so that a step on
        // every push costs, over a stream, about what one scan of it does.
        const out = step(false)
        releases.push(out.release)
        findings.push(...out.findings)
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
