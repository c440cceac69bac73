import { type ChildProcess, fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { GC_STATS_REQUEST, type ReadyMessage, STATS_REQUEST, type StatsMessage } from '../servers/messages.js'

// The servers are TypeScript, loaded through tsx; the package they mount is the built one in dist, as hosts
// run it. tsx compiles sources with their function names kept, a wrapper call per closure created that the
// build does not have, so `BENCH_SOURCE=1` (the package from src, no build needed) is for quick looks only.
const LOADER_ARGS = [
  '--import',
  'tsx',
  ...(process.env.BENCH_SOURCE === '1' ? ['--conditions=ai-gateway-source'] : []),
]
const START_TIMEOUT_MS = 30_000
const STATS_TIMEOUT_MS = 5_000

const running = new Set<ChildProcess>()

export interface RunningServer {
  readonly name: string
  readonly pid: number
  readonly origin: string
  /** Processes the server makes work (its local Redis), whose CPU is part of its measurement. */
  readonly helperPids: readonly number[]
  /** The counters the server keeps (`bench/servers/shared.ts`) and its memory, as they are now. */
  stats(): Promise<Record<string, number>>
  /** The same, after a full garbage collection if the server was started with `--expose-gc`. */
  statsAfterGc(): Promise<Record<string, number>>
  stop(): Promise<void>
}

/**
 * Starts `bench/servers/<name>.ts` in its own process and resolves once it reports its port.
 * `extraNodeArgs` lets a run profile the servers (`--cpu-prof`, say).
 */
export async function startServer(
  name: string,
  env: Record<string, string>,
  extraNodeArgs: readonly string[],
): Promise<RunningServer> {
  const script = fileURLToPath(new URL(`../servers/${name}.ts`, import.meta.url))
  const child = fork(script, [], {
    execArgv: [...LOADER_ARGS, ...extraNodeArgs],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  running.add(child)
  child.once('exit', () => running.delete(child))
  try {
    const { port, helperPids = [] } = await waitForReady(name, child)
    return {
      name,
      pid: child.pid!,
      origin: `http://127.0.0.1:${port}`,
      helperPids,
      stats: () => askStats(name, child, STATS_REQUEST),
      statsAfterGc: () => askStats(name, child, GC_STATS_REQUEST),
      stop: () => stopChild(child),
    }
  } catch (error) {
    await stopChild(child)
    throw error
  }
}

function waitForReady(name: string, child: ChildProcess): Promise<ReadyMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => fail(new Error(`${name} did not report a port within ${START_TIMEOUT_MS} ms`)),
      START_TIMEOUT_MS,
    )
    const onMessage = (message: unknown) => {
      const ready = message as Partial<ReadyMessage> | null
      if (typeof ready?.port === 'number') done(() => resolve(ready as ReadyMessage))
    }
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      fail(new Error(`${name} exited (${signal ?? `code ${code}`}) before it was listening`))
    const fail = (error: Error) => done(() => reject(error))
    const done = (settle: () => void) => {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
      settle()
    }
    child.on('message', onMessage)
    child.on('exit', onExit)
  })
}

function askStats(name: string, child: ChildProcess, request: string): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', onMessage)
      reject(new Error(`${name} did not report its counters within ${STATS_TIMEOUT_MS} ms`))
    }, STATS_TIMEOUT_MS)
    const onMessage = (message: unknown) => {
      const stats = (message as Partial<StatsMessage> | null)?.stats
      if (stats === undefined) return
      clearTimeout(timer)
      child.off('message', onMessage)
      resolve(stats)
    }
    child.on('message', onMessage)
    child.send(request)
  })
}

/** SIGTERM lets the child exit normally (so `--cpu-prof` gets written); SIGKILL if it does not. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
  await exited
  clearTimeout(timer)
}

/** Stops every child still running; safe to call more than once. */
export async function stopAllServers(): Promise<void> {
  await Promise.all([...running].map(stopChild))
}
