import { execFile, execFileSync } from 'node:child_process'
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
    'createMemoryBreakerStore',
    'createMemoryCacheStore',
    'createMemoryLimitStore',
    'createMemoryLogStore',
    'createKeyRing',
    'createMemorySecretStore',
    'createMemoryRouteStore',
  ],
  'ai-gateway-middleware/express': ['aiGateway', 'aiGatewayErrorHandler', 'default'],
  'ai-gateway-middleware/koa': ['aiGateway', 'aiGatewayErrorHandler', 'default'],
  'ai-gateway-middleware/fastify': ['aiGateway', 'default'],
  'ai-gateway-middleware/testing': ['createMockProvider'],
  'ai-gateway-middleware/testing/conformance': [
    'breakerStoreConformance',
    'cacheStoreConformance',
    'limitStoreConformance',
    'logStoreConformance',
    'routeStoreConformance',
    'secretStoreConformance',
  ],
  'ai-gateway-middleware/redis': [
    'createRedisBreakerStore',
    'createRedisCacheStore',
    'createRedisLimitStore',
    'createRedisRouteStore',
    'createRedisSecretStore',
  ],
  'ai-gateway-middleware/postgres': [
    'createPostgresLogStore',
    'createPostgresRouteStore',
    'createPostgresSecretStore',
  ],
}

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
    for (const style of ['import', 'require'] as const) {
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

  for (const style of ['import', 'require'] as const) {
    it(`serves the dashboard from the built package (${style})`, async () => {
      // The admin finds dist/dashboard from wherever its built code landed (an entry or a shared chunk).
      const load =
        style === 'import'
          ? "const { createAdmin } = await import('ai-gateway-middleware')"
          : "const { createAdmin } = require('ai-gateway-middleware')"
      const script = `(async () => {
        ${load}
        const admin = createAdmin({ token: 'package-admin-token-0123456789' })
        const get = (path) => admin.handle({ method: 'GET', path, search: '', headers: {}, signal: new AbortController().signal })
        const page = await get('/')
        const style = /assets\\/([^"]+\\.css)/.exec(page.body)[1]
        const css = await get('/assets/' + style)
        console.log(JSON.stringify({ page: page.status, css: css.status, type: css.headers['content-type'] }))
      })()`
      const out = execFileSync(process.execPath, ['-e', script], { cwd: packageRoot, encoding: 'utf8' })
      expect(JSON.parse(out)).toEqual({ page: 200, css: 200, type: 'text/css; charset=utf-8' })
    })
  }

  it('packs the built dashboard', () => {
    const [packed] = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
        cwd: packageRoot,
        encoding: 'utf8',
      }),
    ) as [{ files: { path: string }[] }]
    const files = packed.files.map((file) => file.path)
    expect(files).toContain('dist/dashboard/manifest.json')
    expect(
      files.filter((file) => /^dist\/dashboard\/assets\/(app|style)-\w+\.(js|css)$/.test(file)),
    ).toHaveLength(2)
  })

  it('runs the conformance suites from a CommonJS test file that requires them', async () => {
    // Its own Vitest, as a CommonJS project's test run would be; the child must not think it is a worker
    // of this run.
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('VITEST')))
    const args = [
      'node_modules/vitest/vitest.mjs',
      'run',
      '--config',
      'test/fixtures/conformance-cjs/vitest.fixture.config.ts',
    ]
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
      execFile(
        process.execPath,
        args,
        { cwd: packageRoot, env: { ...env, NO_COLOR: '1', FORCE_COLOR: '0' } },
        (error, stdout, stderr) => {
          const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null
          resolve({ code, output: `${stdout}\n${stderr}` })
        },
      )
    })
    expect(code, output).toBe(0)
    expect(output).toMatch(/Tests\s+\d+ passed/)
    expect(output).not.toMatch(/failed|skipped/)
    // Only a bound on a hung child: a loaded machine may take a while to start a second Vitest.
  }, 120_000)
})
