/**
 * Keyword search for rule classifiers: every keyword at once, in one pass over the text (Aho-Corasick), so
 * the time grows with the text and the matches, never with text length times keyword count, and no
 * regular expression built from host input is ever run. Case-insensitive as `String#toLowerCase` is, on
 * word boundaries.
 */

/** A keyword and what it stands for (a rule's index, say). */
export interface KeywordEntry<T> {
  readonly keyword: string
  readonly tag: T
}

/** Finds which tags' keywords occur in a text; stops early once every tag in `wanted` is found. */
export type KeywordMatcher<T> = (text: string, wanted?: ReadonlySet<T>) => Set<T>

interface Node {
  readonly next: Map<number, number>
  fail: number
  /** The nearest node down the failure chain, this one excluded, that ends a keyword; -1 for none. */
  output: number
  /** Keywords (indexes into the entries) that end exactly here. */
  readonly ends: number[]
}

/**
 * Compiles keywords into one automaton. A keyword matches where it occurs, ignoring case, with no letter,
 * digit, mark or `_` right before it when it starts with one of those, and none right after it when it
 * ends with one: `kill` matches "Kill it" and "kill." but not "skills"; `c++` matches "I like c++!". Blank
 * keywords never match.
 *
 * @example
 * const find = createKeywordMatcher([{ keyword: 'bomb', tag: 'S9' }, { keyword: 'kill', tag: 'S1' }])
 * find('How to defuse a BOMB?') // Set { 'S9' }
 * find('killer skills') // Set {}
 */
export function createKeywordMatcher<T>(entries: readonly KeywordEntry<T>[]): KeywordMatcher<T> {
  const keywords = entries.map((entry) => entry.keyword.toLowerCase())
  const nodes: Node[] = [{ next: new Map(), fail: 0, output: -1, ends: [] }]
  for (const [index, keyword] of keywords.entries()) {
    if (keyword.trim() === '') continue
    let node = 0
    for (let i = 0; i < keyword.length; i++) {
      const code = keyword.charCodeAt(i)
      let child = nodes[node]!.next.get(code)
      if (child === undefined) {
        child = nodes.push({ next: new Map(), fail: 0, output: -1, ends: [] }) - 1
        nodes[node]!.next.set(code, child)
      }
      node = child
    }
    nodes[node]!.ends.push(index)
  }
  // Breadth first, so a node's failure target (a shorter suffix) is complete before the node is.
  const queue: number[] = [...nodes[0]!.next.values()]
  for (let head = 0; head < queue.length; head++) {
    const current = nodes[queue[head]!]!
    for (const [code, child] of current.next) {
      let fallback = current.fail
      let target = nodes[fallback]!.next.get(code)
      while (target === undefined && fallback !== 0) {
        fallback = nodes[fallback]!.fail
        target = nodes[fallback]!.next.get(code)
      }
      const fail = target !== undefined && target !== child ? target : 0
      const node = nodes[child]!
      node.fail = fail
      node.output = nodes[fail]!.ends.length > 0 ? fail : nodes[fail]!.output
      queue.push(child)
    }
  }

  return (text, wanted) => {
    const found = new Set<T>()
    const lower = text.toLowerCase()
    let state = 0
    for (let i = 0; i < lower.length; i++) {
      const code = lower.charCodeAt(i)
      let next = nodes[state]!.next.get(code)
      while (next === undefined && state !== 0) {
        state = nodes[state]!.fail
        next = nodes[state]!.next.get(code)
      }
      state = next ?? 0
      for (let node = state; node > 0; node = nodes[node]!.output) {
        for (const index of nodes[node]!.ends) {
          const keyword = keywords[index]!
          if (!bounded(lower, i + 1 - keyword.length, i + 1, keyword)) continue
          found.add(entries[index]!.tag)
        }
      }
      if (wanted !== undefined && found.size >= wanted.size && [...wanted].every((tag) => found.has(tag)))
        break
    }
    return found
  }
}

/** Whether `keyword`, found at `start..end` of `text`, stands on word boundaries. */
function bounded(text: string, start: number, end: number, keyword: string): boolean {
  if (isWordAt(keyword, 0) && start > 0 && isWordBefore(text, start)) return false
  if (isWordBefore(keyword, keyword.length) && end < text.length && isWordAt(text, end)) return false
  return true
}

const WORD = /^[\p{L}\p{N}\p{M}_]$/u

function isWordAt(text: string, index: number): boolean {
  const point = text.codePointAt(index)
  return point !== undefined && WORD.test(String.fromCodePoint(point))
}

function isWordBefore(text: string, index: number): boolean {
  const low = text.charCodeAt(index - 1)
  const high = text.charCodeAt(index - 2)
  const pair = low >= 0xdc00 && low <= 0xdfff && high >= 0xd800 && high <= 0xdbff
  return isWordAt(text, pair ? index - 2 : index - 1)
}
