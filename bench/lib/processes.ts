import { type ChildProcess, fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import {
  ALLOCATIONS_START,
  ALLOCATIONS_STOP,
  type AllocationSite,
  type AllocationsMessage,
  GC_STATS_REQUEST,
  type ReadyMessage,
  STATS_REQUEST,
  type StatsMessage,
} from '../servers/messages.js'

// The servers are TypeScript, loaded through tsx; the package they mount is the built one in dist, as hosts
// run it. tsx compiles sources with their function names kept, a wrapper call per closure created that the
// build does not have, so `BENCH_SOURCE=1` (the package from src, no build needed) is for quick looks only.
const LOADER_ARGS = [
  '--import',
  'tsx',
  ...(process.env.BENCH_SOURCE === '1' ? ['--conditions=ai-gateway-source'] : []),
]
const START_TIMEOUT_MS = 30_000
const REPLY_TIMEOUT_MS = 5_000
const STOP_TIMEOUT_MS = 5_000

/** Every child still running, with how long it may take to exit once asked. */
const running = new Map<ChildProcess, number>()

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
  /** Has the server sample what it allocates, until `stopSamplingAllocations`. */
  startSamplingAllocations(): void
  /** What it allocated since `startSamplingAllocations`, by the function allocating it. */
  stopSamplingAllocations(): Promise<AllocationSite[]>
  stop(): Promise<void>
}

export interface StartOptions {
  /**
   * A command that runs node in its place, given node and its arguments after its own (valgrind and its
   * options, say). It must run node in its own process, as valgrind does: the IPC channel is a file
   * descriptor node inherits, and the server's pid is then the wrapper's.
   */
  readonly wrapper?: readonly [command: string, ...args: string[]]
  /** How long the server may take to report its port: a wrapper can make starting far slower. */
  readonly startTimeoutMs?: number
  /** How long it may take to exit before it is killed: a wrapper may have its own work to finish. */
  readonly stopTimeoutMs?: number
}

/**
 * Starts `bench/servers/<name>.ts` in its own process and resolves once it reports its port.
 * `extraNodeArgs` lets a run profile the servers (`--cpu-prof`, say).
 */
export async function startServer(
  name: string,
  env: Record<string, string>,
  extraNodeArgs: readonly string[],
  { wrapper, startTimeoutMs = START_TIMEOUT_MS, stopTimeoutMs = STOP_TIMEOUT_MS }: StartOptions = {},
): Promise<RunningServer> {
  const script = fileURLToPath(new URL(`../servers/${name}.ts`, import.meta.url))
  const nodeArgs = [...LOADER_ARGS, ...extraNodeArgs]
  const child = fork(script, [], {
    ...(wrapper === undefined
      ? { execArgv: nodeArgs }
      : { execPath: wrapper[0], execArgv: [...wrapper.slice(1), process.execPath, ...nodeArgs] }),
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  running.set(child, stopTimeoutMs)
  child.once('exit', () => running.delete(child))
  try {
    const { port, helperPids = [] } = await waitForReady(name, child, startTimeoutMs)
    return {
      name,
      pid: child.pid!,
      origin: `http://127.0.0.1:${port}`,
      helperPids,
      stats: () => askStats(name, child, STATS_REQUEST),
      statsAfterGc: () => askStats(name, child, GC_STATS_REQUEST),
      startSamplingAllocations: () => child.send(ALLOCATIONS_START),
      stopSamplingAllocations: () =>
        ask(
          name,
          child,
          ALLOCATIONS_STOP,
          (message) => (message as Partial<AllocationsMessage> | null)?.allocations,
        ),
      stop: () => stopChild(child, stopTimeoutMs),
    }
  } catch (error) {
    await stopChild(child, stopTimeoutMs)
    throw error
  }
}

function waitForReady(name: string, child: ChildProcess, timeoutMs: number): Promise<ReadyMessage> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => fail(new Error(`${name} did not report a port within ${timeoutMs} ms`)),
      timeoutMs,
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
  return ask(name, child, request, (message) => (message as Partial<StatsMessage> | null)?.stats)
}

/** Sends `request` and resolves with the first reply `answerOf` finds an answer in. */
function ask<T>(
  name: string,
  child: ChildProcess,
  request: string,
  answerOf: (message: unknown) => T | undefined,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', onMessage)
      reject(new Error(`${name} did not answer '${request}' within ${REPLY_TIMEOUT_MS} ms`))
    }, REPLY_TIMEOUT_MS)
    const onMessage = (message: unknown) => {
      const answer = answerOf(message)
      if (answer === undefined) return
      clearTimeout(timer)
      child.off('message', onMessage)
      resolve(answer)
    }
    child.on('message', onMessage)
    child.send(request)
  })
}

/** SIGTERM lets the child exit normally (so `--cpu-prof` gets written); SIGKILL if it does not. */
async function stopChild(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  await exited
  clearTimeout(timer)
}

/** Stops every child still running; safe to call more than once. */
async function stopAllServers(): Promise<void> {
  await Promise.all([...running].map(([child, timeoutMs]) => stopChild(child, timeoutMs)))
}

/**
 * Runs a bench's `main`, then stops its servers and runs `cleanUp`, whether it ends normally, fails or is
 * interrupted: the children must not outlive the run.
 */
export async function runBench(main: () => Promise<void>, cleanUp = async () => {}): Promise<void> {
  const finish = () => stopAllServers().then(cleanUp)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void finish().finally(() => process.exit(130))
    })
  }
  try {
    await main()
  } catch (error) {
    console.error(error)
    process.exitCode = 1
  } finally {
    await finish()
  }
}
