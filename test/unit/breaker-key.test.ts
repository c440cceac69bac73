import { describe, expect, it } from 'vitest'
import type { UpstreamTarget } from '../../src/target.js'
import { breakerKey } from '../../src/upstream/breaker.js'

function target(provider: string, model: string | undefined, authorization?: string): UpstreamTarget {
  return {
    provider: { spec: { id: provider, auth: { header: 'authorization' } } },
    model,
    headers: authorization === undefined ? {} : { authorization },
  } as unknown as UpstreamTarget
}

describe('breakerKey', () => {
  it('tells provider, model and credential apart however requests alternate, and never holds the key', () => {
    const cases = [
      target('openai', 'gpt-4o', 'Bearer sk-first-0123456789'),
      target('openai', 'gpt-4o', 'Bearer sk-second-0123456789'),
      target('openai', 'gpt-4o-mini', 'Bearer sk-first-0123456789'),
      target('groq', 'gpt-4o', 'Bearer sk-first-0123456789'),
      target('openai', undefined, 'Bearer sk-first-0123456789'),
      target('openai', 'gpt-4o'),
    ]
    const first = cases.map(breakerKey)
    expect(new Set(first).size).toBe(cases.length)
    for (const key of first) expect(key).not.toContain('sk-')
    // Each again, in another order and twice in a row: the same key as the first time.
    for (const index of [3, 3, 0, 5, 1, 1, 4, 2, 0]) expect(breakerKey(cases[index]!)).toBe(first[index])
    // An equal credential in another string is the same credential.
    const copy = target('openai', 'gpt-4o', ['Bearer ', 'sk-second-0123456789'].join(''))
    expect(breakerKey(copy)).toBe(first[1])
  })
})
