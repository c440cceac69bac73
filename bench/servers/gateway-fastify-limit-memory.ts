// The Fastify gateway with a rate limit it never reaches, counted in memory.
import { startPolicyGateway } from './policy.js'

await startPolicyGateway('limit', 'memory')
