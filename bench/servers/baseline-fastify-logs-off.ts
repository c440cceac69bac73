// `gateway-fastify-logs-off.ts` from the baseline build.
import { startBaseline } from './baseline.js'

await startBaseline('off')
