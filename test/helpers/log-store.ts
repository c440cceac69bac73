import { uuidv7 } from '../../src/ids.js'
import { createMemoryLogStore, type LogAttempt, type LogRecord, type LogStore } from '../../src/index.js'

/** An in-memory log store that can say when a given record has been written to it. */
export interface ObservedLogStore extends LogStore {
  /**
   * Resolves with the record once the gateway's log queue has written it here (at once if it already has).
   * A record is queued when its request ends, which for a client that left can be after the client's own
   * last step; the queue writes it at its next flush (`gateway.flushLogs()` makes that now).
   */
  written(id: string): Promise<LogRecord>
}

export function observedLogStore(): ObservedLogStore {
  const inner = createMemoryLogStore()
  const waiting = new Map<string, Array<(record: LogRecord) => void>>()
  return {
    get: (id) => inner.get(id),
    list: (query) => inner.list(query),
    patch: (id, patch) => inner.patch(id, patch),
    delete: (selection) => inner.delete(selection),
    analytics: (query) => inner.analytics(query),
    async write(records) {
      await inner.write(records)
      for (const record of records) {
        const waiters = waiting.get(record.id)
        waiting.delete(record.id)
        for (const resolve of waiters ?? []) resolve(record)
      }
    },
    async written(id) {
      const arrived = new Promise<LogRecord>((resolve) => {
        waiting.set(id, [...(waiting.get(id) ?? []), resolve])
      })
      // Registered first, then looked up: a write landing in between is seen either way.
      const stored = await inner.get(id)
      return stored ?? arrived
    },
  }
}

/** A successful OpenAI chat record with nothing measured; tests change only the fields they are about. */
export function sampleRecord(overrides: Partial<LogRecord> = {}): LogRecord {
  return {
    id: uuidv7(overrides.createdAt ?? Date.now()),
    createdAt: Date.now(),
    provider: 'openai',
    model: 'gpt-4o-mini',
    path: '/openai/chat/completions',
    success: true,
    statusCode: 200,
    cached: false,
    durationMs: 10,
    ttfbMs: null,
    tokensIn: null,
    tokensOut: null,
    cost: null,
    customCost: false,
    metadata: {},
    step: null,
    eventId: null,
    attempts: 1,
    requestSize: 0,
    responseSize: 0,
    outcome: 'success',
    errorCode: null,
    principal: null,
    requestBody: null,
    responseBody: null,
    feedback: null,
    score: null,
    ...overrides,
  }
}

/** An attempt that failed with a 503 and fell back, as a record's attempt log keeps it. */
export const SAMPLE_ATTEMPT: LogAttempt = {
  provider: 'openai',
  model: 'gpt-4o-mini',
  step: 0,
  status: 503,
  failureClass: 'server_error',
  errorCode: null,
  action: 'fallback',
  durationMs: 12,
}
