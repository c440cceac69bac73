/**
 * A classifier on its own clock. The reference's guardrails add about half a second to a request; a
 * classifier backend that hangs must not hold the request for the whole upstream timeout, so each call
 * gets its own deadline, after which the guard step applies its "scanner unavailable" policy.
 */

import { GatewayOptionsError } from '../../errors.js'
import { GuardClassifierUnavailable, unavailable } from './errors.js'
import { MAX_TIMER_MS } from './options.js'
import type { GuardClassifier, GuardVerdict } from './types.js'

/**
 * Wraps `classifier` so that each call settles within `ms` milliseconds. At the deadline the call rejects
 * with `GuardClassifierUnavailable` (reason `timeout`) and the signal the classifier was given is aborted
 * with that error, so its backend request stops. A failure of the classifier rejects with
 * `GuardClassifierUnavailable` (reason `error`, the failure as `cause`) unless it is one already; an abort
 * of the caller's signal rejects at once with the signal's reason. The timer is cleared as soon as the
 * call settles, and a late outcome of the wrapped call is consumed, never left as an unhandled rejection.
 * Throws `GatewayOptionsError` when `ms` is not a whole number from 1 to 2147483647. Put it outermost
 * (`withDeadline(withChunking(classifier, ...), ms)`) for one deadline over all the chunks of a text.
 *
 * @example
 * const guard = withDeadline(createLlamaGuardClassifier({ model, complete }), 1500)
 * await guard.classify(text, 'prompt', { signal }) // GuardClassifierUnavailable { reason: 'timeout' } after 1.5 s
 */
export function withDeadline(classifier: GuardClassifier, ms: number): GuardClassifier {
  if (!Number.isInteger(ms) || ms < 1 || ms > MAX_TIMER_MS) {
    throw new GatewayOptionsError(
      `Invalid deadline: expected a whole number of ms from 1 to ${MAX_TIMER_MS}, got ${ms}`,
    )
  }
  const { id } = classifier
  return {
    id,
    classify(text, phase, context): Promise<GuardVerdict> {
      const outer = context.signal
      if (outer.aborted) return Promise.reject(outer.reason)
      const controller = new AbortController()
      return new Promise<GuardVerdict>((resolve, reject) => {
        let settled = false
        const settle = (): boolean => {
          if (settled) return false
          settled = true
          clearTimeout(timer)
          outer.removeEventListener('abort', onAbort)
          return true
        }
        const onAbort = (): void => {
          if (!settle()) return
          controller.abort(outer.reason)
          reject(outer.reason)
        }
        const timer = setTimeout(() => {
          if (!settle()) return
          const error = new GuardClassifierUnavailable(id, 'timeout', `no verdict within ${ms} ms`)
          controller.abort(error)
          reject(error)
        }, ms)
        outer.addEventListener('abort', onAbort, { once: true })
        let call: Promise<GuardVerdict>
        try {
          call = Promise.resolve(classifier.classify(text, phase, { ...context, signal: controller.signal }))
        } catch (error) {
          call = Promise.reject(error)
        }
        // Both outcomes are handled here, after the deadline too, so a late rejection is never unhandled.
        call.then(
          (verdict) => {
            if (settle()) resolve(verdict)
          },
          (error: unknown) => {
            if (settle()) reject(unavailable(id, error, outer))
          },
        )
      })
    },
  }
}
