import { defineConfig } from 'tsup'

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
  outDir: 'dist',
  // Shared core code goes to chunks, so the adapters and the core entry use one copy of each module.
  splitting: true,
  // Optional peers and the test runner the conformance suites register with are the host's, never bundled.
  external: ['vitest', 'ioredis', 'pg', '@opentelemetry/api'],
})
