// The Fastify gateway answering from its response cache, kept in memory.
import { startPolicyGateway } from './policy.js'

await startPolicyGateway('cache', 'memory')
