import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type Server } from 'node:net'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { adminCommands, cacheCommand, formatCommands, tryCommands } from '../../examples/demo-commands.js'
import { createMockProvider, type MockProvider } from '../../src/testing/index.js'
import { send } from '../helpers/http.js'

const packageRoot = fileURLToPath(new URL('../..', import.meta.url))
const run = promisify(execFile)

// Real keys in the developer's environment would send the demos to the real providers.
const NO_PROVIDER_KEYS = {
  OPENAI_API_KEY: '',
  ANTHROPIC_API_KEY: '',
  GEMINI_API_KEY: '',
  GROQ_API_KEY: '',
  MISTRAL_API_KEY: '',
}

interface Example {
  readonly child: ChildProcess
  readonly output: { stdout: string; stderr: string }
  /** Resolves once stdout passes `test`; rejects, with the output, when the example ends first. */
  waitForStdout(test: (stdout: string) => boolean): Promise<void>
  /** The exit code, once the process has ended and all of its output is read. */
  readonly closed: Promise<number | null>
}

const running = new Set<ChildProcess>()

/** Starts an example as a user would (`npm start` is the same command for express.ts). */
function startExample(file: string, env: Record<string, string | undefined>): Example {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--conditions=ai-gateway-source', `examples/${file}`],
    { cwd: packageRoot, env: { ...process.env, PORT: '0', ...NO_PROVIDER_KEYS, ...env }, stdio: 'pipe' },
  )
  running.add(child)
  const output = { stdout: '', stderr: '' }
  const onStdout = new Set<() => void>()
  child.stdout.on('data', (chunk: Buffer) => {
    output.stdout += chunk.toString()
    for (const listener of onStdout) listener()
  })
  child.stderr.on('data', (chunk: Buffer) => {
    output.stderr += chunk.toString()
  })
  const closed = new Promise<number | null>((resolve) => {
    child.once('close', (code) => {
      running.delete(child)
      resolve(code)
    })
  })
  function waitForStdout(test: (stdout: string) => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!test(output.stdout)) return
        onStdout.delete(check)
        resolve()
      }
      onStdout.add(check)
      check()
      void closed.then((code) => {
        if (!onStdout.delete(check)) return
        reject(new Error(`examples/${file} exited with ${code}:\n${output.stdout}${output.stderr}`))
      })
    })
  }
  return { child, output, waitForStdout, closed }
}

async function stop(example: Example): Promise<void> {
  example.child.kill()
  await example.closed
}

afterAll(() => {
  for (const child of running) child.kill()
})

describe('examples', () => {
  let mock: MockProvider
  beforeAll(async () => {
    mock = await createMockProvider()
  })
  afterAll(() => mock.close())

  for (const file of ['express.ts', 'koa.ts', 'fastify.ts', 'custom-step.ts', 'custom-pipeline.ts']) {
    it(`${file} serves a chat completion through the gateway`, async () => {
      const example = startExample(file, { UPSTREAM_URL: mock.url })
      let base = ''
      await example.waitForStdout((stdout) => {
        base = /listening on (http:\/\/\S+)/.exec(stdout)?.[1] ?? ''
        return base !== ''
      })
      const res = await send(`${base}/openai/chat/completions`, {
        body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
        headers: { 'x-team': 'research' },
      })
      await stop(example)
      expect(res.status).toBe(200)
      expect(res.json()).toMatchObject({ choices: [{ message: { content: 'mock reply to: hi' } }] })
    })
  }
})

/** A printed command: the `# title` line above it and its lines, `\` continuations included. */
interface Printed {
  readonly title: string
  readonly command: string
}

function printedCommands(stdout: string): Printed[] {
  const lines = stdout.split('\n')
  const commands: Printed[] = []
  for (let i = 0; i < lines.length; i++) {
    const title = /^ {2}# (.+)$/.exec(lines[i]!)?.[1]
    if (title === undefined) continue
    const command = [lines[++i]!.slice(2)]
    while (command.at(-1)!.endsWith('\\')) command.push(lines[++i]!)
    commands.push({ title, command: command.join('\n') })
  }
  return commands
}

