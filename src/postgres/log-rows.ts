/** Maps rows of the Postgres log table back to `LogRecord`s. */
import type { QueryResultRow } from 'pg'
import type { LogRecord } from '../logs/types.js'
import { COLUMNS, NUMERIC_TYPES, OPTIONAL_FIELDS } from './log-schema.js'

export function toRecord(row: QueryResultRow): LogRecord {
  const record: Record<string, unknown> = {}
  for (const [key, column, type] of COLUMNS) {
    const value: unknown = row[column] ?? null
    if (value === null && OPTIONAL_FIELDS.has(key)) continue
    // Number() also copes with hosts that parse int8 or numeric as strings or BigInts.
    if (value !== null && NUMERIC_TYPES.has(type)) record[key] = Number(value)
    else if (type === 'jsonb' && typeof value === 'string') record[key] = JSON.parse(value)
    else record[key] = value
  }
  return record as unknown as LogRecord
}
