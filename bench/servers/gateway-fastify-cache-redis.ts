// The Fastify gateway answering from its response cache, kept in Redis.
import { startPolicyGateway } from './policy.js'

await startPolicyGateway('cache', 'redis')
