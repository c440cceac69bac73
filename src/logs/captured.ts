import type { LogRecord, LogStore } from './types.js'

/** A record, or one captured with its bodies still bytes: the queue builds those when their batch is written. */
export type QueuedRecord = LogRecord | CapturedRecord

/** The record's bodies as logged: decoded, a stream put together, secrets masked. */
export interface LoggedBodies {
  requestBody: string | null
  responseBody: string | null
}

/**
 * A record's bodies as the request and its answer carried them, and what makes them the logged text. A
 * store that keeps them so (`takesRawBodies`) makes the text only when a record is read with its bodies:
 * most records are never read, and the text costs a decoding and a search for secrets.
 */
export interface RawBodies {
  /** `undefined` where the logged body is null whatever it holds (none, or past the payload cap). */
  readonly request: Buffer | undefined
  readonly response: Buffer | undefined
  /**
   * The text is far smaller than the bytes (a stream's, put together from its events): a store keeps the
   * text, made with the batch, rather than hold bytes that would leave room for a fraction of the records,
   * unless the bytes are few enough to cost no record its place (see the memory store).
   */
  readonly smallerAsText: boolean
  text(request: Buffer | undefined, response: Buffer | undefined): LoggedBodies
}

/** A request's log record, its bodies null until built, with what they are made from. */
export class CapturedRecord {
  constructor(
    readonly record: LogRecord,
    readonly bodies: RawBodies | undefined,
  ) {}

  build(): LogRecord {
    const { record, bodies } = this
    if (bodies === undefined) return record
    const text = bodies.text(bodies.request, bodies.response)
    record.requestBody = text.requestBody
    record.responseBody = text.responseBody
    return record
  }
}

/** Writes a batch whose captured records keep their bodies as bytes. */
export type RawWrite = (batch: readonly QueuedRecord[]) => Promise<void>

// By the store object itself, not a method on it: a host's store that spreads the memory store and puts its
// own `write` in front must have every record go through that `write`.
const rawWrites = new WeakMap<LogStore, RawWrite>()

/** Marks `store` as one that takes captured bodies as bytes, written by `write`. */
export function takesRawBodies(store: LogStore, write: RawWrite): void {
  rawWrites.set(store, write)
}

/** How `store` takes captured bodies as bytes; `undefined` when it takes only text. */
export function rawWriteOf(store: LogStore): RawWrite | undefined {
  return rawWrites.get(store)
}
