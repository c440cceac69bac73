import { mkdirSync, writeFileSync } from 'node:fs'
import { afterAll, expect, it, onTestFinished } from 'vitest'
import type { GatewayOptions } from '../../src/index.js'
import type { MockScript } from '../../src/testing/index.js'
import { type FaultServer, startFaultServer, writeChunked, writeFixed } from '../helpers/fault-server.js'
import { send } from '../helpers/http.js'
import { chat, type World } from './scenarios.js'

/**
 * Sixteen ways a provider fails, each against the mock provider (and, where the mock cannot misbehave
 * that way, a raw fault server), under two settings: the gateway's defaults, and streams held whole
 * (`streams.commit: 'complete'`) with a first-token clock. Each row measures what the client got, how many
 * calls each target saw and how long the request took, and asserts that the answer was saved (for a
 * content-policy refusal: that the provider's refusal came back as it gave it, no other model asked). The
 * table is written to `test-results/failover-<framework>.md`.
 *
 * The clocks are shortened so that the table runs in seconds (the order between them is kept): a first
 * byte within 500 ms, an idle stream given up after 1 s, and, held whole, a first token within 300 ms. The
 * primary is `openai/gpt-4o-mini` on /compat, with one fallback, `anthropic/claude-haiku-4-5`.
 */
export function sixteenFailures(world: World, framework: string): void {
  const verdicts: Verdict[] = []
  afterAll(() => {
    if (verdicts.length === 0) return
    mkdirSync('test-results', { recursive: true })
    writeFileSync(
      `test-results/failover-${framework.replaceAll(' ', '-')}.md`,
      formatTable(framework, verdicts),
    )
  })

  for (const row of ROWS) {
    for (const settings of SETTINGS) {
      it(`sixteen failures (${settings.name}): ${row.name}: the answer is saved`, async () => {
        world.mock.reset()
        const startedAt = performance.now()
        const measured = await (row.run ?? runOnce)(world, row, settings.options)
        const verdict: Verdict = {
          row: row.name,
          settings: settings.name,
          ...measured,
          ms: Math.round(performance.now() - startedAt),
        }
        verdicts.push(verdict)
        expect(verdict, verdict.got).toMatchObject({ saved: true })
      })
    }
  }
}

const COMPAT = '/ai/compat/chat/completions'
const FALLBACK = 'anthropic/claude-haiku-4-5'
const CLOCKS = { firstByteMs: 500, idleMs: 1000 }

/** Chosen once: whatever a row needs beyond these is in its own scripts. */
const SETTINGS: readonly { name: string; options: GatewayOptions }[] = [
  { name: 'defaults', options: { timeouts: CLOCKS } },
  {
    name: 'held whole',
    options: { timeouts: { ...CLOCKS, firstTokenMs: 300 }, streams: { commit: 'complete' } },
  },
]

interface Measured {
  /** What the client got, in words. */
  readonly got: string
  readonly saved: boolean
  /** Calls each target saw. */
  readonly primary: number
  readonly fallback: number
}

interface Verdict extends Measured {
  readonly row: string
  readonly settings: string
  readonly ms: number
}

interface Row {
  readonly name: string
  readonly stream: boolean
  /** Scripts for the mock's calls in order (the primary's first). */
  readonly scripts?: MockScript[]
  /** A raw upstream in the primary's place. */
  readonly primary?: Parameters<typeof startFaultServer>[0]
  /** The right answer is the provider's own refusal, not an answer from another model. */
  readonly refusal?: boolean
  /** Rows that are more than one request. */
  readonly run?: (world: World, row: Row, options: GatewayOptions) => Promise<Measured>
}

const CONTENT_POLICY = {
  error: {
    message: 'Your request was rejected as a result of our safety system.',
    type: 'invalid_request_error',
    param: null,
    code: 'content_policy_violation',
  },
}