const parseJson = (stdout: string) => JSON.parse(stdout) as Record<string, unknown>

/**
 * What each printed command must answer, the demo answering from its bundled mock provider. Every printed
 * command must match exactly one check, and every check a printed command.
 */
const CHECKS: { name: string; matches: (command: string) => boolean; check: (stdout: string) => void }[] = [
  {
    name: 'OpenAI chat completion',
    matches: (c) => c.includes('/openai/chat/completions') && !/"stream":true|cf-aig-cache-ttl/.test(c),
    check: (stdout) =>
      expect(parseJson(stdout)).toMatchObject({
        object: 'chat.completion',
        choices: [{ message: { content: 'mock reply to: Hello!' } }],
      }),
  },
  {
    name: 'OpenAI stream',
    matches: (c) => c.includes('/openai/chat/completions') && c.includes('"stream":true'),
    check: (stdout) => {
      expect(stdout).toContain('"content":"mock"')
      expect(stdout.trimEnd().endsWith('data: [DONE]')).toBe(true)
    },
  },
  {
    name: 'Anthropic messages',
    matches: (c) => c.includes('/anthropic/v1/messages'),
    check: (stdout) =>
      expect(parseJson(stdout)).toMatchObject({
        type: 'message',
        content: [{ type: 'text', text: 'mock reply to: Hello!' }],
      }),
  },
  {
    name: 'Gemini generateContent',
    matches: (c) => c.includes('/google-ai-studio/'),
    check: (stdout) =>
      expect(parseJson(stdout)).toMatchObject({
        candidates: [{ content: { parts: [{ text: 'mock reply to: Hello!' }] } }],
      }),
  },
  {
    name: 'compat, answered by Anthropic',
    matches: (c) => c.includes('/compat/chat/completions'),
    check: (stdout) =>
      expect(parseJson(stdout)).toMatchObject({
        object: 'chat.completion',
        model: expect.stringMatching(/^claude-/),
        choices: [{ message: { role: 'assistant', content: 'mock reply to: Hello!' } }],
      }),
  },
  {
    name: 'cached, sent twice',
    matches: (c) => c.includes('cf-aig-cache-ttl'),
    check: (stdout) =>
      expect(stdout.trim().split(/\r?\n/)).toEqual(['cf-aig-cache-status: MISS', 'cf-aig-cache-status: HIT']),
  },
  {
    name: 'admin: request logs',
    matches: (c) => c.includes('/ai-admin/logs'),
    check: (stdout) => {
      const { records } = parseJson(stdout) as { records: Record<string, unknown>[] }
      expect(records).toHaveLength(5)
      expect(records).toContainEqual(
        expect.objectContaining({ path: '/compat/chat/completions', provider: 'anthropic', success: true }),
      )
      expect(records[0]).toMatchObject({
        path: '/openai/chat/completions',
        cached: true,
        outcome: 'cache_hit',
      })
      expect(records[1]).toMatchObject({
        path: '/openai/chat/completions',
        cached: false,
        outcome: 'success',
      })
    },
  },
  {
    name: 'admin: stored keys',
    matches: (c) => c.includes('/ai-admin/keys'),
    check: (stdout) => expect(parseJson(stdout)).toEqual({ keys: [] }),
  },
]

/**
 * Starts `npm start`'s demo, waits for its whole banner, and runs every command it printed, in order, with
 * `sh` and the real `curl`, checking each answer. Returns the demo's output once it has stopped.
 */
