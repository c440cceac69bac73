// `gateway-fastify-logs-postgres.ts` from the baseline build.
import { startBaseline } from './baseline.js'

await startBaseline('postgres')
