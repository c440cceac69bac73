// The Fastify gateway writing its request log records to Postgres.
import { startLogsGateway } from './logs.js'

await startLogsGateway('postgres')
