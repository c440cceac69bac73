import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

// Runs real Node (not the test runner's resolver) against the built package, through its own name, the way
// an installed copy is loaded. `npm test` builds first.
const packageRoot = fileURLToPath(new URL('../..', import.meta.url))

const EXPECTED_EXPORTS: Record<string, string[]> = {
  'ai-gateway-middleware': [
    'createGateway',
    'GatewayError',
    'ERRORS',
    'compose',
    'defineProvider',
    'PROVIDERS',
    'createMemoryCacheStore',
    'createMemoryLimitStore',
    'createMemoryLogStore',
    'createKeyRing',
    'createMemorySecretStore',
  ],
  'ai-gateway-middleware/express': ['aiGateway', 'default'],
  'ai-gateway-middleware/koa': ['aiGateway', 'default'],
  'ai-gateway-middleware/fastify': ['aiGateway', 'default'],
  'ai-gateway-middleware/testing': ['createMockProvider'],
  'ai-gateway-middleware/testing/conformance': [
    'cacheStoreConformance',
    'limitStoreConformance',
    'logStoreConformance',
    'secretStoreConformance',
  ],
  'ai-gateway-middleware/redis': ['createRedisCacheStore', 'createRedisLimitStore', 'createRedisSecretStore'],
  'ai-gateway-middleware/postgres': ['createPostgresLogStore', 'createPostgresSecretStore'],
}

// Vitest, which the conformance suites register with, can only be imported, so that entry is ESM only.
const ESM_ONLY = new Set(['ai-gateway-middleware/testing/conformance'])

function exportsOf(specifier: string, style: 'import' | 'require'): string[] {
  const script =
    style === 'import'
      ? `import(${JSON.stringify(specifier)}).then((m) => console.log(JSON.stringify(Object.keys(m))))`
      : `console.log(JSON.stringify(Object.keys(require(${JSON.stringify(specifier)}))))`
  const args = style === 'import' ? ['--input-type=module', '-e', script] : ['-e', script]
  return JSON.parse(execFileSync(process.execPath, args, { cwd: packageRoot, encoding: 'utf8' }))
}

describe('published entry points', () => {
  for (const [specifier, names] of Object.entries(EXPECTED_EXPORTS)) {
    for (const style of ESM_ONLY.has(specifier) ? (['import'] as const) : (['import', 'require'] as const)) {
      it(`${style} ${specifier}`, () => {
        expect(exportsOf(specifier, style)).toEqual(expect.arrayContaining(names))
      })
    }
  }

  it('gives ESM and CommonJS callers interchangeable errors', () => {
    const script = `
      const cjs = require('ai-gateway-middleware')
      import('ai-gateway-middleware').then((esm) => {
        console.log(new esm.GatewayError('INTERNAL') instanceof cjs.GatewayError)
      })`
    expect(
      execFileSync(process.execPath, ['-e', script], { cwd: packageRoot, encoding: 'utf8' }).trim(),
    ).toBe('true')
  })
})
