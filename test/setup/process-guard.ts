/**
 * Fails the run on any `uncaughtException` or `unhandledRejection` in a test worker, so a crash in a timer,
 * a socket callback or an emitter can never hide behind a test that happened to pass. Loaded through
 * `setupFiles` in vitest.config.ts.
 *
 * Two layers, so either one alone fails the run:
 * 1. The error is recorded, and the test running when it came (or, between tests, the next one) fails in
 *    `afterEach`, naming the error and the test it came during or after; errors after the last test fail the
 *    file in `afterAll`.
 * 2. Vitest's own report ("Unhandled Errors", exit code 1) still sees it. Vitest keeps silent about an error
 *    when any listener besides its own is attached ("handled by user code"), which a guard like this one would
 *    trigger, so the guard steps aside while it hands the error to the one listener that was there before it.
 *
 * Errors thrown after a file's last hook, while the worker shuts down, reach only Vitest's report, and only
 * when the worker is still alive to send it: that window is Vitest's, and no setup file can close it.
 */
import { afterAll, afterEach, beforeEach } from 'vitest'

type GuardedEvent = 'uncaughtException' | 'unhandledRejection'

interface Recorded {
  event: GuardedEvent
  error: unknown
  /** Where the run was when the error came, e.g. `during "suite > test"`. */
  when: string
}

interface Guard {
  recorded: Recorded[]
  /** The test running now, if any. */
  current: string | undefined
  /** The test that finished last, to blame errors that come between tests. */
  previous: string | undefined
}

const EVENTS: readonly GuardedEvent[] = ['uncaughtException', 'unhandledRejection']
// One guard per process, even when a worker runs several files (isolate: false) and this file runs again.
const GUARD_KEY = Symbol.for('ai-gateway-middleware.process-guard')

function installGuard(): Guard {
  const holder = globalThis as typeof globalThis & { [GUARD_KEY]?: Guard }
  const existing = holder[GUARD_KEY]
  if (existing) return existing
  const guard: Guard = { recorded: [], current: undefined, previous: undefined }
  for (const event of EVENTS) {
    const listener = (error: unknown, promise?: Promise<unknown>): void => {
      guard.recorded.push({ event, error, when: whenNow(guard) })
      handToVitest(event, listener, error, promise)
    }
    process.on(event, listener)
  }
  holder[GUARD_KEY] = guard
  return guard
}

/**
 * Calls the listener that was there before this guard, Vitest's, with the guard detached, so Vitest counts
 * itself alone and reports the error. With more listeners than that, user code claimed the error: Vitest
 * stays silent as it would without the guard, and nobody's listener gets called twice.
 */
function handToVitest(
  event: GuardedEvent,
  own: (error: unknown, promise?: Promise<unknown>) => void,
  error: unknown,
  promise: Promise<unknown> | undefined,
): void {
  // Through the plain emitter type: Node's typings list `process` listeners per event name, not per union.
  const emitter: NodeJS.EventEmitter = process
  const others = emitter.listeners(event).filter((listener) => listener !== own)
  const [vitest] = others
  if (others.length !== 1 || vitest === undefined) return
  process.off(event, own)
  try {
    Reflect.apply(vitest, process, [error, promise])
  } finally {
    process.on(event, own)
  }
}

function whenNow(guard: Guard): string {
  if (guard.current !== undefined) return `during "${guard.current}"`
  if (guard.previous !== undefined) return `after "${guard.previous}" finished`
  return 'before the first test of the file'
}

function describeError(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`
  try {
    return `non-error value ${JSON.stringify(error)}`
  } catch {
    return `non-error value ${String(error)}`
  }
}

/** Throws one error naming everything recorded since the last check, and forgets it. */
function failIfRecorded(guard: Guard, where: string): void {
  const recorded = guard.recorded.splice(0)
  if (recorded.length === 0) return
  const lines = recorded.map(({ event, error, when }) => `${event} ${when}:\n${describeError(error)}`)
  throw new Error(
    `process guard: ${recorded.length} uncaught error(s), failing ${where}\n\n${lines.join('\n\n')}`,
    { cause: recorded[0]?.error },
  )
}

const guard = installGuard()

beforeEach((context) => {
  guard.current = context.task.fullName
})

afterEach((context) => {
  guard.previous = context.task.fullName
  guard.current = undefined
  failIfRecorded(guard, 'this test')
})

afterAll(async () => {
  // One more turn of the loop, for errors queued by the last test's teardown (socket closes, rejected cleanups).
  await new Promise((resolve) => setTimeout(resolve, 0))
  await new Promise((resolve) => setImmediate(resolve))
  failIfRecorded(guard, 'the file')
})
