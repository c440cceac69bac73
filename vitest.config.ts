import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Any uncaught exception or unhandled rejection in a worker fails the test it came during (or the next
    // one) and still shows in Vitest's "Unhandled Errors" report; see test/setup/process-guard.ts.
    setupFiles: ['test/setup/process-guard.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
})
