import { inject } from 'vitest'
import type { ProvidedServices } from '../setup/provided.js'

/**
 * The real services some suites run against, as the run's global setup (test/setup/probe-services.ts) found
 * them: `REDIS_URL` / `DATABASE_URL` when set, else Redis and PostgreSQL at their local defaults. A service
 * that did not answer is `undefined` here and its suites are reported as skipped (the run said why at its
 * start); under CI (`CI=true`) the run fails instead, so a green CI always means they ran.
 */
const services: ProvidedServices = inject('services')

export const REDIS_URL = services.redisUrl
export const DATABASE_URL = services.databaseUrl

/** A name no other test file or run uses, for Redis key prefixes and Postgres schemas. */
export function uniqueName(label: string): string {
  return `${label}_${process.pid}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
}
