import { add, type Decimal, decimalOf, toDollars } from '../cost/money.js'
import { type Body, type BodyPlace, BodySlabs, bodiesAt, byteLength, SLAB_BYTES } from './body-slabs.js'
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
  isLogId,
  matchesSelection,
  metadataText,
  type OrderPosition,
  positionOf,
  storableText,
} from './filters.js'
import { parseAnalyticsQuery, parseLogPatch, parseLogQuery, parseLogSelection } from './query.js'
import type {
  AnalyticsGroupBy,
  AnalyticsQuery,
  AnalyticsRow,
  LogGuard,
  LogListQuery,
  LogPage,
  LogPatch,
  LogRecord,
  LogSelection,
  LogStore,
} from './types.js'
import { validateLogRecords } from './validate.js'

export interface MemoryLogStoreOptions {
  /** Records kept; the oldest written go first beyond it. Default 10,000. */
  maxRecords?: number | undefined
  /**
   * Bytes of request and response bodies kept (as UTF-8 text, or as a JSON body came); the oldest records
   * go first beyond it. A record whose bodies alone exceed it is kept without bodies. Default 64 MiB.
   */
  maxBytes?: number | undefined
}

interface Entry extends BodyPlace {
  /** The record as written, its bodies set to null: they are kept in a slab. */
  record: LogRecord
  /** Bytes of both bodies, counted against `maxBytes`. */
  bodyBytes: number
  /** Makes the logged text of bodies kept as captured (see `RawBodies`); `undefined` for text kept as text. */
  text: RawBodies['text'] | undefined
}

function copy(entry: Entry, withBodies: boolean): LogRecord {
  const { record } = entry
  const copied = { ...record, metadata: { ...record.metadata } }
  if (record.attemptLog !== undefined)
    copied.attemptLog = record.attemptLog.map((attempt) => ({ ...attempt }))
  if (record.route !== undefined) {
    const { route } = record
    copied.route = { ...route, path: [...route.path], variants: { ...route.variants } }
  }
  if (record.guard !== undefined) copied.guard = copyGuard(record.guard)
  if (record.websocket !== undefined) copied.websocket = { ...record.websocket }
  if (withBodies && entry.slab !== undefined) Object.assign(copied, bodiesOf(entry))
  return copied
}

