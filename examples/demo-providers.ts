import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import {
  createGateway,
  createKeyRing,
  createMemorySecretStore,
  type Gateway,
  type GatewayOptions,
  type KeyRing,
  parseOptions,
} from 'ai-gateway-middleware'
import { createMockProvider } from 'ai-gateway-middleware/testing'
import { adminCommands, cacheCommand, formatCommands, tryCommands } from './demo-commands.js'

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

/**
 * Prints where the demo listens and requests to try; `cache: true` adds a cached one, for gateways whose
 * pipeline has the cache step.
 */
export function printTryIt(
  address: AddressInfo | string | null,
  mount: string,
  upstream: string,
  { cache = false }: { cache?: boolean } = {},
): void {
  const base = `http://127.0.0.1:${portOf(address)}${mount}`
  const commands = [...tryCommands(base), ...(cache ? [cacheCommand(base)] : [])]
  console.log(`AI gateway listening on ${base} (answering from ${upstream})

Try:
${formatCommands(commands)}`)
}

function portOf(address: AddressInfo | string | null): number {
  return typeof address === 'object' && address !== null ? address.port : 0
}

/**
 * Ends the demo when its server cannot listen. Without this an Express app whose port is taken would print
 * its banner for port 0 and keep running on the mock provider alone, and Koa and Fastify would end with a
 * stack trace. `example` is the file under examples/, for the command the message suggests.
 */
export function exitOnListenError(error: NodeJS.ErrnoException, port: number, example = 'express.ts'): never {
  const why =
    error.code === 'EADDRINUSE'
      ? `port ${port} on 127.0.0.1 is already in use (is another demo running?)`
      : `it cannot listen on 127.0.0.1:${port}: ${error.message}`
  const run =
    example === 'express.ts' ? 'npm start' : `npx tsx --conditions=ai-gateway-source examples/${example}`
  process.stderr.write(
    `The demo cannot start: ${why}.\nSet the PORT environment variable to use another port, e.g. PORT=${port + 1} ${run}\n`,
  )
  process.exit(1)
}

/**
 * The demo's gateway and what its admin API serves. Every request is logged to the gateway's in-memory
 * store (`logs: { store }` takes Postgres), answers are cached when a request asks (`cf-aig-cache-ttl`),
 * and keys stored through the admin API serve `cf-aig-byok-alias`; they are encrypted under the master key.
 * `settings` gives the dashboard's Settings page the gateway's options with their defaults (masked there).
 * The admin token is `GATEWAY_ADMIN_TOKEN`, else a random one; set empty, it is `''`, which
 * examples/express.ts takes as "no token" (and `printAdmin` warns about).
 */
export function demoGateway(providers: Providers): {
  gateway: Gateway
  keys: KeyRing
  adminToken: string
  settings: () => unknown
} {
  const masterKey = process.env.GATEWAY_MASTER_KEY ?? randomBytes(32)
  const keys = createKeyRing({ store: createMemorySecretStore(), masterKey })
  const options: GatewayOptions = { providers, keys, rateLimit: { limit: 600, window: 60 }, metrics: true }
  const gateway = createGateway(options)
  const adminToken = process.env.GATEWAY_ADMIN_TOKEN ?? randomBytes(24).toString('base64url')
  return { gateway, keys, adminToken, settings: () => parseOptions(options) }
}

/**
 * Prints how to reach the admin API, and warns when it has no token (an empty `adminToken`) or when stored
 * keys will not survive a restart.
 */
export function printAdmin(address: AddressInfo | string | null, mount: string, adminToken: string): void {
  const base = `http://127.0.0.1:${portOf(address)}${mount}`
  if (!adminToken) {
    console.warn(
      `Warning: the admin API at ${base} has no token (GATEWAY_ADMIN_TOKEN is empty): anyone who can reach ` +
        'this port can read the request logs and store provider keys. Unset GATEWAY_ADMIN_TOKEN for a ' +
        'random token, or set it to 16 or more characters.',
    )
  }
  if (!process.env.GATEWAY_MASTER_KEY) {
    console.warn(
      'GATEWAY_MASTER_KEY is not set: stored keys use a random master key and are lost on restart.',
    )
  }
  // A token from the environment is printed as the variable, so it does not land in terminal scrollback.
  const token = !adminToken
    ? undefined
    : process.env.GATEWAY_ADMIN_TOKEN
      ? '$GATEWAY_ADMIN_TOKEN'
      : adminToken
  console.log(`
Admin API (logs, stored keys):
${formatCommands(adminCommands(base, token))}

Dashboard: ${base}/ (${adminToken ? 'sign in with the admin token' : 'no sign-in: the admin has no token'})`)
}
