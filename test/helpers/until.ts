import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Resolves once `condition()` holds, for things that give no event of their own (a mock that only records
 * calls in an array). It checks again every few milliseconds for as long as it takes, with no deadline of
 * its own: the test's timeout is the limit, so a slow machine makes it slower but never fails it.
 */
export async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(5)
}
