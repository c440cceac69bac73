import { describe, expect, it } from 'vitest'
import { dialectOf } from '../../src/providers/dialects/index.js'
import type { StreamGrammar } from '../../src/providers/dialects/types.js'
import { ERROR, FINISH, StreamMarkers, TERMINATOR, USAGE } from '../../src/upstream/stream-markers.js'
import { UsageEvents } from '../../src/upstream/stream-usage.js'
import { seededRandom } from '../helpers/random.js'

const grammars: [string, StreamGrammar][] = [
  ['OpenAI', dialectOf('openai').stream('/v1/chat/completions')!],
  ['Anthropic', dialectOf('anthropic').stream('/v1/messages')!],
  ['Gemini', dialectOf('gemini').stream('/v1beta/models/g:streamGenerateContent')!],
]

// Pieces of events, markers and near misses among them, joined at random into batches.
const pieces = (grammar: StreamGrammar) => [
  grammar.terminator,
  grammar.finish,
  `${grammar.finish}stop"`,
  grammar.errorMarker,
  grammar.terminator.slice(0, -1),
  grammar.finish.slice(1),
  '"usage":null',
  '"usage":{"prompt_tokens":3}',
  '"usageMetadata": {"totalTokenCount":4}',
  '"usage" :  {',
  '\\"usage\\":{',
  '"usages":{',
  'data: {"text":"héllo 🙂"}',
  '\n\n',
  '\r\n\r\n',
  '"',
  'data: ',
  // Where the search starts in a marker, found without the rest of it.
  '_reason":"',
  '[DONE]',
  'Reason"',
  'usage":{',
]

/** A plain model of the scan: each marker by `includes`, the usage objects by the events' own search. */
function model(grammar: StreamGrammar, text: string): { bits: number; usage: string } {
  const latin1 = (marker: string) => Buffer.from(marker).toString('latin1')
  let bits = 0
  if (text.includes(latin1(grammar.terminator))) bits |= TERMINATOR
  if (text.includes(latin1(grammar.finish))) bits |= FINISH
  if (text.includes(latin1(grammar.errorMarker))) bits |= ERROR
  const usage = new UsageEvents()
  usage.push(text)
  if (usage.text() !== '') bits |= USAGE
  return { bits, usage: usage.text() }
}

describe('StreamMarkers', () => {
  it.each(grammars)(
    'finds what a search per marker finds in %s batches, usage events included',
    (_, grammar) => {
      const markers = new StreamMarkers(grammar)
      const parts = pieces(grammar)
      const random = seededRandom(2463534242)
      const seen = new Set<number>()
      for (let round = 0; round < 3000; round++) {
        const length = 1 + random(8)
        const text = Buffer.from(Array.from({ length }, () => parts[random(parts.length)]).join('')).toString(
          'latin1',
        )
        const usage = new UsageEvents()
        const bits = markers.scan(text, usage)
        expect({ bits, usage: usage.text() }, text).toEqual(model(grammar, text))
        seen.add(bits)
      }
      // The batches met every marker, alone and with the others.
      expect(seen.size).toBe(16)
    },
  )

  it.each(grammars)(
    'counts a marker only whole in %s, wherever the part it is searched from lies',
    (_, grammar) => {
      const markers = new StreamMarkers(grammar)
      for (const marker of [
        grammar.terminator,
        grammar.finish,
        grammar.errorMarker,
        '"usage":{"total_tokens":1}',
      ]) {
        for (let cut = 1; cut < marker.length; cut++) {
          const [head, tail] = [marker.slice(0, cut), marker.slice(cut)]
          for (const text of [
            tail,
            `x${tail}`,
            head,
            `${head}x${tail}`,
            `${head}\n\n${tail}`,
            `${tail}${head}`,
          ]) {
            expect(markers.scan(text, undefined), text).toBe(model(grammar, text).bits)
          }
        }
        for (const text of [marker, `x${marker}`, `${marker}x`, `${marker.slice(0, -1)}${marker}`])
          expect(markers.scan(text, undefined), text).toBe(model(grammar, text).bits)
      }
    },
  )

  it.each(grammars)('finds the markers alone in %s batches when it is made without usage', (_, grammar) => {
    const withUsage = new StreamMarkers(grammar)
    const markersOnly = new StreamMarkers(grammar, false)
    const parts = pieces(grammar)
    const random = seededRandom(3141592653)
    let usageSeen = 0
    for (let round = 0; round < 3000; round++) {
      const text = Buffer.from(
        Array.from({ length: 1 + random(8) }, () => parts[random(parts.length)]).join(''),
      ).toString('latin1')
      const usage = new UsageEvents()
      const bits = withUsage.scan(text, undefined)
      if (bits & USAGE) usageSeen++
      expect(markersOnly.scan(text, usage), text).toBe(bits & ~USAGE)
      expect(usage.text()).toBe('')
    }
    expect(usageSeen).toBeGreaterThan(500)
  })

  it('tells apart markers searched from the same text (Gemini: a finish reason, a blocked prompt)', () => {
    const [, gemini] = grammars[2]!
    const markers = new StreamMarkers(gemini)
    const finish = 'data: {"candidates":[{"finishReason":"STOP"}]}\n\n'
    const blocked = 'data: {"promptFeedback":{"blockReason":"SAFETY"}}\n\n'
    expect(markers.scan(finish, undefined)).toBe(FINISH)
    expect(markers.scan(blocked, undefined)).toBe(TERMINATOR)
    expect(markers.scan(finish + blocked, undefined)).toBe(TERMINATOR | FINISH)
  })
})
