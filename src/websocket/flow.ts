import type { WebSocket } from 'ws'

/** What a flow control reports when it pauses its source, and when it resumes it. */
export type FlowChange = (state: 'paused' | 'resumed', bufferedAmount: number) => void

/**
 * Backpressure from one WebSocket to another: once more than `highWaterMark` bytes wait to be written to
 * the sink (a slow reader), the source is no longer read (`pause()`: its TCP window closes and its sender
 * waits in turn); once half of that has been written out, it is read again. Memory held for a slow reader
 * is thus at most `highWaterMark` plus the frames already read when it was reached, whatever the other side
 * would send.
 *
 * @example
 * const valve = new Valve(provider, client, 1024 * 1024, report)
 * client.send(frame, (error) => valve.written())
 * valve.sent()
 */
export class Valve {
  #paused = false

  constructor(
    private readonly source: WebSocket,
    private readonly sink: WebSocket,
    private readonly highWaterMark: number,
    private readonly onChange: FlowChange,
  ) {}

  get paused(): boolean {
    return this.#paused
  }

  /** After each send to the sink: pauses the source once the sink's queue passed the mark. */
  sent(): void {
    if (this.#paused || this.sink.bufferedAmount <= this.highWaterMark) return
    this.#paused = true
    this.source.pause()
    this.onChange('paused', this.sink.bufferedAmount)
  }

  /** From each send's callback: resumes the source once the sink's queue is down to half the mark. */
  written(): void {
    if (!this.#paused || this.sink.bufferedAmount > this.highWaterMark / 2) return
    this.#paused = false
    this.source.resume()
    this.onChange('resumed', this.sink.bufferedAmount)
  }
}

/**
 * Backpressure from a WebSocket to the streams feeding it (a universal socket's answers): `room()` resolves
 * at once while the socket's queue is under `highWaterMark`, and otherwise once half of it has been written
 * out, so a stream read in a loop that awaits it is pulled no faster than the client reads.
 */
export class Gate {
  #waiting: (() => void)[] = []

  constructor(
    private readonly sink: WebSocket,
    private readonly highWaterMark: number,
    private readonly onChange: FlowChange,
  ) {}

  /** Resolves when the socket has room for more. */
  room(): Promise<void> | undefined {
    if (this.sink.bufferedAmount <= this.highWaterMark) return undefined
    if (this.#waiting.length === 0) this.onChange('paused', this.sink.bufferedAmount)
    return new Promise((resolve) => this.#waiting.push(resolve))
  }

  /** From each send's callback (and when the socket closes): lets the waiting streams go on once it drained. */
  written(closed = false): void {
    if (this.#waiting.length === 0) return
    if (!closed && this.sink.bufferedAmount > this.highWaterMark / 2) return
    const waiting = this.#waiting
    this.#waiting = []
    this.onChange('resumed', this.sink.bufferedAmount)
    for (const resolve of waiting) resolve()
  }
}
