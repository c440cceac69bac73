/**
 * The dashboard's built files (`npm run build` writes them to `dist/dashboard/`, see
 * scripts/build-dashboard.ts), read once from the installed package and kept in memory with a gzipped copy:
 * they are small (tens of KiB), and every browser that opens the dashboard asks for them.
 */
import { existsSync, readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'

/** What the build's `manifest.json` names the bundle, so a stray file elsewhere is never taken for it. */
export const MANIFEST_NAME = 'ai-gateway-middleware-dashboard'
const PACKAGE_NAME = 'ai-gateway-middleware'

export interface AssetFile {
  readonly body: Buffer
  readonly gzip: Buffer
  readonly type: string
}

export interface DashboardAssets {
  /** File names under `assets/`, hashed by content. */
  readonly script: string
  readonly style: string
  readonly files: ReadonlyMap<string, AssetFile>
}

interface Manifest {
  name: string
  script: string
  style: string
  files: string[]
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
}

// A file name in the manifest: hashed names only, never a path.
const FILE_NAME = /^[A-Za-z0-9_-]+\.(?:js|css)$/

let loading: Promise<DashboardAssets | undefined> | undefined

/**
 * The built dashboard, or undefined when the package was not built with it (a checkout before
 * `npm run build`). Read at the first call; later calls share that read.
 *
 * @example
 * const assets = await dashboardAssets()
 * assets?.files.get(assets.script)?.body
 */
export function dashboardAssets(): Promise<DashboardAssets | undefined> {
  loading ??= loadAssets(findDashboardDir(moduleDir()))
  return loading
}

async function loadAssets(dir: string | undefined): Promise<DashboardAssets | undefined> {
  if (dir === undefined) return undefined
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Manifest
  const files = new Map<string, AssetFile>()
  for (const name of manifest.files) {
    if (!FILE_NAME.test(name)) continue
    const body = await readFile(join(dir, 'assets', name))
    files.set(name, {
      body,
      gzip: gzipSync(body, { level: 9 }),
      type: TYPES[name.slice(name.lastIndexOf('.'))]!,
    })
  }
  if (!files.has(manifest.script) || !files.has(manifest.style)) return undefined
  return { script: manifest.script, style: manifest.style, files }
}

/**
 * Where the build put the dashboard: `dist/dashboard` of the package this module belongs to, found by
 * walking up to its `package.json`. The same code runs from `src/admin/dashboard` (tests, the demo), from
 * `dist/` chunks and from `dist/src/`, installed or not.
 *
 * @example
 * findDashboardDir('/app/node_modules/ai-gateway-middleware/dist') // '/app/node_modules/ai-gateway-middleware/dist/dashboard'
 */
export function findDashboardDir(from: string): string | undefined {
  let dir = from
  for (let level = 0; level < 6; level++) {
    if (isPackageRoot(dir)) {
      const candidate = join(dir, 'dist', 'dashboard')
      return isDashboard(candidate) ? candidate : undefined
    }
    const parent = dirname(dir)
    if (parent === dir) return undefined
    dir = parent
  }
  return undefined
}

function isPackageRoot(dir: string): boolean {
  try {
    return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name === PACKAGE_NAME
  } catch {
    return false
  }
}

function isDashboard(dir: string): boolean {
  const file = join(dir, 'manifest.json')
  if (!existsSync(file)) return false
  try {
    return JSON.parse(readFileSync(file, 'utf8')).name === MANIFEST_NAME
  } catch {
    return false
  }
}

// The CommonJS build has __dirname; the ESM build has import.meta.url instead.
function moduleDir(): string {
  return typeof __dirname === 'string' ? __dirname : dirname(fileURLToPath(import.meta.url))
}