function bodiesOf(entry: Entry): LoggedBodies {
  const { request, response } = bodiesAt(entry)
  const { text } = entry
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

function storableOrNull(text: string | null): string | null {
  return text === null ? null : storableText(text)
}

/** A captured record whose bodies the store keeps as they came, to make their text when read. */
function keptAsBytes(queued: QueuedRecord): queued is CapturedRecord & { bodies: RawBodies } {
  return queued instanceof CapturedRecord && queued.bodies !== undefined && !queued.bodies.smallerAsText
}

/** A deep copy that leaves absent fields absent. */
function copyGuard(guard: LogGuard): LogGuard {
  const { dlp, guardrails } = guard
  const copied: Record<string, unknown> = { ...guard }
  if (dlp !== undefined) {
    const findings = dlp.findings.map((finding) => ({ ...finding, policyIds: [...finding.policyIds] }))
    copied.dlp = { ...dlp, findings }
  }
  if (guardrails !== undefined) {
    const phases: Record<string, unknown> = { ...guardrails }
    for (const phase of ['prompt', 'answer'] as const)
      if (guardrails[phase] !== undefined) phases[phase] = guardrails[phase].map((hit) => ({ ...hit }))
    if (guardrails.unavailable !== undefined) phases.unavailable = [...guardrails.unavailable]
    copied.guardrails = phases
  }
  return copied as LogGuard
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
  const entries = new Map<string, Entry>()
  // The entries in write order, oldest at `head`; an entry deleted from `entries` stays here until it is
  // passed. Not the Map's own first key: a Map keeps a deleted entry's slot until it next rehashes, and
  // its iterator steps over every one of them, so at the bound (one eviction per write) reading the first
  // key cost 4.5 µs per write against 0.3 µs here. A passed slot is emptied at once: the array is cut only
  // now and then, and until then it would hold as many evicted records as the store keeps.
  let order: (Entry | undefined)[] = []
  let head = 0
  let totalBytes = 0
  const slabs = new BodySlabs()
  // Slabs kept by a few records each (after deletions among them) may hold more than the bodies' bytes:
  // beyond this, the oldest records go too.
  const maxHeldBytes = 2 * maxBytes + SLAB_BYTES

  function remove(id: string, erase = false): void {
    const entry = entries.get(id)
    if (!entry) return
    totalBytes -= entry.bodyBytes
    slabs.release(entry, erase)
    entries.delete(id)
  }

  function evictOldest(): void {
    const oldest = order[head]!
    order[head++] = undefined
    if (entries.get(oldest.record.id) === oldest) remove(oldest.record.id)
  }

  /** Drops passed entries, and deleted ones once they outnumber the kept: `order` stays within twice `entries`. */
  function compactOrder(): void {
    if (order.length - head > 2 * entries.size + 1024) {
      order = [...entries.values()]
      head = 0
    } else if (head > 1024 && head * 2 > order.length) {
      order = order.slice(head)
      head = 0
    }
  }

  /** Adds a record, its bodies given apart: as text, or as captured with what makes them text. */
  function add(record: LogRecord, request: Body, response: Body, text?: RawBodies['text']): void {
    if (entries.has(record.id)) return
    record.requestBody = null
    record.responseBody = null
    // Written out rather than spread from a constant: one shape, built without a property copy, per record.
    const entry: Entry = {
      record,
      bodyBytes: 0,
      text,
      slab: undefined,
      start: 0,
      middle: 0,
      end: 0,
      nulls: 0,
    }
    const bytes = byteLength(request) + byteLength(response)
    // A record whose bodies alone exceed the bound is kept without them.
    if ((request != null || response != null) && bytes <= maxBytes) {
      slabs.write(entry, request, response, bytes)
      entry.bodyBytes = bytes
    }
    entries.set(record.id, entry)
    order.push(entry)
    totalBytes += entry.bodyBytes
    while (entries.size > maxRecords || totalBytes > maxBytes || slabs.heldBytes > maxHeldBytes) evictOldest()
    compactOrder()
  }

  function* records(): Generator<LogRecord> {
    for (const entry of entries.values()) yield entry.record
  }

  const store: LogStore = {
    async write(batch) {
      for (const record of validateLogRecords(batch)) add(record, record.requestBody, record.responseBody)
    },

    async get(id) {
      const entry = isLogId(id) ? entries.get(id.toLowerCase()) : undefined
      return entry && copy(entry, true)
    },

    async list(query: LogListQuery): Promise<LogPage> {
      const q = parseLogQuery(query)
      const sign = q.direction === 'asc' ? 1 : -1
      const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor, q.orderBy, q.direction)
      const selected: { entry: Entry; position: OrderPosition }[] = []
      for (const entry of entries.values()) {
        if (!matchesSelection(entry.record, q)) continue
        const position = positionOf(entry.record, q.orderBy)
        if (after && sign * comparePositions(position, after) <= 0) continue
        selected.push({ entry, position })
      }
      selected.sort((a, b) => sign * comparePositions(a.position, b.position))
      const page = selected.slice(0, q.limit)
      const result: LogPage = { records: page.map(({ entry }) => copy(entry, q.includeBodies)) }
      const last = page.at(-1)
      if (selected.length > q.limit && last)
        result.nextCursor = encodeCursor(q.orderBy, q.direction, last.position)
      return result
    },

    async patch(id, patch: LogPatch) {
      const changes = parseLogPatch(patch)
      const entry = isLogId(id) ? entries.get(id.toLowerCase()) : undefined
      if (!entry) return undefined
      if (changes.feedback !== undefined) entry.record.feedback = changes.feedback
      if (changes.score !== undefined) entry.record.score = changes.score
      if (changes.metadata !== undefined) entry.record.metadata = changes.metadata
      return copy(entry, true)
    },

    async delete(selection: LogSelection) {
      const q = parseLogSelection(selection)
      let deleted = 0
      for (const [id, entry] of entries) {
        if (!matchesSelection(entry.record, q)) continue
        remove(id, true)
        deleted++
      }
      compactOrder()
      return deleted
    },

    async analytics(query) {
      return aggregate(records(), query)
    },
  }
  takesRawBodies(store, async (batch) => {
    // Bodies kept as text (none, or far smaller so) are made now, with the batch.
    const kept = batch.map((queued) =>
      queued instanceof CapturedRecord && !keptAsBytes(queued) ? queued.build() : queued,
    )
    const records = validateLogRecords(
      kept.map((queued) => (queued instanceof CapturedRecord ? queued.record : queued)),
    )
    for (let i = 0; i < kept.length; i++) {
      const queued = kept[i]!
      const record = records[i]!
      if (!keptAsBytes(queued)) add(record, record.requestBody, record.responseBody)
      else add(record, queued.bodies.request, queued.bodies.response, queued.bodies.text)
    }
  })
  return store
}
