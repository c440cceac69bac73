import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
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

  /**
   * Starts the server and resolves once it takes connections, however long that takes on a busy machine
   * (the hook's timeout is the limit); rejects if the server fails to start or exits first.
   */
  async up(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    )
    this.process = child
    let failure: Error | undefined
    child.once('error', (error) => {
      failure ??= error
    })
    child.once('exit', (code, signal) => {
      failure ??= new Error(`redis-server exited (${signal ?? code}) before it took connections`)
    })
    for (;;) {
      if (failure !== undefined) throw failure
      const probe = new Redis(this.url, { lazyConnect: true, retryStrategy: () => null })
      probe.on('error', () => {})
      const ok = await probe.connect().then(
        () => true,
        () => false,
      )
      probe.disconnect()
      if (ok) return
      await sleep(50)
    }
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
