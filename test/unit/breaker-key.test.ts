import { describe, expect, it } from 'vitest'
import type { UpstreamTarget } from '../../src/target.js'
import { breakerKey } from '../../src/upstream/breaker.js'

function target(provider: string, model: string | undefined, authorization?: string): UpstreamTarget {
  return {
    provider: { spec: { id: provider, auth: { header: 'authorization' } }, keyHeaders: ['authorization'] },
    model,
    path: '/v1/chat/completions',
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

  it('tells apart keys sent in a provider’s other key header or in its query string', () => {
    const anthropic = (headers: Record<string, string>) =>
      ({
        provider: {
          spec: { id: 'anthropic', auth: { header: 'x-api-key' } },
          keyHeaders: ['x-api-key', 'authorization'],
        },
        model: 'claude-haiku-4-5',
        path: '/v1/messages',
        headers,
      }) as unknown as UpstreamTarget
    const google = (path: string) =>
      ({
        provider: {
          spec: { id: 'google-ai-studio', auth: { header: 'x-goog-api-key' }, credentialQuery: 'key' },
          keyHeaders: ['x-goog-api-key', 'authorization'],
        },
        model: 'gemini-2.0-flash',
        path,
        headers: {},
      }) as unknown as UpstreamTarget
    const keys = [
      anthropic({ authorization: 'Bearer sk-ant-first-0123456789' }),
      anthropic({ authorization: 'Bearer sk-ant-second-0123456789' }),
      anthropic({}),
      google('/v1beta/models/gemini-2.0-flash:generateContent?key=AIza-first-0123456789'),
      google('/v1beta/models/gemini-2.0-flash:generateContent?alt=sse&key=AIza-second-0123456789'),
      google('/v1beta/models/gemini-2.0-flash:generateContent'),
    ].map(breakerKey)
    expect(new Set(keys).size).toBe(keys.length)
    for (const key of keys) expect(key).not.toMatch(/sk-ant|AIza/)
  })
})
