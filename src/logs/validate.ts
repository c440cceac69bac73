/**
 * Checks log records before a store keeps them: the schema of a `LogRecord`, and the copies as stored
 * (ids lower-case, text made storable).
 */
import { z } from 'zod'
import { LogRecordError } from '../errors.js'
import { isLogId, storableText } from './filters.js'
import { issuesOf, metadataValue, storableMetadata } from './query.js'
import { LOG_OUTCOMES, type LogRecord } from './types.js'

const recordMetadata = z.record(z.string(), metadataValue).transform(storableMetadata)

const int4 = z.number().int().min(-2147483648).max(2147483647)
const count = z.number().int().min(0)
const text = z.string().transform(storableText)

const logRecordSchema = z.object({
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
  return records.map((record, index) => {
    const result = logRecordSchema.safeParse(record)
    if (result.success) return result.data
    const issues = issuesOf(result.error).map((issue) => ({ ...issue, path: `[${index}].${issue.path}` }))
    throw new LogRecordError(issues)
  })
}
