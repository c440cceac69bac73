import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { LogRecord, LogStore } from 'ai-gateway-middleware'
import { createPostgresLogStore } from 'ai-gateway-middleware/postgres'
import pg from 'pg'
import { countFromEnv, listFromEnv } from './lib/env.js'
import { formatTable } from './lib/report.js'
import { median } from './lib/rounds.js'

// What the Postgres log store's writes cost, per record: CPU time of this process (building the statement,
// the driver's encoding) and of the Postgres backend that runs it (read from /proc, so only a Postgres on
// this machine counts), for batches of 100 records as the log queue writes them. Bodies of the bench's
// size, and a 20 KB prompt. With `BENCH_BASELINE` (a built checkout), that build's store runs beside this
// one, round for round, each on a table of its own.
//
//   npm run build && npx tsx bench/log-writes.ts
//   BENCH_BASELINE=/tmp/base npx tsx bench/log-writes.ts
//   BENCH_BUILDS=this BENCH_BODIES=small BENCH_ROUNDS=1 valgrind --tool=callgrind node --import tsx bench/log-writes.ts

const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test'
const BATCH = 100
const BATCHES = countFromEnv('BENCH_BATCHES', 50)
const ROUNDS = countFromEnv('BENCH_ROUNDS', 3)

type CreateStore = typeof createPostgresLogStore

// A full collection before each measure: the garbage of the one before (100 MB of 20 KB prompts) would
// otherwise be collected, and counted, in the next.
setFlagsFromString('--expose-gc')
const collectGarbage = runInNewContext('gc') as () => void

const COMPLETION_TEXT =
  'Hello! This is a fixed answer from the benchmark upstream. It is long enough to look like a real short completion.'

const BODY_KINDS = ['small', 'prompt-20k'] as const

interface Bodies {
  readonly name: (typeof BODY_KINDS)[number]
  readonly request: string
  readonly response: string
}

const prompt = (text: string) =>
  JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] })

const ALL_BODIES: readonly Bodies[] = [
  {
    name: 'small',
    request: prompt('Say hello to the benchmark.'),
    response: JSON.stringify({
      choices: [
        { index: 0, message: { role: 'assistant', content: COMPLETION_TEXT }, finish_reason: 'stop' },
      ],
      usage: { prompt_tokens: 12, completion_tokens: 48, total_tokens: 60 },
    }),
  },
  {
    name: 'prompt-20k',
    // Quoted words and line breaks, as a chat history holds: JSON text with escapes of its own.
    request: prompt('He said "hello" to the benchmark.\nIt answered.\n'.repeat(420)),
    response: JSON.stringify({ stream: true, content: COMPLETION_TEXT, finishReason: 'stop', events: 24 }),
  },
]

// `BENCH_BODIES` and `BENCH_BUILDS` pick rows: one build and bodies alone, to count it under callgrind.
const BODIES = ALL_BODIES.filter((bodies) => listFromEnv('BENCH_BODIES', BODY_KINDS).includes(bodies.name))
const BUILDS = listFromEnv('BENCH_BUILDS', ['this', 'baseline'])

function record(bodies: Bodies, createdAt: number): LogRecord {
  return {
    id: randomUUID(),
    createdAt,
    provider: 'openai',
    model: 'gpt-4o-mini',
    path: '/ai/openai/chat/completions',
    success: true,
    statusCode: 200,
    cached: false,
    durationMs: 3,
    ttfbMs: 2,
    tokensIn: 12,
    tokensOut: 48,
    cost: 0.0000306,
    customCost: false,
    metadata: {},
    step: null,
    eventId: null,
    attempts: 1,
    requestSize: bodies.request.length,
    responseSize: bodies.response.length,
    outcome: 'success',
    errorCode: null,
    principal: null,
    requestBody: bodies.request,
    responseBody: bodies.response,
    feedback: null,
    score: null,
  }
}

/** User and system CPU of a process on this machine, in µs, from /proc (clock ticks of 10 ms). */
function processCpuUs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10_000
}

interface Build {
  readonly name: string
  readonly schema: string
  readonly pool: pg.Pool
  readonly store: LogStore
  readonly backendPid: number
}

async function openBuild(name: string, create: CreateStore): Promise<Build> {
  // One connection: every write of a build runs on the backend whose CPU is counted.
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1, idleTimeoutMillis: 0 })
  const schema = `aigw_writes_${process.pid}_${name}`
  const store = await create(pool, { schema })
  const { rows } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
  return { name, schema, pool, store, backendPid: rows[0]!.pid }
}

async function baselineCreate(): Promise<CreateStore | undefined> {
  const root = process.env.BENCH_BASELINE
  if (!root) return undefined
  if (!isAbsolute(root)) throw new Error('BENCH_BASELINE must be the absolute path of a built checkout')
  const module = await import(pathToFileURL(join(root, 'dist', 'src/postgres/index.js')).href)
  return module.createPostgresLogStore as CreateStore
}

/** µs of CPU per record, here and in Postgres, over `BATCHES` batches (records made before the clock starts). */
async function measure(build: Build, bodies: Bodies): Promise<{ here: number; postgres: number }> {
  const batches = Array.from({ length: BATCHES }, (_, b) =>
    Array.from({ length: BATCH }, (_, i) => record(bodies, Date.now() + b * BATCH + i)),
  )
  collectGarbage()
  const hereBefore = process.cpuUsage()
  const postgresBefore = processCpuUs(build.backendPid)
  for (const batch of batches) await build.store.write(batch)
  const here = process.cpuUsage(hereBefore)
  const postgres = processCpuUs(build.backendPid) - postgresBefore
  // Emptied after each measure, so every one writes into a table of the same size (and 20 KB prompts do not
  // pile up gigabytes).
  await build.pool.query(`TRUNCATE ${build.schema}.ai_gateway_logs`)
  const records = BATCHES * BATCH
  return { here: (here.user + here.system) / records, postgres: postgres / records }
}

const builds: Build[] = []
try {
  const creates: [string, CreateStore][] = []
  if (BUILDS.includes('this')) creates.push(['this', createPostgresLogStore])
  const baseline = BUILDS.includes('baseline') ? await baselineCreate() : undefined
  if (baseline !== undefined) creates.push(['baseline', baseline])
  if (creates.length === 0) throw new Error('BENCH_BUILDS=baseline needs BENCH_BASELINE')
  for (const [name, create] of creates) builds.push(await openBuild(name, create))
  const figures = new Map<string, { here: number[]; postgres: number[] }>()
  for (let round = 0; round < ROUNDS; round++) {
    for (const bodies of BODIES) {
      // Each build first in every other round.
      for (const build of round % 2 === 0 ? builds : [...builds].reverse()) {
        const key = `${build.name}\0${bodies.name}`
        const { here, postgres } = await measure(build, bodies)
        const entry = figures.get(key) ?? { here: [], postgres: [] }
        entry.here.push(here)
        entry.postgres.push(postgres)
        figures.set(key, entry)
      }
    }
  }
  const rows = [...figures].map(([key, { here, postgres }]) => {
    const [build, bodies] = key.split('\0')
    return [build!, bodies!, median(here).toFixed(1), median(postgres).toFixed(1)]
  })
  console.log(
    `Postgres log store writes: batches of ${BATCH}, ${BATCHES} a round, median of ${ROUNDS} rounds (node ${process.version})`,
  )
  console.log(formatTable(['build', 'bodies', 'µs/record here', 'µs/record Postgres'], rows))
} finally {
  for (const build of builds) {
    await build.pool.query(`DROP SCHEMA IF EXISTS ${build.schema} CASCADE`)
    await build.pool.end()
  }
}
