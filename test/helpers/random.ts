/**
 * A seeded xorshift32 generator: `random(n)` is an integer in [0, n), the same sequence on every run, so a
 * failing random case can be run again.
 */
export function seededRandom(seed: number): (n: number) => number {
  let state = seed
  return (n) => {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    return (state >>> 0) % n
  }
}
