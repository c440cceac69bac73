import { describe, expect, it } from 'vitest'
import { assembleStream } from '../../src/logs/assemble.js'

const sse = (...events: unknown[]) =>
  events.map((e) => `data: ${typeof e === 'string' ? e : JSON.stringify(e)}\n\n`).join('')

describe('assembleStream', () => {
  it('joins OpenAI deltas, escapes included, and keeps the last finish reason', () => {
    const text = sse(
      { choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] },
      { choices: [{ index: 0, delta: { content: 'say "hi"\n' }, finish_reason: null }] },
      { choices: [{ index: 0, delta: { content: 'and \\ bye' }, finish_reason: null }] },
      { choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
      '[DONE]',
    )
    expect(JSON.parse(assembleStream('openai', text)!)).toEqual({
      stream: true,
      content: 'say "hi"\nand \\ bye',
      finishReason: 'stop',
      events: 5,
    })
  })

  it('keeps the last finish reason with a value, past an empty one and one cut off at the end', () => {
    const text = `${sse(
      { choices: [{ index: 0, delta: {}, finish_reason: 'length' }] },
      { choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
      { choices: [{ index: 0, delta: {}, finish_reason: '' }] },
    )}data: {"choices":[{"finish_reason":"cut`
    expect(JSON.parse(assembleStream('openai', text)!)).toMatchObject({ finishReason: 'stop' })
    expect(JSON.parse(assembleStream('openai', sse('[DONE]'))!)).toMatchObject({ finishReason: null })
  })

  it('counts events, not the blank blocks between them', () => {
    const event = sse({ choices: [{ index: 0, delta: { content: 'x' }, finish_reason: null }] })
    // Blocks of spaces, a no-break space among them, are blank; an event after a space is still one.
    const text = `\n\n${event}\n\n \n\n\u00a0\t\n\n ${event}data: [DONE]`
    expect(JSON.parse(assembleStream('openai', text)!)).toMatchObject({ content: 'xx', events: 3 })
  })

  it('joins Anthropic text deltas and reads the stop reason', () => {
    const text = [
      'event: message_start\ndata: {"type":"message_start","message":{"content":[]}}\n\n',
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}\n\n',
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}\n\n',
      'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"}}\n\n',
    ].join('')
    expect(JSON.parse(assembleStream('anthropic', text)!)).toMatchObject({
      content: 'Hello',
      finishReason: 'end_turn',
    })
  })

  it('joins Gemini parts, and knows no other dialect', () => {
    const text = sse(
      { candidates: [{ content: { parts: [{ text: 'A' }] } }] },
      { candidates: [{ content: { parts: [{ text: 'B' }] }, finishReason: 'STOP' }] },
    )
    expect(JSON.parse(assembleStream('gemini', text)!)).toMatchObject({ content: 'AB', finishReason: 'STOP' })
    expect(assembleStream('native', text)).toBeUndefined()
  })
})