const ROWS: readonly Row[] = [
  {
    name: '429 with Retry-After',
    stream: false,
    scripts: [{ status: 429, retryAfter: 1 }],
  },
  { name: '429 without Retry-After', stream: false, scripts: [{ status: 429 }] },
  { name: '500 once', stream: false, scripts: [{ status: 500 }] },
  { name: '503 persistent', stream: true, scripts: [{ status: 503 }] },
  {
    name: 'connection reset before the headers',
    stream: false,
    primary: (_request, _res, socket) => void socket.destroy(),
  },
  { name: 'no response at all', stream: true, scripts: [{ stallBeforeHeaders: true }] },
  {
    name: 'first token 700 ms late',
    stream: true,
    scripts: [{ firstTokenDelayMs: 700 }],
  },
  { name: 'stream cut mid-answer', stream: true, scripts: [{ cutAfterEvents: 3 }] },
  {
    name: 'stream stalled mid-answer',
    stream: true,
    scripts: [{ stallAfterEvents: 3 }],
  },
  {
    name: 'malformed chunk mid-answer',
    stream: true,
    scripts: [{ malformedEventAt: 2 }],
  },
  { name: 'stream without [DONE]', stream: true, scripts: [{ omitTerminator: true }] },
  {
    name: 'context length exceeded',
    stream: false,
    scripts: [
      {
        status: 400,
        body: {
          error: {
            message: "This model's maximum context length is 128000 tokens.",
            type: 'invalid_request_error',
            param: 'messages',
            code: 'context_length_exceeded',
          },
        },
      },
    ],
  },
  {
    name: 'content-policy refusal',
    stream: false,
    scripts: [{ status: 400, body: CONTENT_POLICY }],
    refusal: true,
  },
  {
    name: 'fallback refuses the assistant prefill',
    stream: true,
    scripts: [{ cutAfterEvents: 3 }, { rejectPrefill: true }],
  },
  {
    name: 'primary down for a minute under steady traffic',
    stream: false,
    run: outage,
  },
  { name: 'accounting after a fallback', stream: true, run: accounting },
]

type HttpResult = Awaited<ReturnType<typeof send>>

const TEXT = 'one two three four'
const ANSWER = `mock reply to: ${TEXT}`

function request(row: Row, text = TEXT) {
  return chat(text, { model: 'openai/gpt-4o-mini', models: [FALLBACK], stream: row.stream })
}

/** Providers with the primary on a raw fault server. */
async function faultyPrimary(world: World, handler: NonNullable<Row['primary']>) {
  const fault = await startFaultServer(handler)
  onTestFinished(() => fault.close())
  return {
    fault,
    providers: {
      openai: { apiKey: 'sk-stored', baseURL: `${fault.url}/v1` },
      anthropic: { apiKey: 'sk-ant-stored', baseURL: world.mock.url },
    },
  }
}

async function runOnce(world: World, row: Row, options: GatewayOptions): Promise<Measured> {
  let fault: FaultServer | undefined
  let gatewayOptions = options
  if (row.primary !== undefined) {
    const faulty = await faultyPrimary(world, row.primary)
    fault = faulty.fault
    gatewayOptions = { ...options, providers: faulty.providers }
  }
  world.mock.enqueue(...(row.scripts ?? []))
  const url = await world.start(gatewayOptions)
  const res = await send(`${url}${COMPAT}`, { body: request(row) })
  const judged = row.refusal ? judgeRefusal(res) : judgeAnswer(res, row.stream)
  return {
    ...judged,
    primary: fault?.requests.length ?? callsTo(world, '/v1/chat/completions'),
    fallback: callsTo(world, '/v1/messages'),
  }
}

/**
 * Fifteen requests, one every four seconds of an injected clock, while the primary answers each call with a
 * chunked 503 for a minute and then recovers: every request is answered, and the breaker keeps most of
 * them off the primary.
 */
async function outage(world: World, row: Row, options: GatewayOptions): Promise<Measured> {
  let now = 1_700_000_000_000
  const downUntil = now + 60_000
  const { fault, providers } = await faultyPrimary(world, async (_request, res) => {
    if (now < downUntil)
      await writeChunked(res, 503, ['{"error":{"message":"down",', '"type":"server_error"}}'])
    else
      writeFixed(
        res,
        200,
        JSON.stringify({ object: 'chat.completion', choices: [{ message: { content: ANSWER } }] }),
      )
  })
  const url = await world.start({ ...options, providers, now: () => now })
  let answered = 0
  for (let i = 0; i < 15; i++) {
    const res = await send(`${url}${COMPAT}`, { body: request(row) })
    if (judgeAnswer(res, false).saved) answered++
    now += 4_000
  }
  // Without a breaker the primary would have been called for every one of the fifteen.
  const calls = fault.requests.length
  return {
    got: `${answered} of 15 answered; the primary called ${calls} times`,
    saved: answered === 15 && calls < 15,
    primary: calls,
    fallback: callsTo(world, '/v1/messages'),
  }
}

