import type { MaybePromise } from './types.js'

/** A store call that did not answer within its time. */
export class StoreTimeoutError extends Error {
  constructor(ms: number) {
    super(`the store did not answer within ${ms} ms`)
    this.name = 'StoreTimeoutError'
  }
}

/**
 * Bounds a store call by `ms`. A synchronous answer (the memory stores) comes back as it is, with no timer
 * and no promise; a promise is raced against a timer that is always cleared.
 */
export function withinTime<T>(value: MaybePromise<T>, ms: number): MaybePromise<T> {
  if (!(value instanceof Promise)) return value
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreTimeoutError(ms)), ms)
  })
  // A call that loses the race may still fail later; that rejection has nobody left to hear it.
  value.catch(() => {})
  return Promise.race([value, timeout]).finally(() => clearTimeout(timer))
}

/** Calls `call` and bounds it; a synchronous throw becomes a rejection like any other store failure. */
export function callStore<T>(call: () => MaybePromise<T>, ms: number): MaybePromise<T> {
  try {
    return withinTime(call(), ms)
  } catch (error) {
    return Promise.reject(error)
  }
}
