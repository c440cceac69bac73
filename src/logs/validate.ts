/**
 * Checks log records before a store keeps them: the schema of a `LogRecord`, and the copies as stored
 * (ids lower-case, text made storable).
 */
import { z } from 'zod'
import { LogRecordError } from '../errors.js'
import { isLogId, storableOrNull, storableText } from './filters.js'
import { issuesOf, metadataValue, storableMetadata } from './query.js'
import {
  LOG_ATTEMPT_ACTIONS,
  LOG_DLP_ACTIONS,
  LOG_GUARDRAIL_ACTIONS,
  LOG_OUTCOMES,
  LOG_WEBSOCKET_CLOSERS,
  type LogMetadata,
  type LogRecord,
} from './types.js'

/** More attempts than this is no request a gateway makes (5 attempts on each of a few targets). */
const MAX_LOGGED_ATTEMPTS = 64
// A route has at most 64 elements, so no path is longer.
const MAX_ROUTE_PATH = 64
/** DLP findings a record keeps; `truncated` says when there were more. */
export const MAX_DLP_FINDINGS = 100
// Ids, paths, categories and classifier names in `guard`; lists of policies and of guardrail hits.
const MAX_GUARD_TEXT = 256
const MAX_GUARD_LIST = 100

const recordMetadata = z.record(z.string(), metadataValue).transform(storableMetadata)

const int4 = z.number().int().min(-2147483648).max(2147483647)
const count = z.number().int().min(0)
const text = z.string().transform(storableText)

const guardText = z.string().max(MAX_GUARD_TEXT).transform(storableText)

const guardHits = z
  .array(z.object({ category: guardText, score: z.number().min(0).max(1), classifier: guardText }))
  .max(MAX_GUARD_LIST)

const dlpFinding = z
  .object({
    check: z.enum(['REQUEST', 'RESPONSE']),
    profileId: guardText,
    entryId: guardText,
    policyIds: z.array(guardText).max(MAX_GUARD_LIST),
    path: guardText,
    start: int4.min(0),
    end: int4.min(0),
  })
  .refine((finding) => finding.end >= finding.start, {
    message: 'end must not be before start',
    path: ['end'],
  })

const logGuardSchema = z.object({
  dlp: z
    .object({
      action: z.enum(LOG_DLP_ACTIONS),
      findings: z.array(dlpFinding).max(MAX_DLP_FINDINGS),
      truncated: z.boolean().optional(),
    })
    .optional(),
  guardrails: z
    .object({
      action: z.enum(LOG_GUARDRAIL_ACTIONS),
      prompt: guardHits.optional(),
      answer: guardHits.optional(),
      unavailable: z
        .array(z.enum(['prompt', 'answer']))
        .max(2)
        .optional(),
    })
    .optional(),
})

/** The schema a record must match; it names what is wrong when the quick check below turns a record down. */
export const logRecordSchema = z.object({
  id: z
    .string()
    .refine(isLogId, { message: 'expected a UUID' })
    .transform((id) => id.toLowerCase()),
  createdAt: count,
  provider: text.nullable(),
  model: text.nullable(),
  path: text,
  success: z.boolean(),
  statusCode: int4,
  cached: z.boolean(),
  durationMs: z.number().min(0),
  ttfbMs: z.number().min(0).nullable(),
  tokensIn: count.nullable(),
  tokensOut: count.nullable(),
  cost: z.number().nullable(),
  customCost: z.boolean(),
  metadata: recordMetadata,
  step: int4.nullable(),
  eventId: text.nullable(),
  attempts: int4.min(0),
  requestSize: count,
  responseSize: count,
  outcome: z.enum(LOG_OUTCOMES),
  errorCode: int4.nullable(),
  principal: text.nullable(),
  requestBody: text.nullable(),
  responseBody: text.nullable(),
  feedback: z.union([z.literal(1), z.literal(-1)]).nullable(),
  score: z.number().int().min(0).max(100).nullable(),
  attemptLog: z
    .array(
      z.object({
        provider: text,
        model: text.nullable(),
        step: int4.min(0),
        status: int4.nullable(),
        failureClass: text.nullable(),
        errorCode: int4.nullable(),
        action: z.enum(LOG_ATTEMPT_ACTIONS),
        durationMs: z.number().min(0),
      }),
    )
    .max(MAX_LOGGED_ATTEMPTS)
    .optional(),
  route: z
    .object({
      name: text,
      version: int4.min(1),
      path: z.array(text).max(MAX_ROUTE_PATH),
      variants: z.record(text, text),
    })
    .optional(),
  guard: logGuardSchema.optional(),
  websocket: z
    .strictObject({
      framesIn: count,
      framesOut: count,
      closeCode: int4.nullable(),
      // A WebSocket close reason is at most 123 bytes.
      closeReason: z.string().max(123).transform(storableText),
      closedBy: z.enum(LOG_WEBSOCKET_CLOSERS),
    })
    .optional(),
})

/**
 * Checks records before a store keeps them and returns copies as stored: ids lower-case, and NUL or
 * unpaired surrogates in text replaced by U+FFFD (Postgres text cannot hold them). Throws
 * `LogRecordError` naming the record and field; nothing of the batch should be written then.
 *
 * @example
 * const stored = validateLogRecords(records)
 */
