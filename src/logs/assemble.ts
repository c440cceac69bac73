import { dialectOf } from '../providers/dialects/index.js'
import type { Dialect } from '../providers/types.js'

/**
 * What a streamed answer said, put back together for the log: the text of its deltas joined, the finish
 * reason, and how many events carried it. A log reader wants the answer, not hundreds of framing events.
 * Where each dialect puts its deltas is the dialect's own knowledge (`DialectSpec.assemble`); `undefined`
 * for dialects that have none.
 *
 * @example
 * assembleStream('openai', 'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: [DONE]\n\n')
 * // '{"stream":true,"content":"Hi","finishReason":null,"events":2}'
 */
export function assembleStream(dialect: Dialect, sse: string): string | undefined {
  return dialectOf(dialect).assemble(sse)
}
