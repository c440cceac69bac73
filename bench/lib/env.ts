// The benches' knobs come from the environment; a value they cannot use stops the run before it starts,
// rather than measuring something other than what was asked for.

/** A positive number, or `fallback` when the variable is unset or empty. */
export function numberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!(value > 0)) throw new Error(`${name} must be a positive number, got '${raw}'`)
  return value
}

export function optionalNumberFromEnv(name: string): number | undefined {
  const raw = process.env[name]
  return raw === undefined || raw === '' ? undefined : numberFromEnv(name, 0)
}

/** A positive whole number, or `fallback`. */
export function countFromEnv(name: string, fallback: number): number {
  const value = numberFromEnv(name, fallback)
  if (!Number.isInteger(value)) throw new Error(`${name} must be a whole number, got '${process.env[name]}'`)
  return value
}

/** A comma-separated choice among `known`, or `fallback` when the variable is unset or blank. */
export function listFromEnv<T extends string>(
  name: string,
  known: readonly T[],
  fallback: readonly T[] = known,
): readonly T[] {
  const raw = process.env[name]
  if (raw === undefined || raw.trim() === '') return fallback
  const picked = raw.split(',').map((item) => item.trim())
  const unknown = picked.filter((item) => !(known as readonly string[]).includes(item))
  if (unknown.length > 0)
    throw new Error(`${name}: unknown ${unknown.join(', ')} (known: ${known.join(', ')})`)
  return picked as T[]
}

/** `BENCH_SERVER_ARGS`: node flags for the servers under test (`--cpu-prof`, `--perf-basic-prof`). */
export function serverNodeArgsFromEnv(): readonly string[] {
  return (process.env.BENCH_SERVER_ARGS ?? '').split(/\s+/).filter(Boolean)
}

/** What made a run's figures doubtful: printed as it happens and again under the tables. */
export const problems: string[] = []

export function warn(problem: string): void {
  problems.push(problem)
  console.error(`\n!!!!! WARNING: ${problem} !!!!!\n`)
}
