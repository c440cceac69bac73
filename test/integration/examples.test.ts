import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMockProvider, type MockProvider } from '../../src/testing/index.js'
import { send } from '../helpers/http.js'

const packageRoot = fileURLToPath(new URL('../..', import.meta.url))

/** Starts an example as a user would, on a free port, and waits for the address it prints. */
function startExample(file: string, upstream: string): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--conditions=ai-gateway-source', `examples/${file}`],
    {
      cwd: packageRoot,
      env: { ...process.env, PORT: '0', UPSTREAM_URL: upstream, OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  return new Promise((resolve, reject) => {
    let output = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const match = /listening on (http:\/\/\S+)/.exec(output)
      if (match?.[1]) resolve({ child, base: match[1] })
    })
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.once('exit', (code) => reject(new Error(`examples/${file} exited with ${code}:\n${output}`)))
  })
}

describe('examples', () => {
  let mock: MockProvider
  const children: ChildProcess[] = []
  beforeAll(async () => {
    mock = await createMockProvider()
  })
  afterAll(async () => {
    for (const child of children) child.kill()
    await mock.close()
  })

  for (const file of ['express.ts', 'koa.ts', 'fastify.ts', 'custom-step.ts', 'custom-pipeline.ts']) {
    it(`${file} serves a chat completion through the gateway`, async () => {
      const { child, base } = await startExample(file, mock.url)
      children.push(child)
      const res = await send(`${base}/openai/chat/completions`, {
        body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
        headers: { 'x-team': 'research' },
      })
      expect(res.status).toBe(200)
      expect(res.json()).toMatchObject({ choices: [{ message: { content: 'mock reply to: hi' } }] })
    })
  }
})
