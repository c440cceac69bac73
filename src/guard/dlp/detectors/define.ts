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
