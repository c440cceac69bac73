import { NeedleSearch } from './needles.js'
import type { GatewayContext } from './types.js'

/** Records a secret the gateway sent upstream for this request: it must never come back to the caller. */
export function addRequestSecret(ctx: GatewayContext, secret: string): void {
  ctx.state.secrets ??= []
  if (!ctx.state.secrets.includes(secret)) ctx.state.secrets.push(secret)
}

/** The scrubber for the secrets this request carried upstream; `undefined` when there are none. */
export function scrubberOf(ctx: GatewayContext): Scrubber | undefined {
  return ctx.state.secrets === undefined ? undefined : createScrubber(ctx.state.secrets)
}

/** What a scrubbed secret (or a recognisable piece of one) is replaced with. JSON- and SSE-safe. */
export const REDACTED = '[REDACTED]'

/**
 * Shortest piece of a secret that counts as the secret. Providers quote keys they refuse, whole or masked
 * ("sk-proj-abc1…wxyz"), and a masked form that keeps this many leading or trailing characters still
 * narrows a key down to a handful of guesses; shorter pieces (a vendor prefix, four last characters) do not.
 */
export const MIN_SECRET_FRAGMENT = 12

/** Secrets shorter than this are not scrubbed at all: they would match ordinary text. */
const MIN_SECRET_LENGTH = 8

const REDACTED_BYTES = Buffer.from(REDACTED)

interface Span {
  start: number
  end: number
}

/**
 * Removes known secrets from bytes on their way out: each secret whole, and any run of at least
 * `MIN_SECRET_FRAGMENT` characters that is its beginning or its end. Matching starts from two fixed seeds
 * per secret (its first and last characters), all found in one pass of one regular expression, so the cost
 * is one scan per buffer whatever the secrets are.
 *
 * @example
 * const scrubber = createScrubber(['sk-live-0123456789abcdef'])
 * scrubber?.scrub(Buffer.from('Incorrect API key provided: sk-live-0123456789ab**')) // ... [REDACTED]**
 */
export interface Scrubber {
  /** The bytes with every secret and secret fragment replaced by `[REDACTED]`; the same buffer when clean. */
  scrub(bytes: Buffer): Buffer
  /** `scrub`, for bytes whose latin1 text (`bytes.toString('latin1')`) the caller made already. */
  scrubLatin1(bytes: Buffer, text: string): Buffer
  /** The text with every secret and secret fragment replaced; the same string when clean. */
  scrubText(text: string): string
  /**
   * A scrubber for a byte stream cut anywhere: it holds back the last bytes of each chunk that could be the
   * start of a secret and releases them with the next chunk, or at `end()`.
   */
  stream(): { push(chunk: Buffer): Buffer; end(): Buffer }
}

// Scrubbers of the secrets seen last, so the usual case (the same few stored keys, request after
// request) builds nothing per request. Bounded like the key ring's own cache of decrypted keys.
const recentScrubbers = new Map<string, Scrubber>()
const RECENT_SCRUBBERS = 256

export function createScrubber(secrets: Iterable<string | undefined>): Scrubber | undefined {
  const unique = new Set<string>()
  for (const secret of secrets)
    if (secret !== undefined && secret.length >= MIN_SECRET_LENGTH) unique.add(secret)
  if (unique.size === 0) return undefined
  const id = [...unique].join('\n')
  let scrubber = recentScrubbers.get(id)
  if (scrubber === undefined) {
    scrubber = buildScrubber([...unique])
    if (recentScrubbers.size >= RECENT_SCRUBBERS) recentScrubbers.delete(recentScrubbers.keys().next().value!)
    recentScrubbers.set(id, scrubber)
  }
  return scrubber
}

interface Key {
  readonly whole: string
  readonly head: string
  readonly tail: string
}

function keyOf(whole: string): Key {
  const seed = Math.min(MIN_SECRET_FRAGMENT, whole.length)
  return { whole, head: whole.slice(0, seed), tail: whole.slice(whole.length - seed) }
}

/** One search for every key's head (needle `2k`) and tail (needle `2k + 1`). */
function searchOf(keys: readonly Key[]): NeedleSearch {
  return new NeedleSearch(keys.flatMap((key) => [key.head, key.tail]))
}

