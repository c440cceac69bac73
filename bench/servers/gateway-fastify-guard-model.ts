// The Fastify gateway with DLP and Llama Guard on prompts and answers, served by the fake upstream.
import { startGuardGateway } from './guard.js'

await startGuardGateway('model')
