const SPECIAL = /[.*+?^${}()|[\]\\]/g

/** `text` as a regular expression that matches it literally. */
export function literalPattern(text: string): string {
  return text.replace(SPECIAL, '\\$&')
}

/**
 * A search for several fixed strings at once: one pass of one regular expression over the text, where a
 * search per string would scan it once each (a stream batch is searched for every configured secret,
 * event after event). Occurrences that overlap are all found.
 *
 * @example
 * const search = new NeedleSearch(['[DONE]', '"error"'])
 * search.present('data: [DONE]') // 0b01: the first needle only
 */
export class NeedleSearch {
  readonly needles: readonly string[]
  readonly #pattern: RegExp
  // Indexes into `needles`, longest first: at one position the alternation takes the first that matches,
  // and every shorter needle matching there is a prefix of it.
  readonly #byLength: readonly number[]

  constructor(needles: readonly string[]) {
    if (needles.length === 0 || needles.some((needle) => needle.length === 0))
      throw new RangeError('a needle search takes non-empty needles, at least one')
    this.needles = needles
    this.#byLength = needles.map((_, i) => i).sort((a, b) => needles[b]!.length - needles[a]!.length)
    const alternatives = [...new Set(this.#byLength.map((i) => literalPattern(needles[i]!)))]
    this.#pattern = new RegExp(alternatives.join('|'), 'g')
  }

  /** Calls `found` with the index of the needle and where it starts, for every occurrence in `text`. */
  forEach(text: string, found: (needle: number, at: number) => void): void {
    const pattern = this.#pattern
    pattern.lastIndex = 0
    for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
      const at = match.index
      const matched = match[0]
      for (const i of this.#byLength) if (matched.startsWith(this.needles[i]!)) found(i, at)
      pattern.lastIndex = at + 1
    }
  }

  /** Whether any needle occurs in `text`: the search stops at the first. */
  some(text: string): boolean {
    this.#pattern.lastIndex = 0
    return this.#pattern.test(text)
  }

  /** Which needles occur in `text`: bit `i` set for `needles[i]` (a search of at most 31 needles). */
  present(text: string): number {
    if (this.needles.length > 31) throw new RangeError('present() answers for at most 31 needles')
    let bits = 0
    this.forEach(text, (needle) => {
      bits |= 1 << needle
    })
    return bits
  }
}