/**
 * Where the secrets stand in `text`: runs that begin like a secret (from its first characters, extended
 * as far as they keep matching) and runs that end like one (from its last, extended backwards).
 */
function findSpans(text: string, keys: readonly Key[], search: NeedleSearch): Span[] {
  const found: Span[] = []
  search.forEach(text, (needle, at) => {
    const { whole, head, tail } = keys[needle >> 1]!
    if (needle % 2 === 0) {
      let end = at + head.length
      while (
        end < text.length &&
        end - at < whole.length &&
        text.charCodeAt(end) === whole.charCodeAt(end - at)
      )
        end++
      found.push({ start: at, end })
      return
    }
    let start = at
    let offset = whole.length - tail.length
    while (start > 0 && offset > 0 && text.charCodeAt(start - 1) === whole.charCodeAt(offset - 1)) {
      start--
      offset--
    }
    found.push({ start, end: at + tail.length })
  })
  return merge(found)
}

function buildScrubber(secrets: readonly string[]): Scrubber {
  const charKeys = secrets.map(keyOf)
  const charSearch = searchOf(charKeys)
  // Bytes are searched as their latin1 text, whose characters are the bytes one for one: one pass of one
  // regular expression for every secret, where each Buffer search would be a native call and a scan.
  const byteKeys = secrets.map((secret) => keyOf(Buffer.from(secret).toString('latin1')))
  const byteSearch = searchOf(byteKeys)
  const longest = Math.max(...byteKeys.map((key) => key.whole.length))
  const spansIn = (text: string) => findSpans(text, byteKeys, byteSearch)
  const spans = (bytes: Buffer) => spansIn(bytes.toString('latin1'))

  function replace(buffer: Buffer, found: readonly Span[]): Buffer {
    if (found.length === 0) return buffer
    const parts: Buffer[] = []
    let from = 0
    for (const { start, end } of found) {
      parts.push(buffer.subarray(from, start), REDACTED_BYTES)
      from = end
    }
    parts.push(buffer.subarray(from))
    return Buffer.concat(parts)
  }

  const scrub = (bytes: Buffer) => replace(bytes, spans(bytes))

  return {
    scrub,
    scrubLatin1: (bytes, text) => replace(bytes, spansIn(text)),
    scrubText(text) {
      // Most texts hold no secret: one test of the search, and nothing made for them.
      if (!charSearch.some(text)) return text
      const found = findSpans(text, charKeys, charSearch)
      if (found.length === 0) return text
      let out = ''
      let from = 0
      for (const { start, end } of found) {
        out += text.slice(from, start) + REDACTED
        from = end
      }
      return out + text.slice(from)
    },
    stream() {
      let carry: Buffer | undefined
      return {
        push(chunk) {
          const buffer = carry === undefined ? chunk : Buffer.concat([carry, chunk])
          const found = spans(buffer)
          // Bytes near the end could still begin a secret the next chunk completes: keep them back, and
          // keep back any match that reaches the end, since it may go on.
          let cut = Math.max(0, buffer.length - longest)
          const last = found.at(-1)
          if (last !== undefined && last.end === buffer.length) cut = Math.min(cut, last.start)
          // A finished match across the cut goes out whole (spans are sorted and apart, so at most one).
          for (const span of found) if (span.start < cut && span.end > cut) cut = span.end
          carry = cut < buffer.length ? buffer.subarray(cut) : undefined
          const settled = found.filter((span) => span.end <= cut)
          return replace(buffer.subarray(0, cut), settled)
        },
        end() {
          const rest = carry
          carry = undefined
          return rest === undefined ? Buffer.alloc(0) : scrub(rest)
        },
      }
    },
  }
}

/** Sorted, overlapping or touching spans joined, so each secret is replaced once. */
function merge(spans: Span[]): Span[] {
  if (spans.length < 2) return spans
  spans.sort((a, b) => a.start - b.start)
  const merged: Span[] = [spans[0]!]
  for (const span of spans.slice(1)) {
    const last = merged[merged.length - 1]!
    if (span.start <= last.end) last.end = Math.max(last.end, span.end)
    else merged.push(span)
  }
  return merged
}
