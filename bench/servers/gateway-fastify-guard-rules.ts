// The Fastify gateway with DLP and keyword and pattern guardrails on prompts and answers.
import { startGuardGateway } from './guard.js'

await startGuardGateway('rules')
