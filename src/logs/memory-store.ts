import { add, type Decimal, decimalOf, toDollars } from '../cost/money.js'
import { type Body, byteLength, SLAB_BYTES } from './body-slabs.js'
import {
  CapturedRecord,
  type LoggedBodies,
  type QueuedRecord,
  type RawBodies,
  takesRawBodies,
} from './captured.js'
import {
  BUCKET_MS,
  comparePositions,
  compareText,
  decodeCursor,
  encodeCursor,
  matchesSelection,
  metadataText,
  type OrderPosition,
  positionOf,
  storableOrNull,
} from './filters.js'
import {
  MAX_PAGE_BODY_BYTES,
  parseAnalyticsQuery,
  parseLogPatch,
  parseLogQuery,
  parseLogSelection,
} from './query.js'
import { RecordTable } from './record-table.js'
import type {
  AnalyticsGroupBy,
  AnalyticsQuery,
  AnalyticsRow,
  LogListQuery,
  LogPage,
  LogPatch,
  LogRecord,
  LogSelection,
  LogStore,
} from './types.js'
import { checkedLogRecord } from './validate.js'

export interface MemoryLogStoreOptions {
  /** Records kept; the oldest written go first beyond it. Default 10,000. */
  maxRecords?: number | undefined
  /**
   * Bytes of request and response bodies kept (as UTF-8 text, or as they came: a JSON body, a stream within
   * `maxBytes / maxRecords`); the oldest records go first beyond it. A record whose bodies alone exceed it
   * is kept without bodies. Default 64 MiB.
   */
  maxBytes?: number | undefined
}

/** The text of a row's bodies as logged, made from their bytes when they were kept as captured. */
function bodiesOf(table: RecordTable, row: number): LoggedBodies | undefined {
  const kept = table.bodies(row)
  if (kept === undefined) return undefined
  const { request, response, text } = kept
  if (text === undefined) {
    return {
      requestBody: request?.toString('utf8') ?? null,
      responseBody: response?.toString('utf8') ?? null,
    }
  }
  const made = text(request, response)
  // As a record written as text is made storable (see validate.ts), so that both read the same.
  return { requestBody: storableOrNull(made.requestBody), responseBody: storableOrNull(made.responseBody) }
}

/**
 * A captured record whose bodies the store keeps as they came, to make their text when read: all but those
 * whose text is far smaller (a stream's) and whose bytes exceed `share`, a record's share of the bodies'
 * bound. Within it the bytes cost no record its place (the bound on records comes first) and the text is
 * made only if the record is read, where made with the batch it costs every stream logged.
 */
function keptAsBytes(queued: QueuedRecord, share: number): queued is CapturedRecord & { bodies: RawBodies } {
  if (!(queued instanceof CapturedRecord) || queued.bodies === undefined) return false
  const { request, response, smallerAsText } = queued.bodies
  return !smallerAsText || (request?.length ?? 0) + (response?.length ?? 0) <= share
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`${name} must be a positive integer`)
  return value
}

/**
 * `durationMs` at percentile `p` (0..1) of ascending `sorted` values, interpolated linearly between the two
 * nearest ranks, with the same arithmetic as Postgres `percentile_cont` so both stores report equal numbers.
 */
function percentileCont(sorted: readonly number[], p: number): number {
  const position = p * (sorted.length - 1)
  const lower = Math.floor(position)
  const low = sorted[lower]!
  const high = sorted[Math.ceil(position)]!
  return low + (high - low) * (position - lower)
}

/** The value of a single-valued group (every group but `variant`). */
function groupValue(record: LogRecord, group: AnalyticsGroupBy): string | null {
  switch (group) {
    case 'provider':
    case 'model':
    case 'outcome':
    case 'principal':
      return record[group]
    case 'route':
      return record.route?.name ?? null
  }
  const key = group.slice('metadata.'.length)
  return Object.hasOwn(record.metadata, key) ? metadataText(record.metadata[key]!) : null
}

/** One `variant` group per branch the record drew, `[null]` when it drew none. */
function variantValues(record: LogRecord): (string | null)[] {
  const route = record.route
  const variants = route === undefined ? [] : Object.entries(route.variants)
  if (variants.length === 0) return [null]
  return variants.map(([element, branch]) => `${route!.name}/${element}=${branch}`)
}

/** The group values under which a record counts: one list, or one per branch when grouped by variant. */
function groupValueLists(record: LogRecord, groupBy: readonly AnalyticsGroupBy[]): (string | null)[][] {
  const values = groupBy.map((group) => (group === 'variant' ? null : groupValue(record, group)))
  const at = groupBy.indexOf('variant')
  if (at < 0) return [values]
  return variantValues(record).map((variant) => values.map((value, i) => (i === at ? variant : value)))
}

