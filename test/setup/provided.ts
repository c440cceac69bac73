/**
 * What the global setups (run once, in Vitest's main process) hand to the test workers through
 * `project.provide` / `inject`. Importing this file, even for its types alone, brings in the declaration
 * below, which is what types `inject('services')`, `inject('clientTests')` and `inject('chromium')`.
 */

/** The services a run found answering: a URL, or `undefined` when the suites that need it are skipped. */
export interface ProvidedServices {
  redisUrl: string | undefined
  databaseUrl: string | undefined
}

/** Whether the client tests of test/clients (a private package of its own) can run, and if not, why. */
export type ProvidedClientTests = { available: true } | { available: false; reason: string }

declare module 'vitest' {
  export interface ProvidedContext {
    services: ProvidedServices
    clientTests: ProvidedClientTests
    /** The Chromium executable the browser test drives, or `undefined` when there is none. */
    chromium: string | undefined
  }
}
