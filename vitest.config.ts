import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Once per run, before any worker starts: which services answer (Redis, PostgreSQL), whether the client
    // packages of test/clients can run on this Node (installing them when they can), and where Chromium is
    // for the dashboard's browser test. Each says in one line at the start of the run what it skips and
    // why; the workers read the outcome through `inject`.
    globalSetup: ['test/setup/probe-services.ts', 'test/setup/client-packages.ts', 'test/setup/chromium.ts'],
    // Any uncaught exception or unhandled rejection in a worker fails the test it came during (or the next
    // one) and still shows in Vitest's "Unhandled Errors" report; see test/setup/process-guard.ts.
    setupFiles: ['test/setup/process-guard.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
})
