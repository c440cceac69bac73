import { defineConfig } from 'tsup'

/**
 * `require('vitest')` throws (Vitest is ESM only), so the CommonJS build of the conformance suites reaches
 * the test runner another way: inside a Vitest worker the runner's own module is `globalThis.__vitest_index__`
 * (what `import.meta.vitest` reads). Looked up at call time, so requiring the entry works anywhere and only
 * calling a suite outside Vitest fails, saying so.
 */
const VITEST_FOR_COMMONJS = `
const runner = () => {
  const index = globalThis.__vitest_index__
  if (index === undefined) {
    throw new Error('ai-gateway-middleware/testing/conformance: the conformance suites register with Vitest; call them from a test file that Vitest runs')
  }
  return index
}
const forward = (name) => (...args) => runner()[name](...args)
export const describe = forward('describe')
export const it = forward('it')
export const beforeAll = forward('beforeAll')
export const afterAll = forward('afterAll')
export const beforeEach = forward('beforeEach')
export const afterEach = forward('afterEach')
export const expect = new Proxy(function expect() {}, {
  apply: (_target, _self, args) => runner().expect(...args),
  get: (_target, property) => runner().expect[property],
})
`

export default defineConfig({
  entry: [
    'src/index.ts',
    'src/testing/index.ts',
    'src/testing/conformance/index.ts',
    'src/redis/index.ts',
    'src/postgres/index.ts',
    'adapters/express.ts',
    'adapters/koa.ts',
    'adapters/fastify.ts',
  ],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  // Optional peers are required from this package's own location (`createRequire(import.meta.url)`, see
  // src/peers.ts); the shim gives the CommonJS build an `import.meta.url` of its file.
  shims: true,
  outDir: 'dist',
  // Shared core code goes to chunks, so the adapters and the core entry use one copy of each module.
  splitting: true,
  // Optional peers and the test runner the conformance suites register with are the host's, never bundled.
  // Vitest is external too, but per format: the plugin below keeps the ESM import and shims the CommonJS one.
  external: ['ioredis', 'pg', '@opentelemetry/api', 'prom-client'],
  noExternal: [/^vitest$/],
  esbuildPlugins: [
    {
      name: 'vitest-for-commonjs',
      setup(build) {
        // With splitting, tsup has esbuild emit ESM and converts it to CommonJS afterwards, so the format
        // asked for is read from the constant tsup defines rather than from esbuild's own format.
        const commonjs = build.initialOptions.define?.TSUP_FORMAT === '"cjs"'
        build.onResolve({ filter: /^vitest$/ }, () =>
          commonjs
            ? { path: 'vitest', namespace: 'vitest-for-commonjs' }
            : { path: 'vitest', external: true },
        )
        build.onLoad({ filter: /.*/, namespace: 'vitest-for-commonjs' }, () => ({
          contents: VITEST_FOR_COMMONJS,
          loader: 'js',
        }))
      },
    },
  ],
})
