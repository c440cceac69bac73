import { readFileSync } from 'node:fs'
import { createGateway, type LogStore } from 'ai-gateway-middleware'
import { aiGateway } from 'ai-gateway-middleware/fastify'
import { createPostgresLogStore } from 'ai-gateway-middleware/postgres'
import Fastify from 'fastify'
import pg from 'pg'
import type { LogStoreKind } from '../lib/targets.js'
import { count, gatewayOptions, onShutdown, reportListening, reportLogStats } from './shared.js'

// The Fastify gateway of `gateway-fastify.ts` with its request logs turned off, or written to Postgres
// instead of the default memory store. Queue settings stay at their defaults (batches of 100, flushed at
// least every second): what a host gets without tuning. Each `gateway-fastify-logs-*` server is one call,
// and so is each `baseline-fastify*` server, with another build of the package (`baseline.ts`).

const POSTGRES_CONNECT_MS = 5_000
// The Postgres processes that work for every connection's writes, besides the connection's own backend.
const POSTGRES_WORKERS = ['background writer', 'checkpointer', 'walwriter']

/** What a server mounts: this checkout's package, or the same three exports of a baseline build. */
export interface Build {
  readonly createGateway: typeof createGateway
  readonly aiGateway: typeof aiGateway
  readonly createPostgresLogStore: typeof createPostgresLogStore
}

const THIS_BUILD: Build = { createGateway, aiGateway, createPostgresLogStore }

/** `memory` is the default store, as `gateway-fastify.ts` has it. */
export async function startLogsGateway(kind: LogStoreKind, build: Build = THIS_BUILD): Promise<void> {
  const postgres = kind === 'postgres' ? await connectPostgres(build) : undefined
  const logs = kind === 'off' ? { logs: false as const } : postgres ? { logs: { store: postgres.store } } : {}
  const gateway = build.createGateway({ ...gatewayOptions(), ...logs })
  // A failed batch is counted as dropped records and reported as a store error, never to the client: the
  // runner reads both so that such a row is flagged instead of passing for a row that wrote its records.
  gateway.events.on('store:error', () => count('storeErrors'))

  const app = Fastify()
  reportLogStats(gateway, app.server)
  await app.register(build.aiGateway, { prefix: '/ai', gateway })
  await app.listen({ host: '127.0.0.1', port: 0 })
  reportListening(app.server, postgres?.localPids ?? [])
}

interface PostgresConnection {
  readonly store: LogStore
  /** The Postgres processes on this machine that do this server's writes: their CPU is the bench's own. */
  readonly localPids: number[]
}

/**
 * Creates the log table in a schema of this process's own, dropped when it stops, and fails at once when
 * Postgres cannot be reached, rather than leaving the runner waiting for a port.
 */
async function connectPostgres(build: Build): Promise<PostgresConnection> {
  const url = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test'
  // The queue writes one batch at a time, so one connection is all it uses; kept open for the whole run so
  // that its backend is the one process counted as the store's.
  const pool = new pg.Pool({
    connectionString: url,
    max: 1,
    idleTimeoutMillis: 0,
    connectionTimeoutMillis: POSTGRES_CONNECT_MS,
  })
  // A connection lost mid-run must show up as failed writes (dropped records), not end the process.
  pool.on('error', () => {})
  const schema = `aigw_bench_${process.pid}`
  let store: LogStore
  try {
    store = await build.createPostgresLogStore(pool, { schema })
  } catch (error) {
    await pool.end().catch(() => {})
    throw new Error(`Postgres at ${url} is not usable: ${(error as Error).message}`)
  }
  onShutdown(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await pool.end()
  })
  const { rows } = await pool.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE pid = pg_backend_pid() OR backend_type = ANY($1)',
    [POSTGRES_WORKERS],
  )
  return { store, localPids: rows.map((row) => row.pid).filter(isLocalPostgres) }
}

/** Whether a process of that id on this machine is a Postgres server process (not one in a container). */
function isLocalPostgres(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('postgres')
  } catch {
    return false
  }
}
