import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { StoreErrorEvent } from '../../src/events.js'
import { createGateway, type Gateway, type GatewayRequest, type LimitStore } from '../../src/index.js'
import { createRedisLimitStore } from '../../src/redis/index.js'
import { chatRequest } from '../helpers/requests.js'
import { REDIS_URL, uniqueName } from '../helpers/services.js'

// A burst of 300 concurrent requests against a limit of 60, every rule option at its default but the
// store: the limit must hold exactly, across three gateway instances sharing one Redis, each on its own
// connection. The provider is a bare node:http server that counts what reaches it.

const COMPLETION = JSON.stringify({
  id: 'chatcmpl-burst',
  object: 'chat.completion',
  created: 1,
  model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
})

let upstream: Server
let received = 0
const clients: Redis[] = []
const gateways: Gateway[] = []

beforeAll(async () => {
  upstream = createServer((req, res) => {
    received++
    req.resume()
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(COMPLETION))
  })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
})
afterAll(async () => {
  await Promise.all(gateways.map((gateway) => gateway.close()))
  for (const client of clients) client.disconnect()
  upstream.close()
})

/** A client as the README asks hosts to make one. */
async function connect(): Promise<Redis> {
  const client = new Redis(REDIS_URL!, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
  client.on('error', () => {})
  clients.push(client)
  if (client.status !== 'ready') await once(client, 'ready')
  return client
}

/**
 * A gateway whose clock stands still at `instant`: a burst that takes a while on a busy machine still falls
 * in one fixed window, where the wall clock could cross a window's end in the middle of it.
 */
function gatewayWith(technique: 'fixed' | 'sliding', instant: number, store?: LimitStore): Gateway {
  const gateway = createGateway({
    providers: {
      openai: {
        apiKey: 'sk-test',
        baseURL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`,
      },
    },
    rateLimit: { limit: 60, window: 60, technique, ...(store === undefined ? {} : { store }) },
    now: () => instant,
  })
  gateways.push(gateway)
  return gateway
}

/** Sends one request and reads its answer to the end. */
async function send(gateway: Gateway, request: GatewayRequest) {
  const response = (await gateway.handle(request))!
  let body = ''
  if (typeof response.body === 'string') body = response.body
  else if (response.body instanceof Uint8Array) body = new TextDecoder().decode(response.body)
  else if (response.body !== null) for await (const chunk of response.body) body += String(chunk)
  return { status: response.status, body }
}

/** 300 concurrent requests spread over the instances in turn; asserts exactly 60 admitted and forwarded. */
async function burst(instances: Gateway[]) {
  const storeErrors: StoreErrorEvent[] = []
  for (const gateway of instances) gateway.events.on('store:error', (e) => storeErrors.push(e))
  const before = received
  const answers = await Promise.all(
    Array.from({ length: 300 }, (_, i) => send(instances[i % instances.length]!, chatRequest(`burst ${i}`))),
  )
  const refused = answers.filter((a) => a.status === 429)
  expect(answers.filter((a) => a.status === 200)).toHaveLength(60)
  expect(refused).toHaveLength(240)
  for (const answer of refused) expect(JSON.parse(answer.body)).toMatchObject({ error: [{ code: 2003 }] })
  expect(received - before).toBe(60)
  expect(storeErrors).toEqual([])
}

describe('a burst of 300 concurrent requests against a limit of 60, default rule options', () => {
  it('one gateway on the memory store admits exactly 60', async () => {
    await burst([gatewayWith('sliding', Date.now())])
  })

  describe.skipIf(!REDIS_URL)('three gateways sharing one Redis, each on its own connection', () => {
    for (const technique of ['sliding', 'fixed'] as const) {
      it(`admit exactly 60 between them and forward only those (${technique})`, async () => {
        const prefix = `${uniqueName('burst')}:`
        const instant = Date.now()
        const instances = await Promise.all(
          [0, 1, 2].map(async () =>
            gatewayWith(technique, instant, createRedisLimitStore(await connect(), { prefix })),
          ),
        )
        await burst(instances)
      })
    }
  })
})
