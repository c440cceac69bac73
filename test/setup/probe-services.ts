/**
 * Vitest global setup: finds out once per run whether Redis and PostgreSQL answer, and tells the workers
 * (`inject('services')`, read by test/helpers/services.ts). Each is looked for at its environment variable
 * (`REDIS_URL`, `DATABASE_URL`) when set, else at the local default, so a machine with the services up runs
 * every suite with a plain `npm test`. One that does not answer gets one line at the start of the run and
 * its suites are skipped; under CI (`CI=true`) the run fails instead, so a green CI always ran them.
 */
import { Redis } from 'ioredis'
import pg from 'pg'
import type { TestProject } from 'vitest/node'
import type { ProvidedServices } from './provided.js'

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'
export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test'

// A local server answers in milliseconds; these only bound a probe of an address where nothing answers.
const CONNECT_TIMEOUT_MS = 1000
const ANSWER_TIMEOUT_MS = 3000

interface Service {
  name: string
  variable: 'REDIS_URL' | 'DATABASE_URL'
  fallback: string
  probe(url: string): Promise<void>
}

const SERVICES = {
  redisUrl: {
    name: 'Redis',
    variable: 'REDIS_URL',
    fallback: DEFAULT_REDIS_URL,
    probe: probeRedis,
  },
  databaseUrl: {
    name: 'PostgreSQL',
    variable: 'DATABASE_URL',
    fallback: DEFAULT_DATABASE_URL,
    probe: probePostgres,
  },
} satisfies Record<keyof ProvidedServices, Service>

export default async function setup(project: TestProject): Promise<void> {
  const entries = await Promise.all(
    Object.entries(SERVICES).map(async ([key, service]) => [key, await find(service)] as const),
  )
  const found = Object.fromEntries(entries) as unknown as ProvidedServices
  project.provide('services', found)
}

/** The service's URL when it answers; otherwise says why, once, and returns undefined (or throws in CI). */
async function find(service: Service): Promise<string | undefined> {
  const configured = process.env[service.variable]
  const fromEnv = configured !== undefined && configured !== ''
  const url = fromEnv ? configured : service.fallback
  const failure = await service.probe(url).then(
    () => undefined,
    (error: unknown) => reasonOf(error),
  )
  if (failure === undefined) return url
  const what = `${service.name} not reachable at ${shown(url)} (${fromEnv ? `${service.variable}; ` : ''}${failure})`
  if (process.env.CI === 'true') throw new Error(`${what}: CI must run the ${service.name} suites`)
  const hint = fromEnv ? '' : `; start it there, or set ${service.variable}, to run them`
  console.log(`${what}: the ${service.name} suites are skipped${hint}`)
  return undefined
}

async function probeRedis(url: string): Promise<void> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
  })
  // connect() rejects with a generic "Connection is closed"; the socket's own error says why.
  let cause: unknown
  client.on('error', (error) => {
    cause ??= error
  })
  try {
    await withinAnswerTime(
      client.connect().then(() => client.ping()),
      'Redis',
    )
  } catch (error) {
    throw cause ?? error
  } finally {
    client.disconnect()
  }
}

async function probePostgres(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS })
  client.on('error', () => {})
  try {
    await withinAnswerTime(
      client.connect().then(() => client.query('SELECT 1')),
      'PostgreSQL',
    )
  } finally {
    await client.end().catch(() => {})
  }
}

/** A server that takes the connection but never answers is as good as none. */
function withinAnswerTime<T>(work: Promise<T>, name: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const silent = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new Error(`${name} took the connection but did not answer within ${ANSWER_TIMEOUT_MS} ms`)),
      ANSWER_TIMEOUT_MS,
    )
  })
  return Promise.race([work, silent]).finally(() => clearTimeout(timer))
}

function reasonOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return reasonOf(error.errors[0])
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code
    // Node's network errors carry their errno name; a server's own refusal (a wrong password, a missing
    // database) is better told by its message.
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code
    return error.message
  }
  return String(error)
}

/** The URL without its password, if it has one. */
function shown(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password === '') return url
    parsed.password = '***'
    return parsed.toString()
  } catch {
    return url
  }
}