export function validateLogRecords(records: readonly LogRecord[]): LogRecord[] {
  return records.map((record, index) =>
    isPlainLogRecord(record) ? storedCopy(record) : schemaCopy(record, index),
  )
}

/**
 * A record as a store that makes its own copy may take it: the record itself when it passes the quick
 * check (its id still to be lower-cased, its text and metadata still to be made storable, as
 * `validateLogRecords` does), else the schema's copy, in which both are done. Throws `LogRecordError` as
 * `validateLogRecords` does, `index` being the record's place in its batch.
 */
export function checkedLogRecord(record: LogRecord, index: number): LogRecord {
  return isPlainLogRecord(record) ? record : schemaCopy(record, index)
}

function schemaCopy(record: LogRecord, index: number): LogRecord {
  const result = logRecordSchema.safeParse(record)
  if (result.success) return result.data
  const issues = issuesOf(result.error).map((issue) => ({ ...issue, path: `[${index}].${issue.path}` }))
  throw new LogRecordError(issues)
}

/**
 * Whether the record is one `logRecordSchema` accepts, without any of the rare nested fields: checked by
 * hand, as every record the gateway writes goes through here and the schema's generic walk cost several
 * times more. False whenever anything is off: the schema then decides, and names the field.
 */
function isPlainLogRecord(r: LogRecord): boolean {
  if (typeof r !== 'object' || r === null) return false
  if (typeof r.id !== 'string' || !isLogId(r.id)) return false
  if (!isCount(r.createdAt) || !isCount(r.requestSize) || !isCount(r.responseSize)) return false
  if (!(isCount(r.tokensIn) || r.tokensIn === null) || !(isCount(r.tokensOut) || r.tokensOut === null))
    return false
  if (!isInt4(r.statusCode) || !isInt4(r.attempts) || r.attempts < 0) return false
  if (!(isInt4(r.step) || r.step === null) || !(isInt4(r.errorCode) || r.errorCode === null)) return false
  if (!isAmount(r.durationMs) || !(isAmount(r.ttfbMs) || r.ttfbMs === null)) return false
  if (!(Number.isFinite(r.cost) || r.cost === null)) return false
  if (typeof r.success !== 'boolean' || typeof r.cached !== 'boolean' || typeof r.customCost !== 'boolean')
    return false
  if (!LOG_OUTCOMES.includes(r.outcome)) return false
  if (!(r.feedback === 1 || r.feedback === -1 || r.feedback === null)) return false
  if (!((Number.isSafeInteger(r.score) && r.score! >= 0 && r.score! <= 100) || r.score === null)) return false
  if (typeof r.path !== 'string' || !isMetadata(r.metadata)) return false
  // Rare (only requests that retried, fell back, took a dynamic route, met a guard or were a WebSocket
  // session have one), and nested: the schema reads it.
  if (r.attemptLog !== undefined || r.route !== undefined || r.guard !== undefined) return false
  if (r.websocket !== undefined) return false
  return (
    isTextOrNull(r.provider) &&
    isTextOrNull(r.model) &&
    isTextOrNull(r.eventId) &&
    isTextOrNull(r.principal) &&
    isTextOrNull(r.requestBody) &&
    isTextOrNull(r.responseBody)
  )
}

/** The copy `logRecordSchema` makes of a record `isPlainLogRecord` accepts. */
function storedCopy(r: LogRecord): LogRecord {
  return {
    id: r.id.toLowerCase(),
    createdAt: r.createdAt,
    provider: storableOrNull(r.provider),
    model: storableOrNull(r.model),
    path: storableText(r.path),
    success: r.success,
    statusCode: r.statusCode,
    cached: r.cached,
    durationMs: r.durationMs,
    ttfbMs: r.ttfbMs,
    tokensIn: r.tokensIn,
    tokensOut: r.tokensOut,
    cost: r.cost,
    customCost: r.customCost,
    metadata: storableMetadata(r.metadata),
    step: r.step,
    eventId: storableOrNull(r.eventId),
    attempts: r.attempts,
    requestSize: r.requestSize,
    responseSize: r.responseSize,
    outcome: r.outcome,
    errorCode: r.errorCode,
    principal: storableOrNull(r.principal),
    requestBody: storableOrNull(r.requestBody),
    responseBody: storableOrNull(r.responseBody),
    feedback: r.feedback,
    score: r.score,
  }
}

const isTextOrNull = (value: unknown): boolean => typeof value === 'string' || value === null
const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0
const isInt4 = (value: unknown): value is number =>
  Number.isSafeInteger(value) && (value as number) >= -2147483648 && (value as number) <= 2147483647
const isAmount = (value: unknown): value is number => Number.isFinite(value) && (value as number) >= 0

function isMetadata(value: unknown): value is LogMetadata {
  if (typeof value !== 'object' || value === null) return false
  const prototype = Object.getPrototypeOf(value)
  if (prototype !== Object.prototype && prototype !== null) return false
  for (const item of Object.values(value))
    if (typeof item !== 'string' && typeof item !== 'boolean' && !Number.isFinite(item)) return false
  return true
}
