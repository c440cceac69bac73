import { literalPattern } from '../needles.js'
import type { StreamGrammar } from '../providers/dialects/types.js'
import { USAGE_OBJECT_PATTERN, type UsageEvents } from './stream-usage.js'

/** What `StreamMarkers.scan` found in a batch, as bits. */
export const TERMINATOR = 1 << 0
export const FINISH = 1 << 1
export const ERROR = 1 << 2
export const USAGE = 1 << 3

/**
 * A grammar's markers (its terminator, finish and error marker) and the usage object, found in one pass of
 * one regular expression over a batch's latin1 text. Usage is part of the same pass so that the events
 * kept for the log's tokens need no scan of their own: each scan of a 6 KB batch costs a few microseconds.
 * Made once per grammar (`markersOf`) and shared by every stream that speaks it.
 */
export class StreamMarkers {
  // The markers as latin1 text of their UTF-8 bytes, what a batch's text is made of, with their bits:
  // longest first, so that a marker that is a prefix of another is still found where both start.
  readonly #literals: readonly (readonly [text: string, bit: number])[]
  readonly #pattern: RegExp

  constructor(grammar: StreamGrammar) {
    const latin1 = (marker: string) => Buffer.from(marker).toString('latin1')
    this.#literals = (
      [
        [latin1(grammar.terminator), TERMINATOR],
        [latin1(grammar.finish), FINISH],
        [latin1(grammar.errorMarker), ERROR],
      ] as const
    ).toSorted((a, b) => b[0].length - a[0].length)
    const literals = [...new Set(this.#literals.map(([text]) => literalPattern(text)))]
    this.#pattern = new RegExp([...literals, USAGE_OBJECT_PATTERN].join('|'), 'g')
  }

  /**
   * Which markers `text` holds, as bits; the first and last usage object's events go to `usage`, when
   * given. Occurrences that overlap are all found.
   */
  scan(text: string, usage: UsageEvents | undefined): number {
    const pattern = this.#pattern
    let bits = 0
    let firstUsage = -1
    let lastUsage = -1
    pattern.lastIndex = 0
    for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
      const at = match.index
      const matched = match[0]
      let literal = false
      for (const [marker, bit] of this.#literals) {
        if (!matched.startsWith(marker)) continue
        bits |= bit
        literal = true
      }
      if (!literal) {
        bits |= USAGE
        if (firstUsage === -1) firstUsage = at
        lastUsage = at
      }
      pattern.lastIndex = at + 1
    }
    if (firstUsage !== -1) usage?.keep(text, firstUsage, lastUsage)
    return bits
  }
}

const searches = new WeakMap<StreamGrammar, StreamMarkers>()

/** The grammar's marker search, made on first use. */
export function markersOf(grammar: StreamGrammar): StreamMarkers {
  let search = searches.get(grammar)
  if (search === undefined) {
    search = new StreamMarkers(grammar)
    searches.set(grammar, search)
  }
  return search
}
