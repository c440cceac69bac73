/**
 * The dashboard in a real browser: headless Chromium (playwright-core) against a host app with the gateway,
 * traffic through it and a few days of history. It logs in, filters the logs and watches a new request
 * arrive, opens records, reads the charts, the spend report, rotates a key, rolls a route back, reads the
 * settings and logs out; and it is refused without a session. Each page is saved to test-results/screenshots/,
 * or, with `UPDATE_SCREENSHOTS=1`, to docs/screenshots/ for the README. Skipped, with one line at the start of
 * the run, where no Chromium is installed.
 */
import { mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createAdmin } from '../../src/admin/index.js'
import { createMemoryLogStore, type LogStore } from '../../src/index.js'
import { buildExpressAdmin } from '../helpers/admin-apps.js'
import {
  type DashboardDemo,
  DEMO_ADMIN_TOKEN,
  DEMO_OPENAI_KEY,
  historyRecords,
  startDashboardDemo,
} from '../helpers/dashboard-demo.js'
import { send } from '../helpers/http.js'
import { sampleRecord } from '../helpers/log-store.js'
import { until } from '../helpers/until.js'

const executablePath = inject('chromium')

/** What `waitForRows` waits for: every cell of a column reading `every`, or one row, with this log id. */
type RowsCheck = { readonly column: number; readonly every: string } | { readonly onlyId: string }

/** The page's DOM as the check reads it (the tests are compiled without the DOM's types). */
interface PageRows {
  readonly document: {
    querySelectorAll(selector: string): ArrayLike<{
      readonly children: ArrayLike<{ readonly textContent: string | null }>
      readonly dataset: Record<string, string | undefined>
    }>
  }
}

/**
 * Waits until the logs table has rows and they pass `check`. A function, not a string: the page's CSP
 * forbids `eval`, which is how a string predicate would run.
 */
function waitForRows(page: Page, check: RowsCheck): Promise<unknown> {
  return page.waitForFunction((c: RowsCheck) => {
    const rows = Array.from(
      (globalThis as unknown as PageRows).document.querySelectorAll('table.logs tbody tr'),
    )
    if (rows.length === 0) return false
    if ('onlyId' in c) return rows.length === 1 && rows[0]!.dataset.logId === c.onlyId
    return rows.every((row) => row.children[c.column - 1]?.textContent === c.every)
  }, check)
}
// The README's pictures change only when asked: a run of the suite leaves the checkout as it was.
const SCREENSHOTS = fileURLToPath(
  new URL(
    process.env.UPDATE_SCREENSHOTS === '1' ? '../../docs/screenshots/' : '../../test-results/screenshots/',
    import.meta.url,
  ),
)
const auth = { authorization: `Bearer ${DEMO_ADMIN_TOKEN}` }

