import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { Redis } from 'ioredis'

/**
 * A `redis-server` of the test's own on a free port, without persistence, so it can be stopped, paused
 * (SIGSTOP: its connections stay open and commands sent meanwhile wait in their sockets) and started again
 * without disturbing other test files. Call `down()` in `afterAll`.
 */
export class PrivateRedis {
  process: ChildProcess | undefined
  constructor(readonly port: number) {}

  static async start(): Promise<PrivateRedis> {
    const server = createServer().listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as { port: number }
    server.close()
    const redis = new PrivateRedis(port)
    await redis.up()
    return redis
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`
  }

  async up(): Promise<void> {
    this.process = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    )
    for (let i = 0; i < 100; i++) {
      const probe = new Redis(this.url, { lazyConnect: true, retryStrategy: () => null })
      probe.on('error', () => {})
      const ok = await probe.connect().then(
        () => true,
        () => false,
      )
      probe.disconnect()
      if (ok) return
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    throw new Error('redis-server did not start')
  }

  /** Freezes the server: it keeps its connections but runs nothing until `resume()`. */
  pause(): void {
    this.process?.kill('SIGSTOP')
  }

  resume(): void {
    this.process?.kill('SIGCONT')
  }

  async down(): Promise<void> {
    const child = this.process
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGKILL')
    await once(child, 'exit')
  }
}
