import { execFileSync, spawnSync } from 'node:child_process'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

// Type-checks the README's examples against the package as it is published: packed with `npm pack`,
// unpacked into a fixture project's node_modules, and compiled by the repo's own TypeScript with
// `skipLibCheck: false`, so every published declaration file must compile and the `ctx.state` fields the
// steps set must be visible to a host. `npm test` builds first; run alone, this builds when dist is missing.
const packageRoot = fileURLToPath(new URL('../..', import.meta.url))
const fixtures = fileURLToPath(new URL('../fixtures/published-types', import.meta.url))
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

let root: string

beforeAll(() => {
  if (!existsSync(join(packageRoot, 'dist/src/index.d.ts'))) {
    execFileSync(npm, ['run', 'build'], { cwd: packageRoot, stdio: 'pipe' })
  }
  root = mkdtempSync(join(tmpdir(), 'aigw-published-types-'))
  const packed = execFileSync(npm, ['pack', '--silent', '--pack-destination', root], {
    cwd: packageRoot,
    encoding: 'utf8',
    env: { ...process.env, npm_config_ignore_scripts: 'true' },
  })
  const tarball = join(root, packed.trim().split('\n').pop()!.trim())
  execFileSync('tar', ['-xzf', tarball, '-C', root])

  // The dependencies and peers (express, koa, fastify, @types/*) come from the repo's own node_modules.
  const modules = join(root, 'node_modules')
  mkdirSync(modules)
  for (const entry of readdirSync(join(packageRoot, 'node_modules'))) {
    if (entry === 'ai-gateway-middleware' || entry.startsWith('.')) continue
    symlinkSync(join(packageRoot, 'node_modules', entry), join(modules, entry), 'junction')
  }
  cpSync(join(root, 'package'), join(modules, 'ai-gateway-middleware'), { recursive: true })
}, 180_000)

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true })
})

function typeCheck(type: 'module' | 'commonjs'): { status: number | null; output: string } {
  const project = join(root, type)
  cpSync(fixtures, project, { recursive: true })
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: `fixture-${type}`, private: true, type }),
  )
  writeFileSync(
    join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2023'],
        types: ['node'],
        strict: true,
        skipLibCheck: false,
        esModuleInterop: true,
        noEmit: true,
        // The repo's node_modules hoists express 5's content-disposition@2, whose own types lack the
        // `Options` that @types/koa reads; a Koa app's install resolves @types/content-disposition instead.
        paths: { 'content-disposition': [join(root, 'node_modules/@types/content-disposition')] },
      },
      include: ['*.ts', '*.cts'],
    }),
  )
  const result = spawnSync(
    process.execPath,
    [join(packageRoot, 'node_modules/typescript/bin/tsc'), '-p', project, '--pretty', 'false'],
    { cwd: project, encoding: 'utf8' },
  )
  return { status: result.status, output: `${result.stdout}${result.stderr}` }
}

describe('published types', () => {
  for (const type of ['module', 'commonjs'] as const) {
    it(`compile for a "type": "${type}" project with skipLibCheck: false`, () => {
      const { status, output } = typeCheck(type)
      expect(output).toBe('')
      expect(status).toBe(0)
    }, 60_000)
  }
})
