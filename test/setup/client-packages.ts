/**
 * Vitest global setup for the client tests that need packages of their own (the Vercel AI SDK,
 * Cloudflare's ai-gateway-provider and Claude Code, which require a newer Node than this library supports). They live in
 * the private package test/clients, with its own lockfile, so the main install stays clean on every
 * supported Node. On a Node their engines accept, this installs them (`npm ci` in test/clients) when their
 * node_modules is missing or was installed from another lockfile; on an older one, or when the install
 * fails outside CI, it says why in one line and those tests are reported as skipped.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import type { TestProject } from 'vitest/node'
import type { ProvidedClientTests } from './provided.js'

const CLIENTS_DIR = fileURLToPath(new URL('../clients/', import.meta.url))
const STAMP = join(CLIENTS_DIR, 'node_modules', '.installed-from')
const LOCK = join(CLIENTS_DIR, '.install-lock')
const WHAT = 'Client tests of test/clients (Vercel AI SDK, Claude Code)'

export default async function setup(project: TestProject): Promise<void> {
  project.provide('clientTests', await prepare())
}

async function prepare(): Promise<ProvidedClientTests> {
  const required = requiredNode()
  if (!satisfies(process.versions.node, required)) {
    return skipped(`their packages need Node ${required}, this is ${process.version}`)
  }
  const wanted = lockDigest()
  if (installedFrom() === wanted) return { available: true }
  try {
    await withInstallLock(async () => {
      // Another run may have installed them while this one waited for the lock.
      if (installedFrom() === wanted) return
      console.log(`${WHAT}: installing their packages (npm ci in test/clients)`)
      await npmCi()
      writeFileSync(STAMP, wanted)
    })
  } catch (error) {
    const reason = `npm ci in test/clients failed: ${error instanceof Error ? error.message : String(error)}`
    if (process.env.CI === 'true') throw new Error(`${WHAT}: ${reason}`)
    return skipped(reason)
  }
  return { available: true }
}

function skipped(reason: string): ProvidedClientTests {
  console.log(`${WHAT} skipped: ${reason}`)
  return { available: false, reason }
}

function requiredNode(): string {
  const manifest = JSON.parse(readFileSync(join(CLIENTS_DIR, 'package.json'), 'utf8')) as {
    engines?: { node?: string }
  }
  const range = manifest.engines?.node
  if (range === undefined) throw new Error('test/clients/package.json must declare engines.node')
  return range
}

/** `>=MAJOR[.MINOR[.PATCH]]`, the only form test/clients/package.json uses. */
function satisfies(version: string, range: string): boolean {
  const floor = /^>=\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(range.trim())
  if (floor === null) throw new Error(`test/clients engines.node: unsupported range '${range}' (use >=X.Y.Z)`)
  const have = version.split('.').map(Number)
  for (let i = 0; i < 3; i++) {
    const need = Number(floor[i + 1] ?? 0)
    const got = have[i] ?? 0
    if (got !== need) return got > need
  }
  return true
}

/** What the installed node_modules must have been installed from: the manifest and its lockfile. */
function lockDigest(): string {
  const hash = createHash('sha256')
  for (const file of ['package.json', 'package-lock.json']) hash.update(readFileSync(join(CLIENTS_DIR, file)))
  return hash.digest('hex')
}

function installedFrom(): string | undefined {
  return existsSync(STAMP) ? readFileSync(STAMP, 'utf8') : undefined
}

function npmCi(): Promise<void> {
  // npm on PATH runs under whichever node comes first there: the one running this setup, in CI too.
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  return new Promise((resolve, reject) => {
    execFile(
      npm,
      ['ci', '--no-audit', '--no-fund', '--loglevel=error'],
      { cwd: CLIENTS_DIR, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error === null) return resolve()
        const output = `${stdout}${stderr}`.trim().split('\n').slice(-20).join('\n')
        reject(new Error(`${error.message.split('\n')[0]}\n${output}`))
      },
    )
  })
}

/**
 * Runs `work` while holding a lock directory, so two runs started at once do not install into the same
 * node_modules together. A lock whose holder has exited is taken over.
 */
async function withInstallLock(work: () => Promise<void>): Promise<void> {
  for (;;) {
    // Made whole, pid inside, then renamed into place: the lock never exists without its holder's pid.
    const mine = mkdtempSync(join(CLIENTS_DIR, '.install-lock-'))
    writeFileSync(join(mine, 'pid'), String(process.pid))
    try {
      renameSync(mine, LOCK)
      break
    } catch (error) {
      rmSync(mine, { recursive: true, force: true })
      const code = (error as NodeJS.ErrnoException).code
      if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw error
      if (!holderAlive()) {
        rmSync(LOCK, { recursive: true, force: true })
        continue
      }
      // Waiting on another run's install: however long it takes, this only checks again.
      await sleep(250)
    }
  }
  try {
    await work()
  } finally {
    rmSync(LOCK, { recursive: true, force: true })
  }
}

function holderAlive(): boolean {
  let pid: number
  try {
    pid = Number(readFileSync(join(LOCK, 'pid'), 'utf8'))
  } catch {
    // Released between the failed rename and this read: not ours to remove, only to try again.
    return true
  }
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
