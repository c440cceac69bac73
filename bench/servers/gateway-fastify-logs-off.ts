// The Fastify gateway with request logs turned off: the baseline of the LOGGING table.
import { startLogsGateway } from './logs.js'

await startLogsGateway('off')
