/**
 * How a request spreads over interchangeable targets (the keys of a pool): the order in which they are
 * tried, the first one taking the request and the others standing by as its fallbacks.
 */
export interface BalanceSettings {
  /**
   * `weighted`: a random order in which each target comes first in proportion to its weight.
   * `latency`: the target answering fastest lately first (a moving average of the time to a committed
   * answer), the others after it by the same measure, and one whose last attempt failed after them all;
   * one request in `explore` takes the weighted order instead, so a slow target that recovered is noticed.
   */
  readonly strategy: 'weighted' | 'latency'
  readonly explore: number
}

export interface Weighted<T> {
  readonly item: T
  readonly weight: number
  /** What the latency book knows the item by. */
  readonly key: string
}

/** The average of a target whose last attempt failed: slower than any that answered. */
const FAILED = Number.MAX_VALUE

/** How much the latest observation moves a moving average: a few requests' worth of memory. */
const SMOOTHING = 0.2
const MAX_TRACKED = 4096

/**
 * Moving averages of how long targets take to give a committed answer, per target key, in this process.
 * Bounded: past `MAX_TRACKED` keys the oldest observed is forgotten.
 */
export class LatencyBook {
  readonly #averages = new Map<string, number>()

  observe(key: string, ms: number): void {
    const known = this.#averages.get(key)
    this.#set(key, known === undefined || known === FAILED ? ms : known + SMOOTHING * (ms - known))
  }

  /**
   * The target's last attempt failed. It has no time to average, but it must not pass for unmeasured,
   * which goes first: a target that never answers would then take every request first. It goes last
   * until it answers again.
   */
  failed(key: string): void {
    this.#set(key, FAILED)
  }

  #set(key: string, average: number): void {
    this.#averages.delete(key)
    this.#averages.set(key, average)
    if (this.#averages.size > MAX_TRACKED) this.#averages.delete(this.#averages.keys().next().value!)
  }

  average(key: string): number | undefined {
    return this.#averages.get(key)
  }
}

/** The items in the order they are to be tried; see `BalanceSettings`. */
export function balancedOrder<T>(
  items: readonly Weighted<T>[],
  settings: BalanceSettings,
  book: LatencyBook,
  random: () => number = Math.random,
): T[] {
  if (items.length < 2) return items.map((entry) => entry.item)
  if (settings.strategy === 'latency' && random() >= settings.explore) {
    // Unmeasured targets first: nothing is known of them until they have been tried.
    const latency = (entry: Weighted<T>) => book.average(entry.key) ?? -1
    return [...items].sort((a, b) => latency(a) - latency(b)).map((entry) => entry.item)
  }
  return weightedOrder(items, random)
}

/**
 * A random order in which each item comes first with probability weight / total, and so on for the rest
 * (Efraimidis and Spirakis: sort by u^(1/w) for uniform u, largest first).
 */
function weightedOrder<T>(items: readonly Weighted<T>[], random: () => number): T[] {
  return items
    .map((entry) => ({ item: entry.item, rank: random() ** (1 / entry.weight) }))
    .sort((a, b) => b.rank - a.rank)
    .map((entry) => entry.item)
}
