/**
 * The shapes of DLP profiles, findings and compiled profiles. Profiles are plain data, as the reference's
 * DLP profiles are: a built-in profile is one of these too, made only of `detector` entries.
 */

/**
 * One thing a profile looks for:
 * - `detector`: a built-in detector by id (`credit_card`, `email`, ...), candidate pattern plus validation;
 * - `keyword`: a word or phrase, matched case-insensitively and only as a whole word;
 * - `pattern`: a regular expression with RE2 syntax and semantics, matched in linear time.
 */
export interface DlpEntry {
  readonly id: string
  readonly type: 'keyword' | 'pattern' | 'detector'
  readonly value: string
}

/** A named group of entries; a finding names the profile and the entry that made it. */
export interface DlpProfile {
  readonly id: string
  readonly entries: readonly DlpEntry[]
}

/**
 * Something a scan found. Offsets are UTF-16 indices into the scanned text (into the whole stream for a
 * stream scanner), `end` exclusive, so `text.slice(start, end)` is what was found. The matched text itself
 * is never part of a finding, so findings can be logged and sent in headers as they are.
 */
export interface DlpFinding {
  readonly profileId: string
  readonly entryId: string
  readonly start: number
  readonly end: number
}

export interface DlpScanResult {
  /**
   * Sorted by `start`, then `end`, then profile and entry order; findings of different entries may overlap.
   */
  readonly findings: DlpFinding[]
  /** Whether the text was longer than `maxScanChars`, so that only its first `maxScanChars` were read. */
  readonly truncated: boolean
}

export interface CompileDlpOptions {
  /**
   * The most characters (UTF-16 code units) one `scanText` reads; the rest of a longer text is not scanned
   * and the result says `truncated: true`. Default 1,048,576 (1 Mi).
   */
  readonly maxScanChars?: number | undefined
}

/**
 * How redacted text is masked: `'label'` (the default) puts `[REDACTED:<entryId>]` in place of each
 * (merged) finding, `{ fill: '*' }` repeats one character so the text keeps its length and layout.
 */
export type DlpMask = 'label' | { readonly fill: string }

/** Who a matcher's hits belong to: one matcher serves every profile entry with the same type and value. */
export interface DlpOwner {
  readonly profileId: string
  readonly entryId: string
  /** The entry's place among all entries of all profiles, which orders findings of the same span. */
  readonly order: number
}

/** A hit of one matcher: a span of the text. */
export interface DlpSpan {
  readonly start: number
  readonly end: number
}

/**
 * Where one matcher's left-to-right walk stopped. `cursor` is where the walk goes on: every hit starting
 * before it has been found, so text before the smallest cursor of all matchers is decided.
 */
export interface DlpWalk {
  readonly spans: DlpSpan[]
  readonly cursor: number
}

/**
 * One compiled way of finding hits (a built-in detector, a keyword, or an RE2 pattern). Internal: the
 * scanners drive it, hosts never call it.
 */
export interface DlpMatcher {
  /** `detector:credit_card`, `keyword:secret`, `pattern:...`: names the matcher in error messages. */
  readonly key: string
  /**
   * The most characters a hit, together with the text its validation looks at after it, can span from where
   * its candidate starts; `undefined` for an RE2 pattern, whose matches can be of any length.
   */
  readonly reach: number | undefined
  /**
   * How many characters past a position decide whether a candidate can start there, when none does (see
   * `Detector.startReach`); `undefined` for an RE2 pattern, for which the window stands in.
   */
  readonly startReach: number | undefined
  readonly owners: readonly DlpOwner[]
  /**
   * Walks the text from `from`. Unless `final`, the text may go on: the walk stops at the first position
   * where a candidate may start that more text could still change (one not yet settled, with less than its
   * reach of text after it), and goes past positions where none can start. `window` is the reach of an RE2
   * pattern's matches.
   */
  walk(text: string, from: number, final: boolean, window: number): DlpWalk
}

/** What `compileDlpProfiles` makes; pass it to `scanText` and `createStreamScanner`. */
export interface CompiledDlpProfiles {
  /** The profile ids, in the order given. */
  readonly profileIds: readonly string[]
  readonly maxScanChars: number
  /**
   * The longest span a built-in detector or keyword of these profiles can report, lookahead included: the
   * least `holdBackChars` (the cap on held-back text) a stream scanner may be given, and its default when
   * longer than 256.
   */
  readonly maxFindingChars: number
  /** Whether some entry is an RE2 pattern, whose matches have no known longest length. */
  readonly hasPatterns: boolean
  /** @internal */
  readonly matchers: readonly DlpMatcher[]
}
