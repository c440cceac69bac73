import type { AddressInfo } from 'node:net'
import type { GatewayOptions } from 'ai-gateway-middleware'
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
