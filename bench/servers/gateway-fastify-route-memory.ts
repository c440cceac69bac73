// The Fastify gateway with a dynamic route (a condition, a sticky split, a rate limit it never reaches,
// then the model compat-json names), kept in memory with its counters.
import { startPolicyGateway } from './policy.js'

await startPolicyGateway('route', 'memory')
