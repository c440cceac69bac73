/**
 * The uncaught errors the process guard (`process-guard.ts`, a setup file) recorded since the last test
 * ended, for tests that check at a point of their own. Read through the guard's global rather than by
 * importing it, so its hooks are not registered a second time.
 */
export function uncaughtErrors(): readonly unknown[] {
  const guard = (globalThis as Record<symbol, { recorded: { error: unknown }[] } | undefined>)[
    Symbol.for('ai-gateway-middleware.process-guard')
  ]
  if (guard === undefined) throw new Error('the process guard is not installed (vitest.config.ts setupFiles)')
  return guard.recorded.map((entry) => entry.error)
}
