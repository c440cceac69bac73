import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Resolves once `condition()` holds, for things that give no event of their own (a mock that only records
 * calls in an array). It checks again every few milliseconds for as long as it takes, with no deadline of
 * its own: the test's timeout is the limit, so a slow machine makes it slower but never fails it.
 */
export async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(5)
}

/**
 * Resolves with `value()` once it is not `undefined`, for a condition that needs asking asynchronously (a
 * log store, Redis). Like `until`, it asks again every few milliseconds (each time once the last answer is
 * in) with no deadline of its own; a rejection from `value()` rejects at once.
 * @example
 * const record = await eventually(() => store.get(id))
 * await eventually(async () => ((await redis.keys('cache:*')).length === 20 ? true : undefined))
 */
export async function eventually<T>(value: () => Promise<T | undefined> | T | undefined): Promise<T> {
  for (;;) {
    const found = await value()
    if (found !== undefined) return found
    await sleep(5)
  }
}
