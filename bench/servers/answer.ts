// The text every fake provider answer carries, shared by the upstream (which sends it) and the runner (which
// checks that a translated answer still carries it). No side effects: the runner imports this module.

export const ANSWER_TEXT =
  'Hello! This is a fixed answer from the benchmark upstream. It is long enough to look like a ' +
  'real short completion, so that the proxies under test move a realistic number of bytes per ' +
  'request. Nothing in it depends on the request.'

/**
 * The query parameter that asks the upstream to send a stream's events this many ms apart
 * (`/v1/chat/completions?event-gap-ms=5`), as a provider emitting tokens does. Without it every event is
 * written at once.
 */
export const EVENT_GAP_PARAM = 'event-gap-ms'

/** How many `chat.completion.chunk` events a streamed OpenAI answer carries: the role chunk, text, the finish. */
export const OPENAI_CHUNK_COUNT = 20

/**
 * The text of a streamed OpenAI answer, one piece per chunk between the role chunk (empty content) and the
 * finish (no content): ` word1` to ` word18`, 117 characters in all.
 */
export const OPENAI_STREAM_PIECES: readonly string[] = Array.from(
  { length: OPENAI_CHUNK_COUNT - 2 },
  (_, i) => ` word${i + 1}`,
)
export const OPENAI_STREAM_TEXT = OPENAI_STREAM_PIECES.join('')

/** How many text deltas a streamed Anthropic answer carries. */
export const ANTHROPIC_DELTA_COUNT = 20

/** `ANSWER_TEXT` cut at word boundaries into `count` pieces (each word keeps its leading space). */
export function answerPieces(count: number): string[] {
  const words = ANSWER_TEXT.match(/\s*\S+/g) ?? []
  return Array.from({ length: count }, (_, i) =>
    words
      .slice(Math.floor((i * words.length) / count), Math.floor(((i + 1) * words.length) / count))
      .join(''),
  )
}
