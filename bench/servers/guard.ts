import { createGateway } from 'ai-gateway-middleware'
import { aiGateway } from 'ai-gateway-middleware/fastify'
import Fastify from 'fastify'
import { type GuardClassifierKind, guardOptions } from './guard-config.js'
import { gatewayOptions, reportListening, reportLogStats } from './shared.js'

// The Fastify gateway of `gateway-fastify.ts` with the guard step added: DLP and guardrails, decided by rules
// or by a Llama Guard model the fake upstream serves. Each `gateway-fastify-guard-*` server is one call.

export async function startGuardGateway(classifier: GuardClassifierKind): Promise<void> {
  const gateway = createGateway({ ...gatewayOptions(), ...guardOptions(classifier) })
  const app = Fastify()
  // As `gateway-fastify.ts` does, so that the two mounts differ by the guard step alone; the runner reads the
  // requests it counts against the classifier calls the upstream answered.
  reportLogStats(gateway, app.server)
  await app.register(aiGateway, { prefix: '/ai', gateway })
  await app.listen({ host: '127.0.0.1', port: 0 })
  reportListening(app.server)
}
