/**
 * Matchers: the one loop every kind of entry is found with. A matcher walks the text left to right and
 * never looks back, so a stream scanner that resumes a walk where it stopped finds exactly what a walk over
 * the whole text finds (see `DlpMatcher.walk`).
 */
import type { RE2JS } from 're2js'
import { type Detector, settledAfter } from './detectors/define.js'
import type { DlpMatcher, DlpOwner, DlpSpan, DlpWalk } from './types.js'

/**
 * A matcher over a native pattern (a built-in detector's, or a keyword's). A refused candidate is retried
 * one character further on, so that what is found at a position does not depend on where the walk began.
 *
 * Unless `final`, the walk goes from one open position to the next: where the detector's `opening` matches
 * up to the end of the text, or its pattern matches. Every other position is decided (no candidate starts
 * there, whatever follows). At an open position, a candidate is decided once its match is `settled` or the
 * text runs `reach` characters past its start; the first one that is not stops the walk.
 */
export function detectorMatcher(key: string, detector: Detector, owners: readonly DlpOwner[]): DlpMatcher {
  const { pattern, validate, reach, startReach, settled } = detector
  // The pattern first, so that where it matches the match is its own; an empty group after the opening,
  // numbered after the pattern's groups (its backreferences stay right), tells the opening's matches apart.
  const open = new RegExp(`${pattern.source}|(?:${detector.opening})$()`, pattern.flags)
  return {
    key,
    reach,
    startReach,
    owners,
    walk(text, from, final): DlpWalk {
      const spans: DlpSpan[] = []
      let position = from
      for (;;) {
        let start: number
        let match: RegExpExecArray | null
        if (final) {
          pattern.lastIndex = position
          match = position <= text.length ? pattern.exec(text) : null
          if (match === null) return { spans, cursor: Math.max(position, text.length) }
          start = match.index
        } else {
          open.lastIndex = position
          const opened = position < text.length ? open.exec(text) : null
          if (opened === null) return { spans, cursor: Math.max(position, text.length) }
          start = opened.index
          match = opened.at(-1) === undefined ? opened : null
          if (start + reach > text.length && (match === null || !settled(match, text))) {
            return { spans, cursor: start }
          }
        }
        const span = match === null ? undefined : validate(match, text)
        if (span !== undefined && span.end > span.start) {
          spans.push(span)
          position = span.end
        } else {
          position = after(text, start)
        }
      }
    },
  }
}

/** The position after the character at `index`: one past a surrogate pair, which `u` patterns step over. */
function after(text: string, index: number): number {
  const code = text.charCodeAt(index)
  const low = text.charCodeAt(index + 1)
  return code >= 0xd800 && code <= 0xdbff && low >= 0xdc00 && low <= 0xdfff ? index + 2 : index + 1
}

/** The longest run of white space one space in a keyword stands for. */
const KEYWORD_SPACE = String.raw`\s{1,8}`
/** Syntax characters, the only ones that may be escaped in a Unicode-mode pattern. */
const SYNTAX = /[\\^$.*+?()[\]{}|/]/g
/** No letter, digit, mark or underscore before a keyword. */
const KEYWORD_BEFORE = String.raw`(?<![\p{L}\p{N}\p{M}_])`

/**
 * A keyword as a detector: the words escaped (so configuration never supplies pattern syntax), any run of
 * white space in it standing for one to eight white-space characters, matched case-insensitively (Unicode
 * simple case folding) and only where no letter, digit, mark or underscore touches it on either side.
 */
export function keywordDetector(keyword: string): Detector {
  const words = keyword.trim().split(/\s+/)
  const body = words.map((word) => word.replace(SYNTAX, '\\$&')).join(KEYWORD_SPACE)
  const longest = words.reduce((sum, word) => sum + word.length, 0) + 8 * (words.length - 1)
  // Its beginnings: each character (or run of spaces) nested in the one before, `a(?:b(?:c)?)?`.
  const pieces = words.flatMap((word, index) => [
    ...(index === 0 ? [] : [KEYWORD_SPACE]),
    ...[...word].map((char) => char.replace(SYNTAX, '\\$&')),
  ])
  const opening = pieces.reduceRight((inner, piece) => (inner === '' ? piece : `${piece}(?:${inner})?`), '')
  return {
    id: `keyword:${keyword}`,
    description: 'A keyword.',
    // One code point, possibly two UTF-16 units, is looked at after the match.
    reach: longest + 2,
    // Without the lookbehind, which is costly to compile case-insensitively: a wider opening is still one.
    opening,
    startReach: longest,
    // Words and runs of spaces alternate in one way only, so a match cannot grow; its lookahead reads
    // one code point.
    settled: settledAfter('', 2),
    pattern: new RegExp(`${KEYWORD_BEFORE}${body}(?![\\p{L}\\p{N}\\p{M}_])`, 'giu'),
    validate: (match) => ({ start: match.index, end: match.index + match[0].length }),
  }
}

/**
 * A matcher over an RE2 pattern: leftmost-first matches, non-overlapping; empty matches are not findings.
 * Its matches have no known longest length, so the stream scanner's window stands in for one: a position
 * is decided once the window's length of text follows it, as is each match starting there.
 */
export function patternMatcher(key: string, pattern: RE2JS, owners: readonly DlpOwner[]): DlpMatcher {
  return {
    key,
    reach: undefined,
    startReach: undefined,
    owners,
    walk(text, from, final, windowReach): DlpWalk {
      const spans: DlpSpan[] = []
      const matcher = pattern.matcher(text)
      // Every position from here on may still start a match that more text would give.
      const undecided = final ? text.length : text.length - windowReach + 1
      let position = from
      for (;;) {
        if (position > text.length || !matcher.find(position)) {
          return { spans, cursor: Math.max(position, undecided) }
        }
        const start = matcher.start()
        const end = matcher.end()
        // Not the match's start: positions before it where nothing matched yet may match with more text.
        if (start >= undecided && !final) return { spans, cursor: Math.max(position, undecided) }
        if (end > start) spans.push({ start, end })
        position = end > start ? end : start + 1
      }
    },
  }
}
