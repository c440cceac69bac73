// `gateway-fastify.ts` from the baseline build: request logs on, in the memory store.
import { startBaseline } from './baseline.js'

await startBaseline('memory')
