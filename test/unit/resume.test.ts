import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { GatewayError } from '../../src/errors.js'
import type { GatewayResponse } from '../../src/types.js'
import type { BodyEnd } from '../../src/upstream/body.js'
import { type ContinueAfter, resumable } from '../../src/upstream/resume.js'

const chunk = (id: string, delta: Record<string, unknown>, finish: string | null = null) =>
  `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`
const ERROR_EVENT = 'data: {"error":{"message":"cut","type":"server_error"}}\n\n'

/** A stage's answer: these events, then the end it reports. */
function stage(events: string[], end: BodyEnd): GatewayResponse {
  return { status: 200, headers: {}, body: Readable.from(events), outcome: () => end }
}
const cut: BodyEnd = { complete: false, error: new GatewayError('UPSTREAM_INTERRUPTED', 'cut') }

async function read(response: GatewayResponse) {
  let sse = ''
  for await (const piece of response.body as Readable) sse += piece
  let text = ''
  const ids = new Set<string>()
  for (const line of sse.split('\n')) {
    if (!line.startsWith('data: {')) continue
    const json = JSON.parse(line.slice(6))
    if (json.id) ids.add(json.id)
    for (const choice of json.choices ?? []) text += choice.delta?.content ?? ''
  }
  return { sse, text, ids: [...ids], outcome: response.outcome?.() }
}

describe('resumable', () => {
  it('passes a stream that completes as it came, and calls nobody', async () => {
    const events = [
      chunk('a', { role: 'assistant', content: '' }),
      chunk('a', { content: 'Hi' }, 'stop'),
      'data: [DONE]\n\n',
    ]
    let asked = 0
    const out = await read(resumable(stage(events, { complete: true }), async () => void asked++))
    expect(out.sse).toBe(events.join(''))
    expect(out.outcome).toEqual({ complete: true })
    expect(asked).toBe(0)
  })

  it('carries a prefill continuation on as the same completion, without a second role or doubled space', async () => {
    const first = stage(
      [chunk('a', { role: 'assistant', content: '' }), chunk('a', { content: 'One two ' }), ERROR_EVENT],
      cut,
    )
    const partials: string[] = []
    const continueAfter: ContinueAfter = async (partial) => {
      partials.push(partial)
      const events = [
        chunk('b', { role: 'assistant' }),
        chunk('b', { content: ' three' }, 'stop'),
        'data: [DONE]\n\n',
      ]
      return { response: stage(events, { complete: true }), mode: 'prefill' }
    }
    const out = await read(resumable(first, continueAfter))
    expect(partials).toEqual(['One two '])
    expect(out.text).toBe('One two three')
    expect(out.ids).toEqual(['a'])
    expect(out.sse).not.toContain('"error"')
    expect(out.sse.match(/"role"/g)).toHaveLength(1)
    expect(out.sse.endsWith('data: [DONE]\n\n')).toBe(true)
    expect(out.outcome).toEqual({ complete: true })
  })

  it('skips the part already sent in a replayed answer, even when its pieces are cut elsewhere', async () => {
    const first = stage([chunk('a', { content: 'abc' }), chunk('a', { content: 'de' })], cut)
    const replay = [
      chunk('b', { content: 'a' }),
      chunk('b', { content: 'bcdef' }),
      chunk('b', { content: 'g' }, 'stop'),
      'data: [DONE]\n\n',
    ]
    const out = await read(
      resumable(first, async () => ({ response: stage(replay, { complete: true }), mode: 'replay' })),
    )
    expect(out.text).toBe('abcdefg')
    expect(out.outcome).toEqual({ complete: true })
  })

  it('ends failed with the held error when a replayed answer differs, or stops before the part sent', async () => {
    for (const replay of [
      [chunk('b', { content: 'abX' }), chunk('b', { content: 'tail' }, 'stop'), 'data: [DONE]\n\n'],
      [chunk('b', { content: 'ab' }, 'stop'), 'data: [DONE]\n\n'],
    ]) {
      const first = stage([chunk('a', { content: 'abc' }), ERROR_EVENT], cut)
      const answers = [stage(replay, { complete: true })]
      const continueAfter: ContinueAfter = async () => {
        const response = answers.shift()
        return response && { response, mode: 'replay' }
      }
      const out = await read(resumable(first, continueAfter))
      expect(out.text).toBe('abc')
      expect(out.sse).not.toContain('[DONE]')
      expect(out.sse).toMatch(/data: \{"error":/)
      expect(out.outcome).toMatchObject({ complete: false })
    }
  })

  it('never sends an event whose data is not JSON: the answer is resumed from before it', async () => {
    const first = stage(
      [chunk('a', { content: 'one' }), 'data: {not json\n\n', chunk('a', { content: ' lost' })],
      { complete: true },
    )
    const partials: string[] = []
    const continueAfter: ContinueAfter = async (partial) => {
      partials.push(partial)
      const events = [chunk('b', { content: ' two' }, 'stop'), 'data: [DONE]\n\n']
      return { response: stage(events, { complete: true }), mode: 'prefill' }
    }
    const out = await read(resumable(first, continueAfter))
    expect(partials).toEqual(['one'])
    expect(out.sse).not.toContain('not json')
    expect(out.text).toBe('one two')
    expect(out.outcome).toEqual({ complete: true })
  })

  it('does not resume an answer that began a tool call: its error ends it', async () => {
    const toolCall = { tool_calls: [{ index: 0, id: 'call_1', function: { name: 'f', arguments: '{"a"' } }] }
    const first = stage([chunk('a', toolCall), ERROR_EVENT], cut)
    let asked = 0
    const out = await read(resumable(first, async () => void asked++))
    expect(asked).toBe(0)
    expect(out.sse.endsWith(ERROR_EVENT)).toBe(true)
    expect(out.outcome).toEqual(cut)
  })

  it('asks again when a continuation fails in turn, from all the text sent so far', async () => {
    const partials: string[] = []
    const answers = [
      stage([chunk('b', { content: ' two' }), ERROR_EVENT], cut),
      stage([chunk('c', { content: ' three' }, 'stop'), 'data: [DONE]\n\n'], { complete: true }),
    ]
    const continueAfter: ContinueAfter = async (partial) => {
      partials.push(partial)
      const response = answers.shift()
      return response && { response, mode: 'prefill' }
    }
    const out = await read(resumable(stage([chunk('a', { content: 'one' })], cut), continueAfter))
    expect(partials).toEqual(['one', 'one two'])
    expect(out.text).toBe('one two three')
    expect(out.outcome).toEqual({ complete: true })
  })
})
