import { isAbsolute, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { type Build, startLogsGateway } from './logs.js'

// The Fastify mounts of `gateway-fastify.ts`, `gateway-fastify-logs-off.ts` and
// `gateway-fastify-logs-postgres.ts`, from the build of another checkout of the project: `BENCH_BASELINE`, with
// `npm run build` run there. Its modules are imported by path, so they resolve their own dependencies from
// that checkout.

async function baselineBuild(): Promise<Build> {
  const root = process.env.BENCH_BASELINE
  if (!root || !isAbsolute(root))
    throw new Error('BENCH_BASELINE must be the absolute path of a built checkout')
  const from = (path: string) => import(pathToFileURL(join(root, 'dist', path)).href)
  const [{ createGateway }, { aiGateway }, { createPostgresLogStore }] = await Promise.all([
    from('src/index.js'),
    from('adapters/fastify.js'),
    from('src/postgres/index.js'),
  ])
  return { createGateway, aiGateway, createPostgresLogStore }
}

export async function startBaseline(logs: 'memory' | 'off' | 'postgres'): Promise<void> {
  await startLogsGateway(logs, await baselineBuild())
}