async function runPrintedCommands(adminToken: string): Promise<{ stdout: string; stderr: string }> {
  const env = { GATEWAY_ADMIN_TOKEN: adminToken, UPSTREAM_URL: undefined }
  const demo = startExample('express.ts', env)
  let base = ''
  await demo.waitForStdout((stdout) => {
    base = /listening on (http:\/\/[^/\s]+)\/ai /.exec(stdout)?.[1] ?? ''
    const admin = adminCommands(`${base}/ai-admin`, adminToken ? '$GATEWAY_ADMIN_TOKEN' : undefined)
    return base !== '' && stdout.includes(formatCommands(admin))
  })

  const printed = printedCommands(demo.output.stdout)
  // The banner is the shared list, as printed: the demo prints no command the list lacks, and no other.
  const expected = [
    ...tryCommands(`${base}/ai`),
    cacheCommand(`${base}/ai`),
    ...adminCommands(`${base}/ai-admin`, adminToken ? '$GATEWAY_ADMIN_TOKEN' : undefined),
  ].map(({ title, lines }) => ({ title, command: lines.join(' \\\n    ') }))
  expect(printed).toEqual(expected)

  const used = new Set<string>()
  for (const { title, command } of printed) {
    const checks = CHECKS.filter((check) => check.matches(command))
    expect(
      checks.map((check) => check.name),
      `checks for "${title}"`,
    ).toHaveLength(1)
    used.add(checks[0]!.name)
    // A proxy in the developer's environment must not stand between curl and the demo on loopback.
    const shellEnv = { ...process.env, ...env, no_proxy: '127.0.0.1', NO_PROXY: '127.0.0.1' }
    const { stdout } = await run('sh', ['-c', command], { env: shellEnv })
    try {
      checks[0]!.check(stdout)
    } catch (error) {
      throw new Error(`"${title}" answered:\n${stdout}`, { cause: error })
    }
  }
  expect([...used].sort()).toEqual(CHECKS.map((check) => check.name).sort())

  // The dashboard, at the URL the demo prints: its login page, or with no token the app itself.
  expect(demo.output.stdout).toContain(`Dashboard: ${base}/ai-admin/`)
  const dashboard = await send(`${base}/ai-admin/`)
  expect(dashboard.status).toBe(200)
  expect(dashboard.text).toContain(adminToken ? 'action="session"' : '<div id="app"></div>')

  await stop(demo)
  return demo.output
}

describe('npm start (examples/express.ts)', () => {
  it('prints commands that all work against it, the admin ones with its token', async () => {
    const output = await runPrintedCommands('demo-admin-token-for-tests')
    expect(output.stdout).not.toContain('demo-admin-token-for-tests') // printed as $GATEWAY_ADMIN_TOKEN
    expect(output.stderr).not.toContain('has no token')
  })

  it('warns when its admin API has no token, and the printed commands work without one', async () => {
    const output = await runPrintedCommands('')
    expect(output.stderr).toContain('Warning: the admin API at http://127.0.0.1:')
    expect(output.stderr).toContain('has no token (GATEWAY_ADMIN_TOKEN is empty)')
    expect(output.stdout).not.toContain('authorization')
  })

  for (const [file, run] of [
    ['express.ts', 'npm start'],
    ['koa.ts', 'npx tsx --conditions=ai-gateway-source examples/koa.ts'],
    ['fastify.ts', 'npx tsx --conditions=ai-gateway-source examples/fastify.ts'],
    ['custom-step.ts', 'npx tsx --conditions=ai-gateway-source examples/custom-step.ts'],
    ['custom-pipeline.ts', 'npx tsx --conditions=ai-gateway-source examples/custom-pipeline.ts'],
  ] as const) {
    it(`${file} exits with a message naming the port and PORT when its port is taken`, async () => {
      const taken: Server = createServer()
      taken.listen(0, '127.0.0.1')
      await once(taken, 'listening')
      const { port } = taken.address() as { port: number }
      try {
        // Its own mock provider running, as with `npm start`: that server used to keep the process alive.
        const demo = startExample(file, { PORT: String(port), UPSTREAM_URL: undefined })
        const code = await demo.closed
        expect(code).toBe(1)
        expect(demo.output.stderr).toContain(`port ${port} on 127.0.0.1 is already in use`)
        expect(demo.output.stderr).toContain(`PORT=${port + 1} ${run}`)
        expect(demo.output.stdout).not.toContain('listening on')
      } finally {
        taken.close()
      }
    })
  }
})
