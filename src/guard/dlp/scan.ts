import type { CompiledDlpProfiles, DlpFinding, DlpMatcher, DlpScanResult, DlpSpan } from './types.js'

/**
 * Scans a text with compiled profiles. Reads at most `maxScanChars` characters (UTF-16 code units): a
 * longer text is scanned only up to there and the result says `truncated: true`, so the time and memory one
 * scan takes are bounded whatever the input. A finding that runs over the cut is reported up to the cut or
 * not at all (a card number cut in half no longer passes Luhn); a caller that must not pass unscanned text
 * on treats `truncated` as a finding of its own.
 *
 * @example
 * const dlp = compileDlpProfiles(['pii'])
 * scanText(dlp, 'write to ana@example.com')
 * // { findings: [{ profileId: 'pii', entryId: 'email', start: 9, end: 24 }], truncated: false }
 */
export function scanText(compiled: CompiledDlpProfiles, text: string): DlpScanResult {
  const truncated = text.length > compiled.maxScanChars
  const input = truncated ? text.slice(0, compiled.maxScanChars) : text
  const hits: Hit[] = []
  for (const matcher of compiled.matchers) {
    for (const span of matcher.walk(input, 0, true, 0).spans) hits.push({ span, matcher })
  }
  return { findings: findingsOf(hits), truncated }
}

/** A span and the matcher that found it. */
export interface Hit {
  readonly span: DlpSpan
  readonly matcher: DlpMatcher
}

/**
 * One finding per hit and owner, ordered by start, end, then entry order, with `offset` added to positions.
 *
 * @example
 * findingsOf([{ span: { start: 3, end: 9 }, matcher }], 100) // [{ ..., start: 103, end: 109 }]
 */
export function findingsOf(hits: readonly Hit[], offset = 0): DlpFinding[] {
  const ordered: { finding: DlpFinding; order: number }[] = []
  for (const { span, matcher } of hits) {
    for (const { profileId, entryId, order } of matcher.owners) {
      ordered.push({
        finding: { profileId, entryId, start: span.start + offset, end: span.end + offset },
        order,
      })
    }
  }
  ordered.sort(
    (a, b) => a.finding.start - b.finding.start || a.finding.end - b.finding.end || a.order - b.order,
  )
  return ordered.map(({ finding }) => finding)
}
