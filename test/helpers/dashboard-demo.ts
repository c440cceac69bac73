import { randomBytes } from 'node:crypto'
import express, { type Request } from 'express'
import { aiGateway, aiGatewayAdmin } from '../../adapters/express.js'
import { createAdmin } from '../../src/admin/index.js'
import {
  createGateway,
  createKeyRing,
  createMemorySecretStore,
  type Gateway,
  type GatewayOptions,
  type KeyRing,
  type LogRecord,
  parseOptions,
} from '../../src/index.js'
import { createMockProvider, type MockProvider } from '../../src/testing/index.js'
import { closeServer, send, serverUrl } from './http.js'
import { sampleRecord } from './log-store.js'

export const DEMO_ADMIN_TOKEN = 'dashboard-demo-admin-token-0123'
export const DEMO_OPENAI_KEY = 'sk-demo-openai-0123456789abcdefghij'
const DAY = 86_400_000

export interface DashboardDemo {
  /** Origin of the host app; the gateway is at `/ai`, the admin and its dashboard at `/ai-admin`. */
  readonly url: string
  readonly gateway: Gateway
  readonly keys: KeyRing
  readonly mock: MockProvider
  /** Sends a chat completion as `user` and returns its log id once the record is stored. */
  chat(user: string, text: string, headers?: Record<string, string>): Promise<string>
  close(): Promise<void>
}

/**
 * A host app with the gateway (answering from the mock provider), a key ring, a dynamic route and the
 * admin with its dashboard, as a production host would mount them. `identify` reads the caller from an
 * `x-user` header, standing in for the host's own login.
 */
export async function startDashboardDemo(): Promise<DashboardDemo> {
  const mock = await createMockProvider()
  const keys = createKeyRing({ store: createMemorySecretStore(), masterKey: randomBytes(32) })
  await keys.putSecret('anthropic', 'team-a', 'sk-ant-team-a-0123456789abcdef')
  const options: GatewayOptions = {
    providers: {
      openai: { apiKey: DEMO_OPENAI_KEY, baseURL: `${mock.url}/v1` },
      anthropic: { apiKey: 'sk-ant-demo-0123456789abcdefghij', baseURL: mock.url },
      'google-ai-studio': { apiKey: 'demo-google-key', baseURL: mock.url },
    },
    keys,
    identify: (host) => {
      const user = (host as Request).headers['x-user']
      return typeof user === 'string' ? { id: user } : undefined
    },
    routes: {
      definitions: [
        {
          name: 'support',
          elements: [
            { id: 'start', type: 'start', outputs: { next: { elementId: 'model' } } },
            {
              id: 'model',
              type: 'model',
              properties: { provider: 'openai', model: 'gpt-4o-mini' },
              outputs: { success: { elementId: 'end' } },
            },
            { id: 'end', type: 'end', outputs: {} },
          ],
        },
      ],
    },
  }
  const gateway = createGateway(options)
  const admin = createAdmin({
    logs: gateway.logs,
    keys,
    routes: gateway.routes,
    token: DEMO_ADMIN_TOKEN,
    settings: () => parseOptions(options),
  })
  const app = express()
  app.use('/ai', aiGateway(gateway))
  app.use('/ai-admin', aiGatewayAdmin(admin))
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const url = serverUrl(server)

  async function chat(user: string, text: string, headers: Record<string, string> = {}): Promise<string> {
    const res = await send(`${url}/ai/openai/chat/completions`, {
      body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] },
      headers: { 'x-user': user, ...headers },
    })
    await gateway.flushLogs()
    return res.headers['cf-aig-log-id']!
  }

  return {
    url,
    gateway,
    keys,
    mock,
    chat,
    async close() {
      await closeServer(server)
      await gateway.close()
      await mock.close()
    },
  }
}

/**
 * Records of the ten days before yesterday, for the Spend and Analytics pages: alice has a session per day
 * and one that cost far more than her others; carol spends several times what the others do; bob works
 * without a session key (a session per day); dave tried it once. One record carries DLP and guardrail
 * findings.
 */
export function historyRecords(now: number): LogRecord[] {
  const records: LogRecord[] = []
  const at = (daysAgo: number, hour: number) => now - daysAgo * DAY - hour * 3_600_000
  const add = (daysAgo: number, hour: number, fields: Partial<LogRecord>) =>
    records.push(
      sampleRecord({
        createdAt: at(daysAgo, hour),
        durationMs: 300 + hour * 40,
        ttfbMs: 120,
        tokensIn: 200,
        tokensOut: 400,
        requestSize: 400,
        responseSize: 900,
        ...fields,
      }),
    )
  for (let day = 2; day <= 9; day++) {
    for (const hour of [1, 2]) {
      add(day, hour, { principal: 'alice', cost: 0.01, metadata: { session: `a-${day}` } })
    }
    add(day, 3, {
      principal: 'bob',
      provider: 'anthropic',
      model: 'claude-sonnet-4-5',
      path: '/anthropic/v1/messages',
      cost: 0.02,
    })
    add(day, 4, { principal: 'carol', cost: 0.4, metadata: { session: `c-${day}` } })
  }
  add(3, 5, {
    principal: 'alice',
    cost: 0.5,
    metadata: { session: 'a-big' },
    tokensIn: 9000,
    tokensOut: 12000,
  })
  add(4, 6, { principal: 'dave', cost: 0.01, provider: 'google-ai-studio', model: 'gemini-2.5-flash' })
  add(5, 7, {
    success: false,
    statusCode: 502,
    outcome: 'upstream_error',
    errorCode: 2005,
    cost: null,
    tokensIn: null,
    tokensOut: null,
  })
  add(2, 8, {
    principal: 'bob',
    metadata: { team: 'support' },
    requestBody:
      '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"My card is [REDACTED:credit_card]"}]}',
    responseBody: '{"choices":[{"message":{"role":"assistant","content":"I cannot store cards."}}]}',
    guard: {
      dlp: {
        action: 'REDACT',
        findings: [
          {
            check: 'REQUEST',
            profileId: 'financial',
            entryId: 'credit_card',
            policyIds: ['mask-pii'],
            path: '/messages/0/content',
            start: 11,
            end: 30,
          },
        ],
      },
      guardrails: { action: 'FLAG', prompt: [{ category: 'S6', score: 0.91, classifier: 'rules' }] },
    },
  })
  return records
}
