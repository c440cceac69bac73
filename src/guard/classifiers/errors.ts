/**
 * The one failure a classifier reports: it could not classify. The guard step reads it as the reference's
 * "scanner unavailable": it answers 503 when a rule of that phase blocks, and lets the request through,
 * recording the scanner as unavailable, when every rule only flags.
 */

/** Why a classifier could not classify: it took too long, or it failed (backend error, unreadable answer). */
export type GuardClassifierUnavailableReason = 'timeout' | 'error'

const brand = Symbol.for('ai-gateway-middleware.error.guard-classifier-unavailable')

/**
 * A classifier could not give a verdict. `classifier` is the classifier's `id`; `reason` says whether it ran
 * out of time or failed; `cause` holds the underlying error, if any. `instanceof` recognises errors from
 * another copy of this package too (ESM and CJS builds side by side).
 *
 * @example
 * try {
 *   await classifier.classify(text, 'prompt', { signal })
 * } catch (error) {
 *   if (error instanceof GuardClassifierUnavailable && error.reason === 'timeout') metrics.increment('guard.timeout')
 * }
 */
export class GuardClassifierUnavailable extends Error {
  override readonly name = 'GuardClassifierUnavailable'
  readonly classifier: string
  readonly reason: GuardClassifierUnavailableReason

  constructor(
    classifier: string,
    reason: GuardClassifierUnavailableReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`Guard classifier ${classifier} unavailable: ${message}`, options)
    this.classifier = classifier
    this.reason = reason
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true
  }

  get [brand](): true {
    return true
  }
}

/**
 * What a classifier rejects with when a call it made failed: the caller's abort reason as it is when the
 * caller aborted (nothing is unavailable, the answer is no longer wanted), a `GuardClassifierUnavailable`
 * as it is, anything else wrapped as an `error` one.
 *
 * @example
 * try { await complete(request) } catch (error) { throw unavailable('llama-guard', error, signal) }
 */
export function unavailable(classifier: string, error: unknown, signal: AbortSignal): unknown {
  if (signal.aborted) return signal.reason
  if (error instanceof GuardClassifierUnavailable) return error
  const detail = error instanceof Error ? error.message : String(error)
  return new GuardClassifierUnavailable(classifier, 'error', detail, { cause: error })
}