describe.skipIf(executablePath === undefined)('dashboard in Chromium', () => {
  let demo: DashboardDemo
  let browser: Browser
  let context: BrowserContext
  let page: Page
  const problems: string[] = []
  const ids: Record<string, string> = {}

  beforeAll(async () => {
    demo = await startDashboardDemo()
    await demo.gateway.logs!.write(historyRecords(Date.now()))
    await traffic()
    mkdirSync(SCREENSHOTS, { recursive: true })
    browser = await chromium.launch({ executablePath: executablePath!, headless: true })
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' })
    page = await context.newPage()
    // A script error, or anything the CSP blocked, fails the test at its end.
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(message.text())
    })
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await demo?.close()
  })

  /** Live requests of every kind the pages show: plain, streamed, retried, failed, cached, routed. */
  async function traffic(): Promise<void> {
    const { url, mock } = demo
    ids.plain = await demo.chat('alice', 'What is a gateway?', { 'cf-aig-metadata': '{"session":"live-1"}' })
    await demo.chat('alice', 'And a proxy?', { 'cf-aig-metadata': '{"session":"live-1"}' })
    const stream = await send(`${url}/ai/anthropic/v1/messages`, {
      body: {
        model: 'claude-sonnet-4-5',
        max_tokens: 64,
        stream: true,
        messages: [{ role: 'user', content: 'Stream me a story' }],
      },
      headers: { 'x-user': 'bob' },
    })
    ids.stream = stream.headers['cf-aig-log-id']!
    mock.enqueue({ status: 503 })
    ids.retried = await demo.chat('carol', 'Try twice', { 'cf-aig-max-attempts': '2' })
    mock.enqueue({ status: 500 })
    ids.failed = await demo.chat('dave', 'This one fails')
    for (let i = 0; i < 2; i++) await demo.chat('bob', 'Cache me', { 'cf-aig-cache-ttl': '3600' })
    await send(`${url}/ai/compat/chat/completions`, {
      body: { model: 'dynamic/support', messages: [{ role: 'user', content: 'Routed' }] },
      headers: { 'x-user': 'alice' },
    })
    await send(`${url}/ai/google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent`, {
      body: { contents: [{ parts: [{ text: 'Hello Gemini' }] }] },
    })
    await demo.gateway.flushLogs()
  }

  const shot = (name: string) => page.screenshot({ path: `${SCREENSHOTS}${name}.png`, fullPage: true })
  const admin = () => `${demo.url}/ai-admin`
  /** Status of a call the page itself makes, with whatever cookie it holds. */
  const pageFetch = (path: string) => page.evaluate((target) => fetch(target).then((r) => r.status), path)
  const textOf = async (selector: string) => (await page.locator(selector).first().textContent()) ?? ''

  it('walks through every page, then logs out', { timeout: 180_000 }, async () => {
    // Without a session: the login page, and nothing else.
    await page.goto(admin())
    expect(new URL(page.url()).pathname).toBe('/ai-admin/')
    await page.locator('form[action="session"]').waitFor()
    expect(await pageFetch('logs')).toBe(401)
    expect(await pageFetch('settings')).toBe(401)
    await page.fill('#token', 'not-the-token-at-all')
    await page.click('button[type="submit"]')
    await page.getByText('That token was not accepted.').waitFor()
    await shot('login')

    await page.fill('#token', DEMO_ADMIN_TOKEN)
    await page.click('button[type="submit"]')
    await page.locator(`tr[data-log-id="${ids.plain}"]`).waitFor()
    const cookie = (await context.cookies()).find((c) => c.name === 'aigw_admin_session')!
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/ai-admin' })

    // Logs: newest first, filtered, and live.
    const providers = () => page.locator('table.logs tbody tr td:nth-child(2)').allInnerTexts()
    await page.locator('select[name="provider"] option[value="anthropic"]').waitFor({ state: 'attached' })
    await page.selectOption('select[name="provider"]', 'anthropic')
    await page.click('text=Apply filters')
    await waitForRows(page, { column: 2, every: 'anthropic' })
    expect(await page.locator(`tr[data-log-id="${ids.stream}"]`).count()).toBe(1)
    await page.selectOption('select[name="provider"]', '')
    await page.selectOption('select[name="success"]', 'false')
    await page.click('text=Apply filters')
    await waitForRows(page, { onlyId: ids.failed! })
    await page.click('text=Reset')
    await page.locator(`tr[data-log-id="${ids.plain}"]`).waitFor()
    expect(new Set(await providers())).toEqual(new Set(['openai', 'anthropic', 'google-ai-studio']))
    // A request made now shows up without a reload: the newest page is polled.
    const live = await demo.chat('erin', 'Am I live?')
    await page.locator(`tr[data-log-id="${live}"]`).waitFor()
    expect(await textOf(`tr[data-log-id="${live}"] td:nth-child(9)`)).toBe('erin')
    await shot('logs')

    // A record that was retried: its attempts, answer, tokens; feedback and score saved through PATCH.
    await page.click(`tr[data-log-id="${ids.retried}"] a`)
    await page.locator('ol.timeline li').nth(1).waitFor()
    expect(
      await page.locator('ol.timeline li').evaluateAll((items) => items.map((li) => li.dataset.action)),
    ).toEqual(['retry', 'answered'])
    expect(await textOf('ol.timeline li')).toContain('503')
    expect(await textOf('article.answer')).toContain('mock reply to: Try twice')
    expect(await textOf('[data-stat="attempts"] strong')).toBe('2')
    await page.click('.thumbs >> text=Good answer')
    await page.locator('.thumbs button[aria-pressed="true"]').waitFor()
    await page.fill('input[name="score"]', '90')
    await page.click('.feedback button[type="submit"]')
    await page.getByText('Saved.').waitFor()
    const patched = await send(`${admin()}/logs/${ids.retried}`, { headers: auth })
    expect(patched.json()).toMatchObject({ feedback: 1, score: 90 })
    await shot('log-detail')

    // A streamed answer, shown as the text it carried.
    await page.goto(`${admin()}/#/logs/${ids.stream}`)
    await page.locator('article.answer[data-answer-kind="stream"]').waitFor()
    expect(await textOf('article.answer')).toMatch(/streamed, \d+ events/)
    expect(await textOf('article.answer pre')).toContain('mock reply to: Stream me a story')
    // What guardrails and DLP found, without the text they found.
    const guarded = (
      await send(
        `${admin()}/logs?filters=${encodeURIComponent('[{"field":"dlpAction","op":"eq","value":"REDACT"}]')}`,
        { headers: auth },
      )
    ).json() as { records: { id: string }[] }
    await page.goto(`${admin()}/#/logs/${guarded.records[0]!.id}`)
    await page.locator('[data-guard]').waitFor()
    const guard = await textOf('[data-guard]')
    expect(guard).toContain('REDACT')
    expect(guard).toContain('credit_card')
    expect(guard).toContain('S6')
    expect(await textOf('[data-metadata]')).toContain('support')

    // Analytics: the charts hold what the API counts.
    await page.click('nav a[href="#/analytics"]')
    await page.locator('[data-chart="requests"] .u-legend .u-label').first().waitFor()
    const totals = (
      await send(`${admin()}/analytics?from=${Date.now() - 86_400_000}`, { headers: auth })
    ).json() as {
      rows: { requests: number; errors: number }[]
    }
    const requests = totals.rows[0]!.requests
    expect(await textOf('[data-stat="requests"] strong')).toBe(String(requests))
    const plotted = await page
      .locator('[data-chart="requests"] tbody td[data-value]')
      .evaluateAll((cells) => cells.reduce((sum, cell) => sum + Number(cell.getAttribute('data-value')), 0))
    // The page asked a moment after the API call above; nothing new was sent in between.
    expect(plotted).toBe(requests)
    expect(await page.locator('[data-chart="latency"] .u-legend .u-label').allInnerTexts()).toEqual([
      'Time',
      'p50',
      'p95',
    ])
    await page.selectOption('select[name="split"]', 'provider')
    await page.locator('[data-chart="requests"] .u-legend .u-label', { hasText: 'anthropic' }).waitFor()
    const labels = await page.locator('[data-chart="requests"] .u-legend .u-label').allInnerTexts()
    expect(labels).toEqual(expect.arrayContaining(['openai', 'anthropic', 'google-ai-studio']))
    expect(await page.locator('table.breakdown tbody tr').count()).toBe(3)
    await shot('analytics')

    // Spend per user.
    await page.click('nav a[href="#/spend"]')
    await page.locator('table.users tbody tr[data-principal="carol"]').waitFor()
    expect(await page.locator('tr[data-principal="carol"][data-heavy="true"]').count()).toBe(1)
    expect(await page.locator('tr[data-principal="dave"][data-heavy="false"]').count()).toBe(1)
    expect(await textOf('[data-stat="active-users"] strong')).toBe('5')
    const flagged = await page.locator('table.sessions tbody tr').allInnerTexts()
    expect(flagged.some((row) => row.includes('alice') && row.includes('a-big'))).toBe(true)
    await shot('spend')

    // Keys: add one, rotate one.
    await page.click('nav a[href="#/keys"]')
    await page.locator('tr[data-key="anthropic/team-a"]').waitFor()
    await page.fill('input[name="provider"]', 'openai')
    await page.fill('input[name="alias"]', 'backup')
    await page.fill('input[name="secret"]', 'sk-backup-key-0123456789abcdef')
    await page.click('text=Store key')
    await page.locator('tr[data-key="openai/backup"]').waitFor()
    await page.click('tr[data-key="anthropic/team-a"] >> text=Rotate')
    await page.fill(
      'tr[data-key="anthropic/team-a"] input[name="newSecret"]',
      'sk-ant-rotated-9876543210wxyz',
    )
    await page.click('tr[data-key="anthropic/team-a"] >> text=Save')
    await page.locator('tr[data-key="anthropic/team-a"] code.hint', { hasText: 'wxyz' }).waitFor()
    expect(await demo.keys.getSecret('anthropic', 'team-a')).toBe('sk-ant-rotated-9876543210wxyz')
    expect(await page.content()).not.toContain('rotated-9876543210')
    await shot('keys')

    // Routes: save and deploy a second version, then roll back to the first.
    await page.click('nav a[href="#/routes"]')
    await page.click('a[href="#/routes/support"]')
    await page.locator('tr[data-version="1"]').waitFor()
    await page.click('details.editor summary')
    await page.click('text=Save and deploy')
    await page.locator('tr[data-version="2"] .badge', { hasText: 'deployed' }).waitFor()
    await page.click('tr[data-version="1"] >> text=Roll back')
    await page.getByText('Rolled back to v1.').waitFor()
    expect((await demo.gateway.routes.deployed('support'))?.version).toBe(1)
    await shot('routes')

    // Settings: the gateway's options, secrets masked.
    await page.click('nav a[href="#/settings"]')
    await page.locator('[data-settings] > dl.tree').waitFor()
    const settings = await textOf('[data-settings]')
    expect(settings).toContain('[REDACTED]')
    expect(settings).toContain('firstByteMs')
    expect(await page.content()).not.toContain(DEMO_OPENAI_KEY)
    await shot('settings')

    // Logout ends the session: back to the login page, and the API refuses.
    await page.click('button.logout')
    await page.locator('form[action="session"]').waitFor()
    expect(await pageFetch('logs')).toBe(401)
    const stale = await send(`${admin()}/logs`, { headers: { cookie: `${cookie.name}=${cookie.value}` } })
    expect(stale.status).toBe(401)

    expect(problems).toEqual([])
  })
})

