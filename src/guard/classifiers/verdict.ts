import { GUARD_CATEGORIES, type GuardCategory, type GuardHit, type GuardVerdict } from './types.js'

/** The verdict for text with nothing found. */
export const SAFE_VERDICT: GuardVerdict = Object.freeze({ unsafe: false, categories: Object.freeze([]) })

/**
 * A verdict from hits: each category once, with its highest score, in `GUARD_CATEGORIES` order, so equal
 * findings always read the same in logs and tests. `unsafe` is true with any hit, or when `unsafe` says so.
 *
 * @example
 * verdictOf([{ category: 'S10', score: 1 }, { category: 'S1', score: 0.5 }, { category: 'S1', score: 0.7 }])
 * // { unsafe: true, categories: [{ category: 'S1', score: 0.7 }, { category: 'S10', score: 1 }] }
 */
export function verdictOf(hits: Iterable<GuardHit>, unsafe = false): GuardVerdict {
  const best = new Map<GuardCategory, number>()
  for (const hit of hits) best.set(hit.category, Math.max(best.get(hit.category) ?? 0, hit.score))
  const categories = GUARD_CATEGORIES.flatMap((category) => {
    const score = best.get(category)
    return score === undefined ? [] : [{ category, score }]
  })
  return { unsafe: unsafe || categories.length > 0, categories }
}

/**
 * Merges the verdicts of parts of one text (chunks) or of several classifiers run on it: unsafe when any
 * is, each category with its highest score.
 *
 * @example
 * mergeVerdicts([{ unsafe: false, categories: [] }, { unsafe: true, categories: [{ category: 'P1', score: 0.98 }] }])
 * // { unsafe: true, categories: [{ category: 'P1', score: 0.98 }] }
 */
export function mergeVerdicts(verdicts: Iterable<GuardVerdict>): GuardVerdict {
  const hits: GuardHit[] = []
  let unsafe = false
  for (const verdict of verdicts) {
    unsafe ||= verdict.unsafe
    hits.push(...verdict.categories)
  }
  return verdictOf(hits, unsafe)
}
