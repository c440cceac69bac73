import { isAbsolute, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import Fastify from 'fastify'
import { gatewayOptions, reportListening } from './shared.js'

// The Fastify mount of `gateway-fastify.ts` (or of `gateway-fastify-logs-off.ts`), from the build of another
// checkout of the project: `BENCH_BASELINE`, with `npm run build` run there. Its modules are imported by path,
// so they resolve their own dependencies from that checkout.

export async function startBaseline(logs: boolean): Promise<void> {
  const root = process.env.BENCH_BASELINE
  if (!root || !isAbsolute(root))
    throw new Error('BENCH_BASELINE must be the absolute path of a built checkout')
  const from = (path: string) => import(pathToFileURL(join(root, 'dist', path)).href)
  const { createGateway } = await from('src/index.js')
  const { aiGateway } = await from('adapters/fastify.js')
  const gateway = createGateway({ ...gatewayOptions(), ...(logs ? {} : { logs: false }) })
  const app = Fastify()
  await app.register(aiGateway, { prefix: '/ai', gateway })
  await app.listen({ host: '127.0.0.1', port: 0 })
  reportListening(app.server)
}
