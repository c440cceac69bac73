/**
 * Builds the admin dashboard into `dist/dashboard/` (run by `npm run build`, after tsup, which empties
 * `dist/`): one script and one stylesheet under content-hashed names, and a `manifest.json` naming them,
 * which the admin reads at run time (src/admin/dashboard/assets.ts). Nothing is fetched from a CDN or at
 * run time: the files ship in the package.
 *
 * What it is made of, chosen for size and for needing nothing but the browser:
 * - Preact for components: React's API and hooks in about 4 KiB gzipped, no runtime dependencies.
 * - uPlot for charts: canvas time series in about 20 KiB gzipped, fast with thousands of points, no
 *   dependencies; heavier libraries (Chart.js, ECharts) would each be larger than the rest put together.
 * - Pico CSS for styling: a good-looking default for plain semantic HTML (tables, forms, cards) with no
 *   script and no class soup, about 12 KiB gzipped.
 * - esbuild to bundle and minify: already here as tsup's engine.
 *
 * The build prints each file's size, raw and gzipped, and fails past BUDGET_BYTES gzipped in all.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'
import { MANIFEST_NAME } from '../src/admin/dashboard/assets.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
/** The whole dashboard, gzipped: 150 KiB. */
export const BUDGET_BYTES = 150 * 1024

export interface BuiltFile {
  readonly name: string
  readonly bytes: number
  readonly gzipBytes: number
}

/**
 * Bundles the dashboard into `outDir` and returns its files with their sizes.
 *
 * @example
 * const files = await buildDashboard(join(root, 'dist', 'dashboard'))
 */
export async function buildDashboard(outDir: string): Promise<BuiltFile[]> {
  const result = await build({
    absWorkingDir: root,
    entryPoints: { app: 'dashboard/src/main.tsx', style: 'dashboard/src/style.css' },
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['chrome111', 'firefox113', 'safari16.4'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    tsconfig: 'dashboard/tsconfig.json',
    entryNames: '[name]-[hash]',
    outdir: join(outDir, 'assets'),
    legalComments: 'none',
    // No source maps in the package: they would triple its size.
    sourcemap: false,
    write: false,
    logLevel: 'warning',
  })
  await rm(outDir, { recursive: true, force: true })
  await mkdir(join(outDir, 'assets'), { recursive: true })
  const files: BuiltFile[] = []
  for (const file of result.outputFiles) {
    await writeFile(file.path, file.contents)
    files.push({
      name: basename(file.path),
      bytes: file.contents.byteLength,
      gzipBytes: gzipSync(file.contents, { level: 9 }).byteLength,
    })
  }
  const named = (prefix: string, extension: string) =>
    files.find((file) => file.name.startsWith(prefix) && file.name.endsWith(extension))!.name
  const manifest = {
    name: MANIFEST_NAME,
    script: named('app-', '.js'),
    style: named('style-', '.css'),
    files: files.map((file) => file.name).sort(),
  }
  await writeFile(join(outDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  return files
}

const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`

async function main(): Promise<void> {
  const outDir = join(root, 'dist', 'dashboard')
  const files = await buildDashboard(outDir)
  const total = files.reduce((sum, file) => sum + file.gzipBytes, 0)
  console.log('Dashboard (dist/dashboard/assets):')
  for (const file of files) {
    console.log(
      `  ${file.name.padEnd(28)} ${kib(file.bytes).padStart(10)}  ${kib(file.gzipBytes).padStart(9)} gzipped`,
    )
  }
  console.log(`  total ${kib(total)} gzipped (budget ${kib(BUDGET_BYTES)})`)
  if (total > BUDGET_BYTES) {
    console.error(`The dashboard is ${kib(total - BUDGET_BYTES)} over its budget.`)
    process.exitCode = 1
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main()
