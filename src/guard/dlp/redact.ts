import { GatewayOptionsError } from '../../errors.js'
import type { DlpMask } from './types.js'

/** A span to mask and the entries it was found by. */
export interface MaskSpan {
  readonly start: number
  readonly end: number
  readonly entryIds: readonly string[]
}

/**
 * Replaces each finding in `text` with a mask. Overlapping findings are merged first and masked once, so
 * no part of either shows; findings that only touch stay apart. With the default `'label'` mask a merged
 * region reads `[REDACTED:<entryId>]`, with the ids of all its entries, in order, joined by commas;
 * `{ fill: '*' }` masks every UTF-16 code unit with that character instead, keeping the text's length and
 * every offset after the finding. Findings are clamped to the text.
 *
 * @example
 * const text = 'card 4111 1111 1111 1111, mail ana@example.com'
 * redactText(text, scanText(dlp, text).findings) // 'card [REDACTED:credit_card], mail [REDACTED:email]'
 * redactText(text, scanText(dlp, text).findings, { fill: '#' })
 * // 'card ###################, mail ###############'
 */
export function redactText(
  text: string,
  findings: readonly { readonly start: number; readonly end: number; readonly entryId: string }[],
  mask: DlpMask = 'label',
): string {
  checkMask(mask)
  return maskSpans(
    text,
    findings.map(({ start, end, entryId }) => ({ start, end, entryIds: [entryId] })),
    mask,
  )
}

/** Throws `GatewayOptionsError` unless `mask` is `'label'` or `{ fill }` with a single character. */
export function checkMask(mask: DlpMask): void {
  if (mask === 'label') return
  if (typeof mask === 'object' && mask !== null && typeof mask.fill === 'string' && mask.fill.length === 1)
    return
  throw new GatewayOptionsError("Invalid DLP mask: expected 'label' or { fill: <one character> }")
}

/** `redactText` over spans that may carry several entry ids; `mask` is already checked. */
export function maskSpans(text: string, spans: readonly MaskSpan[], mask: DlpMask): string {
  const clamped = spans.map(({ start, end, entryIds }) => ({
    start: Math.max(0, Math.min(start, text.length)),
    end: Math.max(0, Math.min(end, text.length)),
    entryIds,
  }))
  const parts: string[] = []
  let written = 0
  for (const { start, end, entryIds } of mergeSpans(clamped)) {
    parts.push(text.slice(written, start))
    parts.push(mask === 'label' ? `[REDACTED:${entryIds.join(',')}]` : mask.fill.repeat(end - start))
    written = end
  }
  parts.push(text.slice(written))
  return parts.join('')
}

/**
 * Non-empty spans in order, overlapping ones merged into one with the ids of all, in order; spans that only
 * touch stay apart.
 */
export function mergeSpans(spans: readonly MaskSpan[]): MaskSpan[] {
  const sorted = spans
    .filter(({ start, end }) => end > start)
    .sort((a, b) => a.start - b.start || a.end - b.end)
  const merged: MaskSpan[] = []
  let index = 0
  while (index < sorted.length) {
    const first = sorted[index]!
    let end = first.end
    const ids = new Set(first.entryIds)
    for (index++; index < sorted.length && sorted[index]!.start < end; index++) {
      end = Math.max(end, sorted[index]!.end)
      for (const id of sorted[index]!.entryIds) ids.add(id)
    }
    merged.push({ start: first.start, end, entryIds: [...ids] })
  }
  return merged
}
