/**
 * Matchers: the one loop every kind of entry is found with. A matcher walks the text left to right and
 * never looks back, so a stream scanner that resumes a walk where it stopped finds exactly what a walk over
 * the whole text finds (see `DlpMatcher.walk`).
 */
import type { RE2JS } from 're2js'
import type { Detector } from './detectors/index.js'
import type { DlpMatcher, DlpOwner, DlpSpan, DlpWalk } from './types.js'

/**
 * A matcher over a native pattern (a built-in detector's, or a keyword's). A refused candidate is retried
 * one character further on, so that what is found at a position does not depend on where the walk began.
 */
export function detectorMatcher(key: string, detector: Detector, owners: readonly DlpOwner[]): DlpMatcher {
  const { pattern, validate, reach } = detector
  return {
    key,
    reach,
    owners,
    walk(text, from, final, windowReach): DlpWalk {
      const spans: DlpSpan[] = []
      let position = from
      for (;;) {
        pattern.lastIndex = position
        const match = position <= text.length ? pattern.exec(text) : null
        if (match === null) return { spans, cursor: settled(text, position, final, windowReach) }
        if (!final && match.index + windowReach > text.length) return { spans, cursor: match.index }
        const span = validate(match, text)
        if (span !== undefined && span.end > span.start) {
          spans.push(span)
          position = span.end
        } else {
          position = match.index + 1
        }
      }
    },
  }
}

/** The longest run of white space one space in a keyword stands for. */
const KEYWORD_SPACE = String.raw`\s{1,8}`
/** Syntax characters, the only ones that may be escaped in a Unicode-mode pattern. */
const SYNTAX = /[\\^$.*+?()[\]{}|/]/g

/**
 * A keyword as a detector: the words escaped (so configuration never supplies pattern syntax), any run of
 * white space in it standing for one to eight white-space characters, matched case-insensitively (Unicode
 * simple case folding) and only where no letter, digit, mark or underscore touches it on either side.
 */
export function keywordDetector(keyword: string): Detector {
  const words = keyword.trim().split(/\s+/)
  const body = words.map((word) => word.replace(SYNTAX, '\\$&')).join(KEYWORD_SPACE)
  const longest = words.reduce((sum, word) => sum + word.length, 0) + 8 * (words.length - 1)
  return {
    id: `keyword:${keyword}`,
    description: 'A keyword.',
    // One code point, possibly two UTF-16 units, is looked at after the match.
    reach: longest + 2,
    pattern: new RegExp(`(?<![\\p{L}\\p{N}\\p{M}_])${body}(?![\\p{L}\\p{N}\\p{M}_])`, 'giu'),
    validate: (match) => ({ start: match.index, end: match.index + match[0].length }),
  }
}

/**
 * A matcher over an RE2 pattern: leftmost-first matches, non-overlapping; empty matches are not findings.
 * Its matches have no known longest length, so the stream scanner's window stands in for one.
 */
export function patternMatcher(key: string, pattern: RE2JS, owners: readonly DlpOwner[]): DlpMatcher {
  return {
    key,
    reach: undefined,
    owners,
    walk(text, from, final, windowReach): DlpWalk {
      const spans: DlpSpan[] = []
      const matcher = pattern.matcher(text)
      let position = from
      for (;;) {
        if (position > text.length || !matcher.find(position)) {
          return { spans, cursor: settled(text, position, final, windowReach) }
        }
        const start = matcher.start()
        const end = matcher.end()
        if (!final && start + windowReach > text.length) return { spans, cursor: start }
        if (end > start) spans.push({ start, end })
        position = end > start ? end : start + 1
      }
    },
  }
}

/** Where a walk that found nothing more stops: everything that could still start a hit is undecided. */
function settled(text: string, position: number, final: boolean, reach: number): number {
  return final ? Math.max(position, text.length) : Math.max(position, text.length - reach + 1)
}