interface Accumulator {
  row: AnalyticsRow
  values: (string | null)[]
  durations: number[]
  /** The exact sum of known costs; `row.cost` gets it rounded once, when the group is complete. */
  cost: Decimal | undefined
  scoreSum: number
}

function accumulate(acc: Accumulator, record: LogRecord): void {
  const row = acc.row
  row.requests++
  if (!record.success) row.errors++
  if (record.cached) row.cacheHits++
  row.tokensIn += record.tokensIn ?? 0
  row.tokensOut += record.tokensOut ?? 0
  if (record.cost !== null) {
    const cost = decimalOf(record.cost)
    acc.cost = acc.cost === undefined ? cost : add(acc.cost, cost)
  }
  acc.durations.push(record.durationMs)
  if (record.feedback === 1) row.thumbsUp++
  if (record.feedback === -1) row.thumbsDown++
  if (record.score !== null) {
    row.scored++
    acc.scoreSum += record.score
  }
}

function compareGroups(a: Accumulator, b: Accumulator): number {
  const byBucket = (a.row.bucketStart ?? 0) - (b.row.bucketStart ?? 0)
  if (byBucket !== 0) return byBucket
  for (let i = 0; i < a.values.length; i++) {
    const x = a.values[i]!
    const y = b.values[i]!
    if (x === y) continue
    if (x === null) return 1
    if (y === null) return -1
    return compareText(x, y)
  }
  return 0
}

function aggregate(records: Iterable<LogRecord>, query: AnalyticsQuery): AnalyticsRow[] {
  const { groupBy, bucket, ...selection } = parseAnalyticsQuery(query)
  const groups = new Map<string, Accumulator>()
  for (const record of records) {
    if (!matchesSelection(record, selection)) continue
    const bucketStart = bucket && Math.floor(record.createdAt / BUCKET_MS[bucket]) * BUCKET_MS[bucket]
    for (const values of groupValueLists(record, groupBy)) {
      const key = JSON.stringify([bucketStart, values])
      let acc = groups.get(key)
      if (!acc) {
        const group = Object.fromEntries(groupBy.map((name, i) => [name, values[i]!]))
        const row: AnalyticsRow = {
          group,
          requests: 0,
          errors: 0,
          cacheHits: 0,
          tokensIn: 0,
          tokensOut: 0,
          cost: null,
          latencyP50: 0,
          latencyP95: 0,
          thumbsUp: 0,
          thumbsDown: 0,
          scored: 0,
          scoreAvg: null,
        }
        if (bucketStart !== undefined) row.bucketStart = bucketStart
        acc = { row, values, durations: [], cost: undefined, scoreSum: 0 }
        groups.set(key, acc)
      }
      accumulate(acc, record)
    }
  }
  return [...groups.values()].sort(compareGroups).map(({ row, durations, cost, scoreSum }) => {
    durations.sort((a, b) => a - b)
    // Summed as the decimals the costs print as: 1000 × 0.0000033 is 0.0033, where floats give 0.003299999999999948.
    if (cost !== undefined) row.cost = toDollars(cost)
    row.latencyP50 = percentileCont(durations, 0.5)
    row.latencyP95 = percentileCont(durations, 0.95)
    // An exact integer sum divided once in float8, as the SQL store divides it.
    if (row.scored > 0) row.scoreAvg = scoreSum / row.scored
    return row
  })
}

/**
 * A bounded in-process `LogStore`: the default, and the reference the Postgres store is tested against.
 * Records live in write order; beyond `maxRecords` or `maxBytes` of bodies the oldest written are dropped.
 * Queries scan every record, which is fine at the default bound; a busy gateway wants a database.
 *
 * @example
 * const logs = createMemoryLogStore({ maxRecords: 5000 })
 * await logs.write([record])
 * const { records } = await logs.list({ filters: [{ field: 'provider', op: 'eq', value: 'openai' }] })
 */
