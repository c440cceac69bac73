import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))

interface ChildRun {
  code: number | null
  output: string
}

/** Runs the guard's fixtures in a Vitest of their own, as a user would from the shell. */
function runFixtures(): Promise<ChildRun> {
  // The child must not think it is a worker of this run.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('VITEST')))
  const args = [
    'node_modules/vitest/vitest.mjs',
    'run',
    '--config',
    'test/setup/fixtures/vitest.fixture.config.ts',
  ]
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      { cwd: root, env: { ...env, NO_COLOR: '1', FORCE_COLOR: '0', CI: '' }, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null
        resolve({ code, output: `${stdout}\n${stderr}` })
      },
    )
  })
}

describe('process guard', () => {
  it('is installed in this run', () => {
    expect(Symbol.for('ai-gateway-middleware.process-guard') in globalThis).toBe(true)
    // Vitest's listener and the guard's.
    expect(process.listenerCount('uncaughtException')).toBeGreaterThanOrEqual(2)
    expect(process.listenerCount('unhandledRejection')).toBeGreaterThanOrEqual(2)
  })

  it('fails a run whose tests all pass but leave a throwing timer, emitter and rejection behind', async () => {
    const { code, output } = await runFixtures()
    expect(code, output).toBe(1)
    // The guard's layer: the test running when the errors came fails, naming each one.
    expect(output).toMatch(/Tests\s+1 failed \| 3 passed \(4\)/)
    expect(output).toContain('process guard: 3 uncaught error(s), failing this test')
    expect(output).toMatch(
      /uncaughtException during "[^"]*is still running when they fire":\nError: GUARD_FIXTURE_TIMER/,
    )
    expect(output).toMatch(/uncaughtException during "[^"]*":\nError: GUARD_FIXTURE_EMITTER/)
    expect(output).toMatch(/unhandledRejection during "[^"]*":\nError: GUARD_FIXTURE_REJECTION/)
    // Vitest's own layer still reports them, although the guard's listeners are attached.
    expect(output).toContain('Unhandled Errors')
    expect(output).toMatch(/Errors\s+3 errors/)
  })
})
