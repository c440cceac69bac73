import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import {
  createGateway,
  createKeyRing,
  createMemorySecretStore,
  type Gateway,
  type GatewayOptions,
  type KeyRing,
} from 'ai-gateway-middleware'
import { createMockProvider } from 'ai-gateway-middleware/testing'

type Providers = NonNullable<GatewayOptions['providers']>

// Environment variables read for real provider keys.
const KEY_VARIABLES: Record<string, string> = {
  openai: 'OPENAI_API_KEY',
  anthropic: 'ANTHROPIC_API_KEY',
  'google-ai-studio': 'GEMINI_API_KEY',
  groq: 'GROQ_API_KEY',
  mistral: 'MISTRAL_API_KEY',
}

/**
 * Providers for the demo apps. With real keys in the environment, those providers go to the real APIs.
 * With none, a local mock provider answers instead (or the one at `UPSTREAM_URL`), so the demo runs offline.
 */
export async function demoProviders(): Promise<{ providers: Providers; upstream: string }> {
  const providers: Providers = {}
  for (const [id, variable] of Object.entries(KEY_VARIABLES)) {
    const apiKey = process.env[variable]
    if (apiKey) providers[id] = { apiKey }
  }
  if (Object.keys(providers).length > 0) return { providers, upstream: 'the real providers' }

  const url = process.env.UPSTREAM_URL ?? (await createMockProvider()).url
  return {
    upstream: `the mock provider at ${url}`,
    providers: {
      openai: { apiKey: 'sk-demo', baseURL: `${url}/v1` },
      anthropic: { apiKey: 'sk-ant-demo', baseURL: url },
      'google-ai-studio': { apiKey: 'demo', baseURL: url },
      groq: { apiKey: 'gsk-demo', baseURL: `${url}/openai/v1` },
    },
  }
}

/** Prints where the demo listens and a few requests to try. */
export function printTryIt(address: AddressInfo | string | null, mount: string, upstream: string): void {
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const base = `http://127.0.0.1:${port}${mount}`
  const chat = `'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}]}'`
  const stream = `'{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hello!"}]}'`
  console.log(`AI gateway listening on ${base} (answering from ${upstream})

Try:
  curl -s ${base}/openai/chat/completions -H 'content-type: application/json' -d ${chat}
  curl -N ${base}/openai/chat/completions -H 'content-type: application/json' -d ${stream}
  curl -s ${base}/anthropic/v1/messages -H 'content-type: application/json' \\
    -d '{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":"Hello!"}]}'
  curl -s ${base}/google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent \\
    -H 'content-type: application/json' -d '{"contents":[{"parts":[{"text":"Hello!"}]}]}'`)
}

/**
 * The demo's gateway and what its admin API serves. Every request is logged to the gateway's in-memory
 * store (`logs: { store }` takes Postgres), answers are cached when a request asks (`cf-aig-cache-ttl`),
 * and keys stored through the admin API serve `cf-aig-byok-alias`; they are encrypted under the master key.
 */
export function demoGateway(providers: Providers): { gateway: Gateway; keys: KeyRing; adminToken: string } {
  const masterKey = process.env.GATEWAY_MASTER_KEY ?? randomBytes(32)
  const keys = createKeyRing({ store: createMemorySecretStore(), masterKey })
  const gateway = createGateway({ providers, keys, rateLimit: { limit: 600, window: 60 } })
  const adminToken = process.env.GATEWAY_ADMIN_TOKEN ?? randomBytes(24).toString('base64url')
  return { gateway, keys, adminToken }
}

/** Prints how to reach the admin API, and warns when stored keys will not survive a restart. */
export function printAdmin(address: AddressInfo | string | null, mount: string, adminToken: string): void {
  const port = typeof address === 'object' && address !== null ? address.port : 0
  if (!process.env.GATEWAY_MASTER_KEY) {
    console.warn(
      'GATEWAY_MASTER_KEY is not set: stored keys use a random master key and are lost on restart.',
    )
  }
  const token = process.env.GATEWAY_ADMIN_TOKEN ? '$GATEWAY_ADMIN_TOKEN' : adminToken
  console.log(`
Admin API (logs, stored keys):
  curl -s http://127.0.0.1:${port}${mount}/keys -H "authorization: Bearer ${token}"`)
}
