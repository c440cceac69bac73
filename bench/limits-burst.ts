import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createGateway, type Gateway, type GatewayRequest, type LimitStore } from 'ai-gateway-middleware'
import { createRedisLimitStore } from 'ai-gateway-middleware/redis'
import { Redis } from 'ioredis'

// Exactness of a rate limit under a burst, with every rule option at its default but the store: `BURST`
// concurrent requests against a limit of `LIMIT`, driven through `gateway.handle()` to a bare node:http
// upstream that counts what reaches it. Rows: one gateway on the memory store; three gateways, each with its
// own ioredis client to one Redis (`sliding`, `fixed`); three gateways whose Redis is unreachable (every
// decision is the insurance limit's: the bound while failing open). Prints, per round, what was admitted
// (200), refused (429), forwarded, the store errors ridden over by the insurance limit, and the slowest
// store call (from the call to its answer, in ms: how close it came to the timeout).
//
//   npx tsx --conditions=ai-gateway-source bench/limits-burst.ts             # 5 warm rounds of each row
//   ROWS=redis-fixed ROUNDS=1 npx tsx ...   # one row alone, its round on a cold process
//   STORE_TIMEOUT_MS=100 npx tsx ...        # the rule with an explicit timeout (100 ms was the old default)
//   AUTO_PIPELINING=1 npx tsx ...           # clients with ioredis's enableAutoPipelining

const LIMIT = 60
const BURST = 300
const ROUNDS = Number(process.env.ROUNDS ?? 5)
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
/** STORE_TIMEOUT_MS=100 measures the rule with the old default timeout instead of its own default. */
const STORE_TIMEOUT_MS = process.env.STORE_TIMEOUT_MS ? Number(process.env.STORE_TIMEOUT_MS) : undefined

const COMPLETION = JSON.stringify({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
})

let received = 0
const upstream = createServer((req, res) => {
  received++
  req.resume()
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(COMPLETION))
})
upstream.listen(0, '127.0.0.1')
await once(upstream, 'listening')
const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`

function chat(i: number): GatewayRequest {
  return {
    method: 'POST',
    path: '/openai/chat/completions',
    search: '',
    headers: { 'content-type': 'application/json' },
    signal: new AbortController().signal,
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `burst ${i}` }] }),
  }
}

async function drain(body: unknown): Promise<void> {
  if (body !== null && typeof body === 'object' && Symbol.asyncIterator in body) {
    for await (const _ of body as AsyncIterable<unknown>) {
    }
  }
}

async function connect(): Promise<Redis> {
  const client = new Redis(REDIS_URL, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    // AUTO_PIPELINING=1: ioredis writes the commands of one tick in one write (measured: no better here).
    enableAutoPipelining: process.env.AUTO_PIPELINING === '1',
  })
  client.on('error', () => {})
  if (client.status !== 'ready') await once(client, 'ready')
  return client
}

interface Row {
  admitted: number
  refused: number
  forwarded: number
  storeErrors: number
  /** The longest a store call took from being made to being answered, in ms: how close it came to the timeout. */
  slowest: number
}

/** The store, timed: each consume from the call to its answer (or failure). */
function timed(store: LimitStore, record: (ms: number) => void): LimitStore {
  return {
    consume(...args) {
      const started = performance.now()
      const answer = store.consume(...args)
      if (answer instanceof Promise) {
        answer.then(
          () => record(performance.now() - started),
          () => record(performance.now() - started),
        )
      }
      return answer
    },
    adjust: (...args) => store.adjust(...args),
  }
}

/**
 * `memory`: one gateway on its own memory store. `redis`: three gateways, each with its own client to one
 * Redis. `unreachable`: three gateways whose Redis client never connects, so every decision is the
 * insurance limit's: it shows the bound while failing open.
 */
type Kind = 'memory' | 'redis' | 'unreachable'

/** A client that is never connected: every store call fails at once. */
function unreachable(): Redis {
  const client = new Redis(REDIS_URL, { lazyConnect: true, enableOfflineQueue: false })
  client.on('error', () => {})
  return client
}

async function round(kind: Kind, technique: 'fixed' | 'sliding'): Promise<Row> {
  const prefix = `aigw-burst:${process.pid}:${Math.random().toString(36).slice(2)}:`
  const clients: Redis[] = []
  const gateways: Gateway[] = []
  let storeErrors = 0
  let slowest = 0
  const record = (ms: number) => {
    slowest = Math.max(slowest, ms)
  }
  for (let i = 0; i < (kind === 'memory' ? 1 : 3); i++) {
    const client = kind === 'redis' ? await connect() : kind === 'unreachable' ? unreachable() : undefined
    if (client) clients.push(client)
    const gateway = createGateway({
      providers: { openai: { apiKey: 'sk-test', baseURL: upstreamUrl } },
      logs: false,
      rateLimit: {
        limit: LIMIT,
        window: 60,
        technique,
        ...(client ? { store: timed(createRedisLimitStore(client, { prefix }), record) } : {}),
        ...(STORE_TIMEOUT_MS === undefined ? {} : { storeTimeoutMs: STORE_TIMEOUT_MS }),
      },
    })
    gateway.events.on('store:error', () => storeErrors++)
    gateways.push(gateway)
  }
  const before = received
  const statuses = await Promise.all(
    Array.from({ length: BURST }, async (_, i) => {
      const response = await gateways[i % gateways.length]!.handle(chat(i))
      await drain(response!.body)
      return response!.status
    }),
  )
  const row = {
    admitted: statuses.filter((s) => s === 200).length,
    refused: statuses.filter((s) => s === 429).length,
    forwarded: received - before,
    storeErrors,
    slowest: Math.round(slowest),
  }
  if (kind === 'redis' && clients[0]) {
    const keys = await clients[0].keys(`${prefix}*`)
    if (keys.length > 0) await clients[0].del(...keys)
  }
  await Promise.all(gateways.map((g) => g.close()))
  for (const client of clients) client.disconnect()
  return row
}

const ROWS = [
  ['memory', 'sliding'],
  ['redis', 'sliding'],
  ['redis', 'fixed'],
  ['unreachable', 'sliding'],
] as const
// ROWS=redis-fixed runs that row alone, so its first round meets a cold process as a fresh instance would.
const only = process.env.ROWS?.split(',')
for (const [kind, technique] of ROWS.filter(([k, t]) => only === undefined || only.includes(`${k}-${t}`))) {
  const rows: Row[] = []
  for (let i = 0; i < ROUNDS; i++) rows.push(await round(kind, technique))
  const where = {
    memory: '1 gateway, memory',
    redis: '3 gateways, redis',
    unreachable: '3 gateways, redis unreachable',
  }
  const label = `${where[kind].padEnd(29)} ${technique.padEnd(7)}`
  const show = (pick: (r: Row) => number) => rows.map(pick).join(' ')
  console.log(
    `${label} limit ${LIMIT}, ${BURST} concurrent: admitted [${show((r) => r.admitted)}] refused [${show((r) => r.refused)}] forwarded [${show((r) => r.forwarded)}] storeErrors [${show((r) => r.storeErrors)}] slowest store call ms [${show((r) => r.slowest)}]`,
  )
}
upstream.close()
