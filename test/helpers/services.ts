/**
 * The real services some suites run against. Without `REDIS_URL` / `DATABASE_URL` those suites are reported
 * as skipped; under CI (`CI=true`) a missing service fails the run instead, so a green CI always means the
 * Redis and Postgres suites ran.
 */
function serviceUrl(variable: 'REDIS_URL' | 'DATABASE_URL'): string | undefined {
  const url = process.env[variable]
  if (url === undefined || url === '') {
    if (process.env.CI === 'true')
      throw new Error(`${variable} must be set in CI: the suites that need it would not run`)
    return undefined
  }
  return url
}

export const REDIS_URL = serviceUrl('REDIS_URL')
export const DATABASE_URL = serviceUrl('DATABASE_URL')

/** A name no other test file or run uses, for Redis key prefixes and Postgres schemas. */
export function uniqueName(label: string): string {
  return `${label}_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
}
