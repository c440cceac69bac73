import type { DlpSpan } from '../types.js'

/**
 * A built-in detector: a candidate pattern, and a validation that keeps false positives down by checking
 * what a pattern cannot (check digits, number ranges, decoded structure, words nearby).
 *
 * Patterns are native regular expressions written for this module only, never from configuration. Each
 * uses bounded quantifiers whose pieces cannot split the same text in more than a few ways, so the work
 * per start position is bounded by a constant (the hostile-input tests measure it); `reach` is a true
 * upper bound on what a candidate and its validation read, which the stream scanner relies on.
 */
export interface Detector {
  readonly id: string
  /** What it finds and what it refuses, in one sentence. */
  readonly description: string
  /**
   * The most characters a candidate's match, plus whatever its validation reads after it, spans from the
   * candidate's start. Validation may also read up to `CONTEXT_CHARS` before the start.
   */
  readonly reach: number
  /** Global (`g`); Unicode (`u`) where it uses `\p{...}`. */
  readonly pattern: RegExp
  /** The span to report (the whole match, or a part of it), or `undefined` to refuse the candidate. */
  readonly validate: (match: RegExpExecArray, text: string) => DlpSpan | undefined
  /**
   * Pattern source, with the pattern's flags, for the beginnings of candidates: matched up to the end of a
   * text that may go on, it must match every proper prefix of every match of `pattern` (it may check the
   * pattern's lookbehind, and may match more). Where neither it (up to the end) nor the pattern matches, no
   * candidate can start, whatever text follows.
   *
   * Why proper prefixes are enough: every pattern is made of lookbehinds, characters it consumes and
   * negative lookaheads, with no `$`, `\b` or positive lookahead. If a text holds all the characters a
   * match that more text would give consumes, the same path matches it already (a negative lookahead that
   * holds with more text holds with less); so where the pattern fails now but may match later, the text
   * ends inside the match.
   */
  readonly opening: string
  /**
   * How many characters past a position decide whether a candidate can begin there: `opening` matches at
   * most one less, so once the text runs this far past a position, a candidate starts there only if the
   * pattern matches. On text where no candidate begins, a stream scanner holds back at most this much for
   * the detector; a candidate that has begun may hold up to `reach`.
   */
  readonly startReach: number
  /**
   * Whether a match, and what its validation makes of it, can no longer change however the text goes on,
   * so that a stream scanner may decide it before `reach` characters have arrived. See `settledAfter`.
   */
  readonly settled: (match: RegExpExecArray, text: string) => boolean
}

/**
 * The most characters any detector's validation reads before a candidate (words such as "routing" that a
 * bare nine-digit number needs). A stream scanner keeps this much released text for them.
 */
export const CONTEXT_CHARS = 64

/** How far before a number its context words are looked for. */
const CONTEXT_WINDOW = 48

/** Not right after a letter, digit or underscore. */
export const WORD_BEFORE = String.raw`(?<![\p{L}\p{N}_])`
/** Not right before a letter, digit or underscore. */
export const WORD_AFTER = String.raw`(?![\p{L}\p{N}_])`
/** Not inside a longer number: no word character before, nor a digit and a separator (`12.`, `4-`). */
export const NUMBER_BEFORE = String.raw`(?<![\p{L}\p{N}_]|\p{N}[.,\-/])`
/** Not running on into a longer number: no word character after, nor a separator and a digit. */
export const NUMBER_AFTER = String.raw`(?![\p{L}\p{N}_]|[.,\-/]\p{N})`
/** Token characters of API keys: a key is not part of a longer token. */
export const TOKEN_BEFORE = String.raw`(?<![A-Za-z0-9_\-])`
export const TOKEN_AFTER = String.raw`(?![A-Za-z0-9_\-])`

/** The whole match as the span. */
export function wholeMatch(match: RegExpExecArray): DlpSpan {
  return { start: match.index, end: match.index + match[0].length }
}

/**
 * Whether `words` occurs within the `CONTEXT_WINDOW` characters before `start`, e.g. "routing" before a
 * routing number.
 */
export function hasContextBefore(text: string, start: number, words: RegExp): boolean {
  return words.test(text.slice(Math.max(0, start - CONTEXT_WINDOW), start))
}

/** A detector whose candidates need only `accept` to pass, reported as the whole match. */
export function detector(
  fields: Omit<Detector, 'validate'> & {
    accept?: (found: string, match: RegExpExecArray, text: string) => boolean
  },
): Detector {
  const { accept, ...rest } = fields
  return {
    ...rest,
    validate: (match, text) =>
      accept === undefined || accept(match[0], match, text) ? wholeMatch(match) : undefined,
  }
}

/**
 * A `settled` test for a pattern whose matches can only grow by characters of the class `grows` (a class
 * body such as `0-9 \-`, or `''` when no other path of the pattern at the same start ends later), and whose
 * lookaheads and validation read at most `after` characters past the last character a path consumes:
 * once the text shows a character outside `grows` at or after the match's end, and `after` characters from
 * there, every character the pattern and the validation look at is there, so more text changes nothing.
 *
 * @example
 * settledAfter('0-9', 3) // a digit run: settled three characters past the first character that is no digit
 */
export function settledAfter(grows: string, after: number): Detector['settled'] {
  const run = grows === '' ? undefined : new RegExp(`[${grows}]*`, 'y')
  return (match, text) => {
    let end = match.index + match[0].length
    if (run !== undefined) {
      run.lastIndex = end
      run.exec(text)
      end = run.lastIndex
    }
    return end + after <= text.length
  }
}

/** Syntax characters, escaped where a literal is written into a pattern (`.`, `/` in a URL). */
const SYNTAX = /[\\^$.*+?()[\]{}|/]/g

/**
 * Pattern source for every non-empty prefix of `literal`, and for `literal` followed by what `then` (a
 * pattern source that also matches the empty text) matches: the beginnings of a candidate with a fixed lead.
 *
 * @example
 * literalPrefixes('ghp_', '[A-Za-z0-9]{0,35}') // 'g(?:h(?:p(?:_(?:[A-Za-z0-9]{0,35})?)?)?)?'
 */
export function literalPrefixes(literal: string, then = ''): string {
  return [...literal].reduceRight((inner, char) => {
    const escaped = char.replace(SYNTAX, '\\$&')
    return inner === '' ? escaped : `${escaped}(?:${inner})?`
  }, then)
}
