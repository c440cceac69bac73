import { type Body, type BodyPlace, BodySlabs, bodiesAt } from './body-slabs.js'
import type { RawBodies } from './captured.js'
import { isLogId, storableText } from './filters.js'
import { IdIndex } from './id-index.js'
import { storableMetadata } from './query.js'
import { LOG_OUTCOMES, type LogMetadata, type LogOutcome, type LogRecord } from './types.js'

// The memory store's records as rows of columns: numbers in one Float64Array, flags in bytes, ids in an
// `IdIndex`, and in one plain array what must stay a string or an object: text shared between records
// (provider and model names, paths), metadata when there is any, and the rare nested fields.
// A record written as an object of its own would keep some ten objects per record (the record, its id and
// path strings, its metadata, what makes its bodies' text) alive until the store drops it: each was copied
// by two young collections and then marked by every full one, for as long as the store keeps it, which at
// the default bound of 10,000 records and thousands of requests a second was the larger part of what
// logging cost the collector. Kept so, the usual record leaves no object of its own behind.

// Numbers: `NaN` stands for null (no field that may be null may be NaN).
const CREATED_AT = 0
const DURATION = 1
const TTFB = 2
const TOKENS_IN = 3
const TOKENS_OUT = 4
const COST = 5
const STEP = 6
const ERROR_CODE = 7
const SCORE = 8
const STATUS = 9
const ATTEMPTS = 10
const REQUEST_SIZE = 11
const RESPONSE_SIZE = 12
const BODY_BYTES = 13
const BODY_START = 14
const BODY_MIDDLE = 15
const BODY_END = 16
const NUMBERS = 17

// Bytes: whether the row holds a record, its flags, its outcome.
const ALIVE = 0
const FLAGS = 1
const OUTCOME = 2
const BYTES = 3

const SUCCESS = 1
const CACHED = 2
const CUSTOM_COST = 4
const FEEDBACK_UP = 8
const FEEDBACK_DOWN = 16
const REQUEST_NULL = 32
const RESPONSE_NULL = 64

// Strings and objects.
const PROVIDER = 0
const MODEL = 1
const PATH = 2
const EVENT_ID = 3
const PRINCIPAL = 4
/** `undefined` for empty metadata. */
const METADATA = 5
/** `undefined` for a record without any of the rare fields. */
const EXTRAS = 6
const SLAB = 7
const TEXT = 8
const REFS = 9

const FIRST_CAPACITY = 1024

type Slab = NonNullable<BodyPlace['slab']>

/** The fields few records have, kept as the record had them. */
type Extras = Pick<LogRecord, 'attemptLog' | 'route' | 'guard' | 'websocket'>

const OUTCOME_INDEX = new Map<LogOutcome, number>(LOG_OUTCOMES.map((outcome, i) => [outcome, i]))

/** Texts that repeat across records (provider and model names, paths, principals), kept once. */
class Interned {
  // Bounded in count and in length (a model name is whatever a client sent): past the count the table starts
  // over, and longer texts are not shared. Texts already kept stay as they are, only no longer shared.
  static readonly #MAX = 4096
  static readonly #MAX_LENGTH = 256
  // Text as written → the same text as stored.
  readonly #texts = new Map<string, string>()

