/**
 * Vitest global setup for the dashboard's browser test: finds a Chromium to drive (`CHROMIUM_PATH`, else
 * Debian's `/usr/bin/chromium` and the usual other names) and hands its path to the workers
 * (`inject('chromium')`). Without one the run says so in one line and the browser test is reported as
 * skipped; under CI (`CI=true`, where .ci/run installs Chromium) the run fails instead.
 */
import { existsSync } from 'node:fs'
import type { TestProject } from 'vitest/node'

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome']

export default function setup(project: TestProject): void {
  const configured = process.env.CHROMIUM_PATH
  const found = configured ? (existsSync(configured) ? configured : undefined) : CANDIDATES.find(existsSync)
  if (found === undefined) {
    const where = configured ? `CHROMIUM_PATH (${configured})` : CANDIDATES.join(', ')
    const what = `No Chromium at ${where}`
    if (process.env.CI === 'true') throw new Error(`${what}: CI must run the dashboard's browser test`)
    console.log(
      `${what}: the dashboard's browser test is skipped; apt-get install -y chromium, or set CHROMIUM_PATH`,
    )
  }
  project.provide('chromium', found)
}
