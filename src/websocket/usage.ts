import type { Usage } from '../cost/cost.js'
import { isRecord } from '../json.js'
import { plausibleUsage } from '../providers/dialects/common.js'
import type { Dialect } from '../providers/types.js'

/** Frames larger than this are not searched for usage: audio chunks, never a usage report. */
const MAX_USAGE_FRAME_BYTES = 1024 * 1024

/**
 * Reads the usage a realtime provider reports in its own frames, one frame at a time: OpenAI Realtime's
 * `response.done` (`response.usage`, per response) and Gemini Live's `usageMetadata` (per turn). Answers
 * the usage one frame reports, or `undefined` for the many that report none; a frame is parsed only when
 * its bytes hold the marker the report is keyed by, so audio frames cost a byte search.
 */
export type RealtimeUsageReader = (frame: Buffer) => Usage | undefined

const OPENAI_MARKER = Buffer.from('"response.done"')
const GEMINI_MARKER = Buffer.from('"usageMetadata"')

/**
 * The reader for a provider's dialect, or `undefined` when the gateway knows of no usage in its frames
 * (the session is still logged, with its frames and bytes, and without tokens).
 *
 * @example
 * const read = realtimeUsageReader('openai')
 * read(Buffer.from('{"type":"response.done","response":{"usage":{"input_tokens":12,"output_tokens":5}}}'))
 * // { inputTokens: 12, outputTokens: 5, cacheReadTokens: 0, inputIncludesCache: true }
 */
export function realtimeUsageReader(dialect: Dialect): RealtimeUsageReader | undefined {
  if (dialect === 'openai') return (frame) => read(frame, OPENAI_MARKER, openaiUsage)
  if (dialect === 'gemini') return (frame) => read(frame, GEMINI_MARKER, geminiUsage)
  return undefined
}

function read(
  frame: Buffer,
  marker: Buffer,
  usageOf: (json: unknown) => Usage | undefined,
): Usage | undefined {
  if (frame.length > MAX_USAGE_FRAME_BYTES || frame.indexOf(marker) === -1) return undefined
  try {
    // A count no answer has is no usage, as on HTTP: a session is neither logged nor charged for it.
    return plausibleUsage(usageOf(JSON.parse(frame.toString('utf8'))))
  } catch {
    return undefined
  }
}

/** `response.done` → `response.usage`: `input_tokens` (cached ones included), `output_tokens`. */
function openaiUsage(json: unknown): Usage | undefined {
  if (!isRecord(json) || json.type !== 'response.done' || !isRecord(json.response)) return undefined
  const usage = json.response.usage
  if (!isRecord(usage)) return undefined
  const details = isRecord(usage.input_token_details) ? usage.input_token_details : {}
  return {
    inputTokens: count(usage.input_tokens),
    outputTokens: count(usage.output_tokens),
    cacheReadTokens: count(details.cached_tokens),
    inputIncludesCache: true,
  }
}

/**
 * `usageMetadata`: `promptTokenCount` (cached content included) in; `responseTokenCount` (Live's name for
 * it; `candidatesTokenCount` in the other APIs) plus `thoughtsTokenCount` out.
 */
function geminiUsage(json: unknown): Usage | undefined {
  if (!isRecord(json) || !isRecord(json.usageMetadata)) return undefined
  const usage = json.usageMetadata
  return {
    inputTokens: count(usage.promptTokenCount) + count(usage.toolUsePromptTokenCount),
    outputTokens:
      count(usage.responseTokenCount ?? usage.candidatesTokenCount) + count(usage.thoughtsTokenCount),
    cacheReadTokens: count(usage.cachedContentTokenCount),
    inputIncludesCache: true,
  }
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0
}

/**
 * The sum of two usage reports: a session's running total.
 *
 * @example
 * addUsage(total, usage) // { inputTokens: total.inputTokens + usage.inputTokens, … }
 */
export function addUsage(total: Usage | undefined, more: Usage): Usage {
  if (total === undefined) return { ...more }
  return {
    inputTokens: total.inputTokens + more.inputTokens,
    outputTokens: total.outputTokens + more.outputTokens,
    cacheReadTokens: (total.cacheReadTokens ?? 0) + (more.cacheReadTokens ?? 0),
    cacheWriteTokens: (total.cacheWriteTokens ?? 0) + (more.cacheWriteTokens ?? 0),
    inputIncludesCache: total.inputIncludesCache,
  }
}

/**
 * The model a Gemini Live session names in its first message (`{ setup: { model: 'models/…' } }`), without
 * its `models/` prefix; `undefined` for any other frame.
 *
 * @example
 * setupModel(Buffer.from('{"setup":{"model":"models/gemini-2.0-flash-live-001"}}')) // 'gemini-2.0-flash-live-001'
 */
export function setupModel(frame: Buffer): string | undefined {
  if (frame.length > MAX_USAGE_FRAME_BYTES || frame.indexOf('"setup"') === -1) return undefined
  try {
    const json: unknown = JSON.parse(frame.toString('utf8'))
    if (!isRecord(json) || !isRecord(json.setup) || typeof json.setup.model !== 'string') return undefined
    const model = json.setup.model
    return model.startsWith('models/') ? model.slice('models/'.length) : model
  } catch {
    return undefined
  }
}