/** The primary fails; the record bills the fallback's model for the fallback's usage, and names both. */
async function accounting(world: World, row: Row, options: GatewayOptions): Promise<Measured> {
  world.mock.enqueue({ status: 503 })
  const url = await world.start(options)
  const res = await send(`${url}${COMPAT}`, {
    body: { ...request(row), stream_options: { include_usage: true } },
  })
  const judged = judgeAnswer(res, true)
  await world.gateway?.flushLogs()
  const record = await world.gateway?.logs?.get(res.headers['cf-aig-log-id'] as string)
  const billed =
    record?.provider === 'anthropic' &&
    record.model === 'claude-haiku-4-5' &&
    (record.tokensOut ?? 0) > 0 &&
    (record.cost ?? 0) > 0 &&
    record.attemptLog?.map((attempt) => attempt.action).join() === 'fallback,answered'
  return {
    got: `${judged.got}; logged as ${record?.provider} ${record?.model}, ${record?.tokensIn}+${record?.tokensOut} tokens, $${record?.cost}`,
    saved: judged.saved && billed,
    primary: callsTo(world, '/v1/chat/completions'),
    fallback: callsTo(world, '/v1/messages'),
  }
}

function callsTo(world: World, path: string): number {
  return world.mock.calls.filter((call) => call.path === path).length
}

/** Saved: the whole answer, complete (`[DONE]`, no error event, nothing broken in it). */
function judgeAnswer(res: HttpResult, stream: boolean): Pick<Measured, 'got' | 'saved'> {
  if (res.status !== 200) return { got: `${res.status} ${res.text.slice(0, 80)}`, saved: false }
  if (!stream) {
    const content = (res.json() as { choices?: { message?: { content?: string } }[] }).choices?.[0]?.message
      ?.content
    return content === ANSWER
      ? { got: '200, the whole answer', saved: true }
      : { got: `200, "${content}"`, saved: false }
  }
  let text = ''
  let broken = 0
  let errors = 0
  for (const line of res.text.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue
    try {
      const chunk = JSON.parse(line.slice(6))
      if (chunk.error !== undefined) errors++
      for (const choice of chunk.choices ?? []) text += choice.delta?.content ?? ''
    } catch {
      broken++
    }
  }
  const done = res.text.endsWith('data: [DONE]\n\n')
  if (text === ANSWER && done && broken === 0 && errors === 0) {
    return { got: '200, the whole answer streamed', saved: true }
  }
  const parts = [`200, "${text}"`]
  if (broken > 0) parts.push(`${broken} event(s) not JSON`)
  if (errors > 0) parts.push('an error event')
  parts.push(done ? '[DONE]' : 'no [DONE]')
  return { got: parts.join(', '), saved: false }
}

/** Saved: the provider's own refusal, as it gave it, and no other model asked. */
function judgeRefusal(res: HttpResult): Pick<Measured, 'got' | 'saved'> {
  const same = res.status === 400 && JSON.stringify(res.json()) === JSON.stringify(CONTENT_POLICY)
  return { got: `${res.status}, ${same ? "the provider's refusal as it gave it" : res.text}`, saved: same }
}

function formatTable(framework: string, verdicts: readonly Verdict[]): string {
  const lines = [
    `# Sixteen provider failures (${framework})`,
    '',
    '| failure | settings | saved | what the client got | calls (primary / fallback) | ms |',
    '| --- | --- | --- | --- | --- | --- |',
  ]
  for (const v of verdicts) {
    lines.push(
      `| ${v.row} | ${v.settings} | ${v.saved ? 'yes' : 'no'} | ${v.got.replaceAll('|', '\\|')} | ${v.primary} / ${v.fallback} | ${v.ms} |`,
    )
  }
  for (const { name } of SETTINGS) {
    const rows = verdicts.filter((v) => v.settings === name)
    lines.push('', `${name}: ${rows.filter((v) => v.saved).length} of ${rows.length} saved`)
  }
  return `${lines.join('\n')}\n`
}