  /** The text as stored (see `storableText`), the same string for the same text. */
  of(text: string | null): string | null {
    if (text === null) return null
    if (text.length > Interned.#MAX_LENGTH) return storableText(text)
    const known = this.#texts.get(text)
    if (known !== undefined) return known
    if (this.#texts.size >= Interned.#MAX) this.#texts.clear()
    const stored = storableText(text)
    this.#texts.set(text, stored)
    return stored
  }
}

/** A record's bodies as the table takes them: text, or bytes as captured with what makes their text. */
export interface RowBodies {
  readonly request: Body
  readonly response: Body
  /** Bytes of both, as kept. */
  readonly bytes: number
  readonly text: RawBodies['text'] | undefined
}

/**
 * Records in write order, each in a row found by its id. Rows are taken in a ring; a deleted record leaves
 * its row empty until the ring comes round to it, or until the ring, full, is rebuilt without the empty
 * rows (or, when most rows hold records, twice as large).
 */
export class RecordTable {
  /** Records held. */
  size = 0
  readonly slabs = new BodySlabs()
  #capacity = 0
  #mask = 0
  #numbers = new Float64Array(0)
  #bytes = new Uint8Array(0)
  #refs: unknown[] = []
  #ids = new IdIndex(0)
  // Positions in write order; a row is `position & mask`. Rows from `head` to `tail` are taken.
  #head = 0
  #tail = 0
  readonly #interned = new Interned()
  /** One place object reused to hand the slabs a row's bodies. */
  readonly #place: BodyPlace = { slab: undefined, start: 0, middle: 0, end: 0, nulls: 0 }

  constructor() {
    this.#resize(FIRST_CAPACITY)
  }

  /** The row of the record with this id, or -1; the id in any case. */
  find(id: string): number {
    return isLogId(id) ? this.#ids.find(id.toLowerCase()) : -1
  }

  /**
   * Adds a checked record (see `checkedLogRecord`) as its newest; false, and nothing added, when one with
   * its id is held. Its text is made storable and its id lower-case, as every store keeps them.
   */
  add(record: LogRecord, bodies: RowBodies | undefined): boolean {
    if (this.#tail - this.#head === this.#capacity)
      this.#resize(this.size * 2 <= this.#capacity ? this.#capacity : this.#capacity * 2)
    const row = this.#tail & this.#mask
    if (!this.#ids.add(row, record.id.toLowerCase())) return false
    this.#tail++
    this.size++
    const n = row * NUMBERS
    const numbers = this.#numbers
    numbers[n + CREATED_AT] = record.createdAt
    numbers[n + DURATION] = record.durationMs
    numbers[n + TTFB] = record.ttfbMs ?? Number.NaN
    numbers[n + TOKENS_IN] = record.tokensIn ?? Number.NaN
    numbers[n + TOKENS_OUT] = record.tokensOut ?? Number.NaN
    numbers[n + COST] = record.cost ?? Number.NaN
    numbers[n + STEP] = record.step ?? Number.NaN
    numbers[n + ERROR_CODE] = record.errorCode ?? Number.NaN
    numbers[n + SCORE] = record.score ?? Number.NaN
    numbers[n + STATUS] = record.statusCode
    numbers[n + ATTEMPTS] = record.attempts
    numbers[n + REQUEST_SIZE] = record.requestSize
    numbers[n + RESPONSE_SIZE] = record.responseSize
    numbers[n + BODY_BYTES] = 0
    const b = row * BYTES
    this.#bytes[b + ALIVE] = 1
    this.#bytes[b + FLAGS] =
      (record.success ? SUCCESS : 0) |
      (record.cached ? CACHED : 0) |
      (record.customCost ? CUSTOM_COST : 0) |
      feedbackFlags(record.feedback)
    this.#bytes[b + OUTCOME] = OUTCOME_INDEX.get(record.outcome)!
    const r = row * REFS
    const refs = this.#refs
    const interned = this.#interned
    refs[r + PROVIDER] = interned.of(record.provider)
    refs[r + MODEL] = interned.of(record.model)
    refs[r + PATH] = interned.of(record.path)
    refs[r + EVENT_ID] = record.eventId === null ? null : storableText(record.eventId)
    refs[r + PRINCIPAL] = interned.of(record.principal)
    refs[r + METADATA] = storedMetadata(record.metadata)
    refs[r + EXTRAS] = extrasOf(record)
    refs[r + SLAB] = undefined
    refs[r + TEXT] = undefined
    if (bodies !== undefined) this.#writeBodies(row, bodies)
    return true
  }

  /** The oldest record's row, or -1 when none is held. */
  oldest(): number {
    while (this.#head < this.#tail && this.#bytes[(this.#head & this.#mask) * BYTES + ALIVE] === 0)
      this.#head++
    return this.#head < this.#tail ? this.#head & this.#mask : -1
  }

  /** The rows held, in write order. Rows removed while iterating are skipped; none may be added. */
  *rows(): Generator<number> {
    for (let position = this.#head; position < this.#tail; position++) {
      const row = position & this.#mask
      if (this.#bytes[row * BYTES + ALIVE] === 1) yield row
    }
  }

  /** Removes the record; `erase` zeroes its bodies' bytes now (a deletion, not an eviction). */
  remove(row: number, erase: boolean): void {
    this.#releaseBodies(row, erase)
    this.#bytes[row * BYTES + ALIVE] = 0
    const r = row * REFS
    this.#ids.remove(row)
    for (let field = 0; field < REFS; field++) this.#refs[r + field] = undefined
    this.size--
  }

  /** Bytes of the row's bodies as kept. */
  bodyBytes(row: number): number {
    return this.#numbers[row * NUMBERS + BODY_BYTES]!
  }

  /** The row's record, bodies null, as a new object the caller may change. */
  record(row: number): LogRecord {
    const n = row * NUMBERS
    const numbers = this.#numbers
    const flags = this.#bytes[row * BYTES + FLAGS]!
    const r = row * REFS
    const refs = this.#refs
    const metadata = refs[r + METADATA] as LogMetadata | undefined
    const record: LogRecord = {
      id: this.#ids.idOf(row),
      createdAt: numbers[n + CREATED_AT]!,
      provider: refs[r + PROVIDER] as string | null,
      model: refs[r + MODEL] as string | null,
      path: refs[r + PATH] as string,
      success: (flags & SUCCESS) !== 0,
      statusCode: numbers[n + STATUS]!,
      cached: (flags & CACHED) !== 0,
      durationMs: numbers[n + DURATION]!,
      ttfbMs: orNull(numbers[n + TTFB]!),
      tokensIn: orNull(numbers[n + TOKENS_IN]!),
      tokensOut: orNull(numbers[n + TOKENS_OUT]!),
      cost: orNull(numbers[n + COST]!),
      customCost: (flags & CUSTOM_COST) !== 0,
      metadata: metadata === undefined ? {} : { ...metadata },
      step: orNull(numbers[n + STEP]!),
      eventId: refs[r + EVENT_ID] as string | null,
      attempts: numbers[n + ATTEMPTS]!,
      requestSize: numbers[n + REQUEST_SIZE]!,
      responseSize: numbers[n + RESPONSE_SIZE]!,
      outcome: LOG_OUTCOMES[this.#bytes[row * BYTES + OUTCOME]!]!,
      errorCode: orNull(numbers[n + ERROR_CODE]!),
      principal: refs[r + PRINCIPAL] as string | null,
      requestBody: null,
      responseBody: null,
      feedback: flags & FEEDBACK_UP ? 1 : flags & FEEDBACK_DOWN ? -1 : null,
      score: orNull(numbers[n + SCORE]!),
    }
    const extras = refs[r + EXTRAS] as Extras | undefined
    if (extras !== undefined) copyExtras(extras, record)
    return record
  }

  /** The row's bodies' bytes and what makes their text, `undefined` when it kept none. */
  bodies(
    row: number,
  ):
    | { request: Buffer | undefined; response: Buffer | undefined; text: RawBodies['text'] | undefined }
    | undefined {
    const place = this.#placeOf(row)
    if (place.slab === undefined) return undefined
    return { ...bodiesAt(place), text: this.#refs[row * REFS + TEXT] as RawBodies['text'] | undefined }
  }

  setFeedback(row: number, feedback: 1 | -1 | null): void {
    const b = row * BYTES + FLAGS
    this.#bytes[b] = (this.#bytes[b]! & ~(FEEDBACK_UP | FEEDBACK_DOWN)) | feedbackFlags(feedback)
  }

  setScore(row: number, score: number | null): void {
    this.#numbers[row * NUMBERS + SCORE] = score ?? Number.NaN
  }

  setMetadata(row: number, metadata: LogMetadata): void {
    this.#refs[row * REFS + METADATA] = storedMetadata(metadata)
  }

  #writeBodies(row: number, bodies: RowBodies): void {
    const place = this.#place
    this.slabs.write(place, bodies.request, bodies.response, bodies.bytes)
    const n = row * NUMBERS
    this.#numbers[n + BODY_BYTES] = bodies.bytes
    this.#numbers[n + BODY_START] = place.start
    this.#numbers[n + BODY_MIDDLE] = place.middle
    this.#numbers[n + BODY_END] = place.end
    const b = row * BYTES + FLAGS
    this.#bytes[b] =
      this.#bytes[b]! |
      (bodies.request == null ? REQUEST_NULL : 0) |
      (bodies.response == null ? RESPONSE_NULL : 0)
    this.#refs[row * REFS + SLAB] = place.slab
    this.#refs[row * REFS + TEXT] = bodies.text
    place.slab = undefined
  }

  #releaseBodies(row: number, erase: boolean): void {
    const place = this.#placeOf(row)
    if (place.slab === undefined) return
    this.slabs.release(place, erase)
    this.#refs[row * REFS + SLAB] = undefined
    this.#numbers[row * NUMBERS + BODY_BYTES] = 0
  }

  #placeOf(row: number): BodyPlace {
    const place = this.#place
    const n = row * NUMBERS
    const flags = this.#bytes[row * BYTES + FLAGS]!
    place.slab = this.#refs[row * REFS + SLAB] as Slab | undefined
    place.start = this.#numbers[n + BODY_START]!
    place.middle = this.#numbers[n + BODY_MIDDLE]!
    place.end = this.#numbers[n + BODY_END]!
    place.nulls = (flags & REQUEST_NULL ? 1 : 0) | (flags & RESPONSE_NULL ? 2 : 0)
    return place
  }

  /** Moves the held records, in write order, to the first rows of new columns of `capacity` rows. */
  #resize(capacity: number): void {
    const numbers = new Float64Array(capacity * NUMBERS)
    const bytes = new Uint8Array(capacity * BYTES)
    const refs: unknown[] = new Array(capacity * REFS).fill(undefined)
    const ids = new IdIndex(capacity)
    let to = 0
    for (const from of this.rows()) {
      numbers.set(this.#numbers.subarray(from * NUMBERS, (from + 1) * NUMBERS), to * NUMBERS)
      bytes.set(this.#bytes.subarray(from * BYTES, (from + 1) * BYTES), to * BYTES)
      for (let field = 0; field < REFS; field++) refs[to * REFS + field] = this.#refs[from * REFS + field]
      ids.copy(this.#ids, from, to)
      to++
    }
    this.#numbers = numbers
    this.#bytes = bytes
    this.#refs = refs
    this.#ids = ids
    this.#capacity = capacity
    this.#mask = capacity - 1
    this.#head = 0
    this.#tail = to
  }
}

function orNull(value: number): number | null {
  return Number.isNaN(value) ? null : value
}

function feedbackFlags(feedback: 1 | -1 | null): number {
  return feedback === 1 ? FEEDBACK_UP : feedback === -1 ? FEEDBACK_DOWN : 0
}

/** Metadata as kept: `undefined` when empty (most records), else a storable copy. */
function storedMetadata(metadata: LogMetadata): LogMetadata | undefined {
  for (const _ in metadata) return storableMetadata(metadata)
  return undefined
}

function extrasOf(record: LogRecord): Extras | undefined {
  const { attemptLog, route, guard, websocket } = record
  if (attemptLog === undefined && route === undefined && guard === undefined && websocket === undefined)
    return undefined
  return { attemptLog, route, guard, websocket }
}

/** Deep copies of the rare fields into `record`, absent ones left absent. */
function copyExtras(extras: Extras, record: LogRecord): void {
  const { attemptLog, route, guard, websocket } = extras
  if (attemptLog !== undefined) record.attemptLog = attemptLog.map((attempt) => ({ ...attempt }))
  if (route !== undefined) record.route = { ...route, path: [...route.path], variants: { ...route.variants } }
  if (guard !== undefined) record.guard = structuredClone(guard)
  if (websocket !== undefined) record.websocket = { ...websocket }
}
