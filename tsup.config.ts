import { defineConfig } from 'tsup'

export default defineConfig({
  entry: [
    'src/index.ts',
    'src/testing/index.ts',
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
})
