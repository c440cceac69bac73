import { StoreTimeoutError } from '../errors.js'
import type { MaybePromise } from './types.js'

export { StoreTimeoutError } from '../errors.js'

/**
 * Bounds a store call by `ms`. A synchronous answer (the memory stores) comes back as it is, with no timer
 * and no promise; a promise is raced against a timer that is always cleared.
 *
 * When the timer fires, the call is given up only after one more turn of the event loop's I/O: a turn that
 * ran long (a burst of requests, a cold start, a busy CPU) delays timers and socket reads alike, and an
 * answer already waiting in the socket is then read instead of being discarded for the fallback. The wait
 * is therefore `ms` plus at most one turn of the loop; a store that has not answered is still given up.
 *
 * `onLate` receives an answer that arrives after the call was given up (its caller has decided without it),
 * so the caller can undo what the store did; a late failure is dropped, as nobody is left to hear it.
 */
export function withinTime<T>(
  value: MaybePromise<T>,
  ms: number,
  onLate?: (value: T) => void,
): MaybePromise<T> {
  if (!(value instanceof Promise)) return value
  return new Promise<T>((resolve, reject) => {
    let settled = false
    let givenUp = false
    const timer = setTimeout(() => {
      setImmediate(() => {
        if (settled) return
        givenUp = true
        reject(new StoreTimeoutError(ms))
      })
    }, ms)
    // The clock alone must not keep the host's process alive: whatever the store waits on does that.
    timer.unref()
    value.then(
      (result) => {
        settled = true
        clearTimeout(timer)
        if (!givenUp) resolve(result)
        else onLate?.(result)
      },
      (error: unknown) => {
        settled = true
        clearTimeout(timer)
        if (!givenUp) reject(error)
      },
    )
  })
}

/** Calls `call` and bounds it; a synchronous throw becomes a rejection like any other store failure. */
export function callStore<T>(
  call: () => MaybePromise<T>,
  ms: number,
  onLate?: (value: T) => void,
): MaybePromise<T> {
  try {
    return withinTime(call(), ms, onLate)
  } catch (error) {
    return Promise.reject(error)
  }
}
