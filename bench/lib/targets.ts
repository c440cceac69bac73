/** The frameworks a proxy can run in; `node` is plain node:http. */
export type Framework = 'node' | 'express' | 'koa' | 'fastify'

export interface Target {
  readonly name: string
  /** `direct` is the upstream itself, the baseline every proxy adds to. */
  readonly role: 'direct' | 'bare' | 'gateway'
  readonly framework: Framework | undefined
}

export const TARGETS: readonly Target[] = [
  { name: 'direct', role: 'direct', framework: undefined },
  { name: 'bare-node', role: 'bare', framework: 'node' },
  { name: 'bare-express', role: 'bare', framework: 'express' },
  { name: 'bare-koa', role: 'bare', framework: 'koa' },
  { name: 'bare-fastify', role: 'bare', framework: 'fastify' },
  { name: 'gateway-express', role: 'gateway', framework: 'express' },
  { name: 'gateway-koa', role: 'gateway', framework: 'koa' },
  { name: 'gateway-fastify', role: 'gateway', framework: 'fastify' },
]

/** The bare proxy a gateway mount is compared against: the same framework without the gateway. */
export function bareNameFor(framework: Framework): string {
  return `bare-${framework}`
}

export type Mode = 'json' | 'sse'
export const MODES: readonly Mode[] = ['json', 'sse']

/** The path the load generator requests: every proxy serves the same one, the upstream its own. */
export function requestPath(target: Target): string {
  return target.role === 'direct' ? '/v1/chat/completions' : '/ai/openai/chat/completions'
}

const MESSAGES = [{ role: 'user', content: 'Say hello to the benchmark.' }]

/** The request body per mode; the upstream streams when it sees `"stream":true`. */
export function requestBody(mode: Mode): string {
  return JSON.stringify(
    mode === 'sse'
      ? { model: 'gpt-4o-mini', stream: true, messages: MESSAGES }
      : { model: 'gpt-4o-mini', messages: MESSAGES },
  )
}

export const REQUEST_HEADERS = { 'content-type': 'application/json' } as const
