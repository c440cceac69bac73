import { literalPattern } from '../needles.js'
import type { StreamGrammar } from '../providers/dialects/types.js'
import { USAGE_OBJECT_PAST_QUOTE, type UsageEvents } from './stream-usage.js'

/** What `StreamMarkers.scan` found in a batch, as bits. */
export const TERMINATOR = 1 << 0
export const FINISH = 1 << 1
export const ERROR = 1 << 2
export const USAGE = 1 << 3

/** A marker as latin1 text, and where in it the search for it starts. */
interface Marker {
  readonly text: string
  readonly anchor: number
  readonly bit: number
}

const QUOTE = 0x22
// Characters of which JSON event text is mostly made: quotes, lowercase keys and values, digits, `: ,`.
const COMMON = /[a-z0-9" :,]/
// A suffix that short would stop the search at most events for a check that fails.
const MIN_SUFFIX = 4

/**
 * Where the search for a marker starts: at its first character that is rare in JSON event text, else past
 * its opening quotes. A pattern is tried at every position its first character occurs, and in event text
 * `"` is at one character in eight and every event begins with `data: `: on a 6 KB OpenAI batch the
 * markers from `"` and `data: ` cost 61k instructions a scan, from `_reason":"`, `[DONE]` and `error"` 25k.
 */
function anchorOf(marker: string): number {
  for (let i = 0; i <= marker.length - MIN_SUFFIX; i++) if (!COMMON.test(marker[i]!)) return i
  let i = 0
  while (i < marker.length - 1 && marker.charCodeAt(i) === QUOTE) i++
  return i
}

/**
 * A grammar's markers (its terminator, finish and error marker) and the usage object, found in one pass of
 * one regular expression over a batch's latin1 text. Usage is part of the same pass so that the events
 * kept for the log's tokens need no scan of their own; it is left out (`findsUsage` false) where nothing
 * wants it, and where a stream's usage is found as the gateway cuts it out (`withoutUsage`). Each marker
 * is searched from its anchor (see `anchorOf`) and checked whole where that part is found. Made once per
 * grammar and use (`markersOf`) and shared by every stream that speaks it.
 */
export class StreamMarkers {
  // The markers as latin1 text of their UTF-8 bytes, what a batch's text is made of.
  readonly #markers: readonly Marker[]
  readonly #pattern: RegExp

  constructor(grammar: StreamGrammar, findsUsage = true) {
    const marker = (text: string, bit: number): Marker => {
      const latin1 = Buffer.from(text).toString('latin1')
      return { text: latin1, anchor: anchorOf(latin1), bit }
    }
    this.#markers = [
      marker(grammar.terminator, TERMINATOR),
      marker(grammar.finish, FINISH),
      marker(grammar.errorMarker, ERROR),
    ]
    // The pattern stops wherever any part begins, and every marker is checked whole there: the order of
    // the parts does not matter. One part for markers searched from the same text (Gemini's `Reason"`).
    const parts = new Set(this.#markers.map(({ text, anchor }) => text.slice(anchor)))
    const literals = [...parts].map(literalPattern)
    if (findsUsage) literals.push(USAGE_OBJECT_PAST_QUOTE)
    this.#pattern = new RegExp(literals.join('|'), 'g')
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
      let isMarker = false
      for (const { text: whole, anchor, bit } of this.#markers) {
        if (at < anchor || !text.startsWith(whole, at - anchor)) continue
        bits |= bit
        isMarker = true
      }
      if (!isMarker && at > 0 && text.charCodeAt(at - 1) === QUOTE && match[0].startsWith('usage')) {
        bits |= USAGE
        if (firstUsage === -1) firstUsage = at - 1
        lastUsage = at - 1
      }
      pattern.lastIndex = at + 1
    }
    if (firstUsage !== -1) usage?.keep(text, firstUsage, lastUsage)
    return bits
  }
}

const searches = [new WeakMap<StreamGrammar, StreamMarkers>(), new WeakMap<StreamGrammar, StreamMarkers>()]

/** The grammar's marker search, with the usage object or without it, made on first use. */
export function markersOf(grammar: StreamGrammar, findsUsage: boolean): StreamMarkers {
  const made = searches[findsUsage ? 1 : 0]!
  let search = made.get(grammar)
  if (search === undefined) {
    search = new StreamMarkers(grammar, findsUsage)
    made.set(grammar, search)
  }
  return search
}
