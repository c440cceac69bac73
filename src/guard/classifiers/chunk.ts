/**
 * Long text, classified in pieces. Classifier models read a bounded window (Prompt Guard 512 tokens, Llama
 * Guard its context) and silently drop what lies beyond it, so an injection appended to a long document
 * would go unseen. Cutting the text into overlapping chunks, classifying each and keeping the highest score
 * per category makes every part of the text count.
 */
import { z } from 'zod'
import { isHighSurrogate, isLowSurrogate } from '../../surrogates.js'
import { unavailable } from './errors.js'
import { parseOptions, whole } from './options.js'
import type { GuardClassifier, GuardVerdict } from './types.js'
import { mergeVerdicts } from './verdict.js'

/** The shortest chunk accepted: shorter ones cost a call each for almost no text. */
export const MIN_CHUNK_CHARS = 64
/** The most calls one classification makes at once. */
export const MAX_CONCURRENCY = 64

/** How `withChunking` and `splitText` cut text. */
export interface ChunkOptions {
  /** The longest chunk, in UTF-16 code units (JavaScript string length). */
  readonly maxChars: number
  /**
   * How much of the end of a chunk the next one repeats, so a phrase cut in two is still seen whole once.
   * Less than half of `maxChars`. Default: a tenth of `maxChars`.
   */
  readonly overlapChars?: number | undefined
  /** How many chunks are classified at once. Default 4. */
  readonly concurrency?: number | undefined
}

/** How much of a chunk of `maxChars` the next one repeats unless told: a tenth of it. */
export function defaultOverlapChars(maxChars: number): number {
  return Math.floor(maxChars / 10)
}

/** A chunk may end this far before its limit to end at white space instead of inside a word. */
const BREAK_WINDOW = 0.1

/**
 * Cuts `text` into chunks of at most `maxChars`, each starting `overlapChars` before the previous one
 * ended. A chunk ends after white space when some lies in its last tenth, and never inside a surrogate
 * pair. Text that fits is one chunk, the empty text included.
 *
 * @example
 * splitText('a'.repeat(250), 100, 10).map((chunk) => chunk.length) // [100, 100, 70]
 */
export function splitText(
  text: string,
  maxChars: number,
  overlapChars = defaultOverlapChars(maxChars),
): string[] {
  if (!Number.isInteger(maxChars) || maxChars < MIN_CHUNK_CHARS) {
    throw new RangeError(`maxChars must be a whole number of at least ${MIN_CHUNK_CHARS}`)
  }
  if (!Number.isInteger(overlapChars) || overlapChars < 0 || overlapChars * 2 >= maxChars) {
    throw new RangeError('overlapChars must be a whole number from 0 to less than half of maxChars')
  }
  const chunks: string[] = []
  let start = 0
  for (;;) {
    if (text.length - start <= maxChars) {
      chunks.push(text.slice(start))
      return chunks
    }
    const end = cutPoint(text, start + maxChars, Math.floor(maxChars * BREAK_WINDOW))
    chunks.push(text.slice(start, end))
    // A chunk is at least 90% of maxChars long and the overlap under half of it, so `start` always moves on.
    start = end - overlapChars
    if (isLowSurrogate(text.charCodeAt(start)) && isHighSurrogate(text.charCodeAt(start - 1))) start--
  }
}

/** Where to end a chunk whose limit is `limit`: after the last white space within `window`, else at the limit. */
function cutPoint(text: string, limit: number, window: number): number {
  for (let index = limit - 1; index >= limit - window; index--) {
    if (isSpace(text.charCodeAt(index))) return index + 1
  }
  return isLowSurrogate(text.charCodeAt(limit)) && isHighSurrogate(text.charCodeAt(limit - 1))
    ? limit - 1
    : limit
}

function isSpace(code: number): boolean {
  return code === 0x20 || (code >= 0x09 && code <= 0x0d) || code === 0xa0 || code === 0x3000
}

/**
 * Runs `run` on every item, at most `concurrency` at a time, and resolves with the results in item order.
 * The first failure aborts the signal handed to the calls still running, starts no more, and is what it
 * rejects with; an abort of `signal` rejects with the signal's reason. Every call's outcome is awaited or
 * handled, so no rejection is left unhandled.
 *
 * @example
 * const scores = await mapBounded(chunks, 4, signal, (chunk, signal) => score(chunk, signal))
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  concurrency: number,
  signal: AbortSignal,
  run: (item: T, signal: AbortSignal) => Promise<R>,
): Promise<R[]> {
  signal.throwIfAborted()
  const controller = new AbortController()
  const onAbort = (): void => controller.abort(signal.reason)
  signal.addEventListener('abort', onAbort, { once: true })
  const results: R[] = new Array(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length && !controller.signal.aborted) {
      const index = next++
      results[index] = await run(items[index]!, controller.signal)
    }
  }
  try {
    const workers = Array.from({ length: Math.min(concurrency, items.length) }, () =>
      worker().catch((error: unknown) => {
        controller.abort(error)
        throw error
      }),
    )
    await Promise.all(workers)
    // Calls that ignored the abort can still resolve; the items never started leave holes.
    controller.signal.throwIfAborted()
    return results
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

const chunkOptions = z
  .strictObject({
    maxChars: whole(MIN_CHUNK_CHARS, 10_000_000),
    overlapChars: whole(0, 5_000_000).optional(),
    concurrency: whole(1, MAX_CONCURRENCY).optional(),
  })
  .refine((options) => options.overlapChars === undefined || options.overlapChars * 2 < options.maxChars, {
    message: 'must be less than half of maxChars',
    path: ['overlapChars'],
  })

/**
 * Makes any classifier take text of any length: text longer than `maxChars` is split (`splitText`), the
 * chunks classified with at most `concurrency` calls at once, and their verdicts merged, each category with
 * its highest score. Shorter text goes to the classifier as it is. In the answer phase every chunk is
 * classified with the same `context.prompt`. The first chunk that fails stops the others; failures other
 * than the caller's abort reject with `GuardClassifierUnavailable`. Throws `GatewayOptionsError` for bad
 * options.
 *
 * @example
 * const guard = withChunking(createLlamaGuardClassifier({ model, complete }), { maxChars: 8000, concurrency: 2 })
 */
export function withChunking(classifier: GuardClassifier, options: ChunkOptions): GuardClassifier {
  const { maxChars, overlapChars, concurrency } = parseOptions(chunkOptions, options, 'chunking')
  const overlap = overlapChars ?? defaultOverlapChars(maxChars)
  const parallel = concurrency ?? 4
  return {
    id: classifier.id,
    async classify(text, phase, context): Promise<GuardVerdict> {
      context.signal.throwIfAborted()
      try {
        if (text.length <= maxChars) return await classifier.classify(text, phase, context)
        const chunks = splitText(text, maxChars, overlap)
        const verdicts = await mapBounded(chunks, parallel, context.signal, (chunk, signal) =>
          classifier.classify(chunk, phase, { ...context, signal }),
        )
        return mergeVerdicts(verdicts)
      } catch (error) {
        throw unavailable(classifier.id, error, context.signal)
      }
    },
  }
}