describe.skipIf(executablePath === undefined)('dashboard polling in Chromium', () => {
  it('polls the logs page again only once its last answer came, however slow the store', async () => {
    const inner = createMemoryLogStore()
    await inner.write([sampleRecord()])
    // The store's list answers only when told to, as a database under load would be late.
    let answer!: () => void
    const answered = new Promise<void>((resolve) => (answer = resolve))
    let lists = 0
    let inFlight = 0
    let mostInFlight = 0
    const logs: LogStore = {
      ...inner,
      async list(query) {
        lists++
        inFlight++
        mostInFlight = Math.max(mostInFlight, inFlight)
        try {
          await answered
          return await inner.list(query)
        } finally {
          inFlight--
        }
      },
    }
    const app = await buildExpressAdmin(createAdmin({ logs }), { bodyParser: false })
    const browser = await chromium.launch({ executablePath: executablePath!, headless: true })
    try {
      const page = await browser.newPage()
      // Counted as the page calls fetch, which a poll does within its timer: the count is exact as soon
      // as the fake clock has run the timers.
      await page.addInitScript(() => {
        const scope = globalThis as unknown as { fetch: typeof fetch; logsFetches: number }
        const original = scope.fetch.bind(scope)
        scope.logsFetches = 0
        scope.fetch = (input, init) => {
          if (String(input).startsWith('logs')) scope.logsFetches++
          return original(input, init)
        }
      })
      await page.clock.install()
      await page.goto(`${app.url}/ai-admin/`)
      await until(() => lists === 1)
      // Ten polls' worth of time while the first page is still on its way: no poll starts.
      await page.clock.runFor(30_000)
      const fetches = () =>
        page.evaluate(() => (globalThis as unknown as { logsFetches: number }).logsFetches)
      expect(await fetches()).toBe(1)

      answer()
      await page.locator('table.logs tbody tr').first().waitFor()
      // Once the answer is in, polling goes on.
      await page.clock.runFor(30_000)
      await until(() => lists >= 2)
      expect(mostInFlight).toBe(1)
    } finally {
      await browser.close()
      await app.close()
    }
  }, 60_000)
})
