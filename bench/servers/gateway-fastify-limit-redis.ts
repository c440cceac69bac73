// The Fastify gateway with a rate limit it never reaches, counted in Redis.
import { startPolicyGateway } from './policy.js'

await startPolicyGateway('limit', 'redis')