export function createMemoryLogStore(options: MemoryLogStoreOptions = {}): LogStore {
  const maxRecords = positiveInteger('maxRecords', options.maxRecords, 10_000)
  const maxBytes = positiveInteger('maxBytes', options.maxBytes, 64 * 1024 * 1024)
  const share = maxBytes / maxRecords
  const table = new RecordTable()
  const { slabs } = table
  let totalBytes = 0
  // Slabs kept by a few records each (after deletions among them) may hold more than the bodies' bytes:
  // beyond this, the oldest records go too.
  const maxHeldBytes = 2 * maxBytes + SLAB_BYTES

  function remove(row: number, erase: boolean): void {
    totalBytes -= table.bodyBytes(row)
    table.remove(row, erase)
  }

  /** Adds a checked record (see `checkedLogRecord`), its bodies given apart: as text, or as captured. */
  function add(record: LogRecord, request: Body, response: Body, text?: RawBodies['text']): void {
    const bytes = byteLength(request) + byteLength(response)
    // A record whose bodies alone exceed the bound is kept without them.
    const kept = (request != null || response != null) && bytes <= maxBytes
    if (!table.add(record, kept ? { request, response, bytes, text } : undefined)) return
    if (kept) totalBytes += bytes
    while (table.size > maxRecords || totalBytes > maxBytes || slabs.heldBytes > maxHeldBytes)
      remove(table.oldest(), false)
  }

  /** Adds a checked record whose bodies are its text, made storable as `validateLogRecords` makes it. */
  function addWithText(record: LogRecord): void {
    add(record, storableOrNull(record.requestBody), storableOrNull(record.responseBody))
  }

  function* records(): Generator<LogRecord> {
    for (const row of table.rows()) yield table.record(row)
  }

  /** The rows whose records `selection` selects, with those records, in write order. */
  function* selected(selection: LogSelection): Generator<{ row: number; record: LogRecord }> {
    for (const row of table.rows()) {
      const record = table.record(row)
      if (matchesSelection(record, selection)) yield { row, record }
    }
  }

  /** How many of the rows found (at most `limit`) a page with bodies takes; see `MAX_PAGE_BODY_BYTES`. */
  function withinBodyBudget(found: readonly { row: number }[], limit: number): number {
    let bytes = 0
    let taken = 0
    for (const { row } of found.slice(0, limit)) {
      bytes += table.bodyBytes(row)
      if (taken > 0 && bytes > MAX_PAGE_BODY_BYTES) break
      taken++
    }
    return taken
  }

  function withBodies(row: number, record: LogRecord): LogRecord {
    const bodies = bodiesOf(table, row)
    if (bodies !== undefined) Object.assign(record, bodies)
    return record
  }

  const store: LogStore = {
    async write(batch) {
      for (const record of batch.map(checkedLogRecord)) addWithText(record)
    },

    async get(id) {
      const row = table.find(id)
      return row < 0 ? undefined : withBodies(row, table.record(row))
    },

    async list(query: LogListQuery): Promise<LogPage> {
      const q = parseLogQuery(query)
      const sign = q.direction === 'asc' ? 1 : -1
      const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor, q.orderBy, q.direction)
      // Rows and positions only: the records read to select them go at once, the page's are read again.
      const found: { row: number; position: OrderPosition }[] = []
      for (const { row, record } of selected(q)) {
        const position = positionOf(record, q.orderBy)
        if (after && sign * comparePositions(position, after) <= 0) continue
        found.push({ row, position })
      }
      found.sort((a, b) => sign * comparePositions(a.position, b.position))
      const page = found.slice(0, q.includeBodies ? withinBodyBudget(found, q.limit) : q.limit)
      const records = page.map(({ row }) => {
        const record = table.record(row)
        return q.includeBodies ? withBodies(row, record) : record
      })
      const result: LogPage = { records }
      const last = page.at(-1)
      if (found.length > page.length && last)
        result.nextCursor = encodeCursor(q.orderBy, q.direction, last.position)
      return result
    },

    async patch(id, patch: LogPatch) {
      const changes = parseLogPatch(patch)
      const row = table.find(id)
      if (row < 0) return undefined
      if (changes.feedback !== undefined) table.setFeedback(row, changes.feedback)
      if (changes.score !== undefined) table.setScore(row, changes.score)
      if (changes.metadata !== undefined) table.setMetadata(row, changes.metadata)
      return withBodies(row, table.record(row))
    },

    async delete(selection: LogSelection) {
      const q = parseLogSelection(selection)
      let deleted = 0
      for (const { row } of selected(q)) {
        remove(row, true)
        deleted++
      }
      return deleted
    },

    async analytics(query) {
      return aggregate(records(), query)
    },
  }
  takesRawBodies(store, async (batch) => {
    // Bodies kept as text (none, or far smaller so and past a record's share) are made now, with the batch:
    // a record still captured after this keeps its bodies as bytes.
    const kept = batch.map((queued) =>
      queued instanceof CapturedRecord && !keptAsBytes(queued, share) ? queued.build() : queued,
    )
    const records = kept.map((queued, i) =>
      checkedLogRecord(queued instanceof CapturedRecord ? queued.record : queued, i),
    )
    for (let i = 0; i < kept.length; i++) {
      const queued = kept[i]!
      const record = records[i]!
      if (!(queued instanceof CapturedRecord)) {
        addWithText(record)
        continue
      }
      const { request, response, text } = queued.bodies!
      add(record, request, response, text)
    }
  })
  return store
}
