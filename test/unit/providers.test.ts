import { describe, expect, it } from 'vitest'
import { PROVIDERS } from '../../src/providers/catalog.js'
import { createProviderRegistry, locateUpstream } from '../../src/providers/registry.js'

describe('provider registry', () => {
  const registry = createProviderRegistry({
    providers: { 'workers-ai': { params: { accountId: 'acc1' } } },
    customProviders: { mylab: { baseURL: 'http://127.0.0.1:9000/v1', auth: { header: 'x-lab-key' } } },
    forwardHeaders: ['x-trace-id'],
    callerKeys: 'forward',
  })

  it('holds every catalog entry once, plus custom providers', () => {
    const ids = PROVIDERS.map((p) => p.id)
    expect(new Set(ids).size).toBe(ids.length)
    for (const id of [
      'openai',
      'anthropic',
      'google-ai-studio',
      'groq',
      'mistral',
      'cohere',
      'deepseek',
      'grok',
    ]) {
      expect(registry.has(id)).toBe(true)
    }
    for (const id of ['perplexity-ai', 'openrouter', 'huggingface', 'replicate', 'cerebras', 'fireworks']) {
      expect(registry.has(id)).toBe(true)
    }
    expect(registry.get('custom-mylab')?.spec.auth).toEqual({ header: 'x-lab-key' })
    expect(registry.get('openai')?.forwardHeaders).toContain('x-trace-id')
  })

  it.each([
    ['openai', '/chat/completions', '?a=1', 'https://api.openai.com', '/v1/chat/completions?a=1'],
    ['groq', '/chat/completions', '', 'https://api.groq.com', '/openai/v1/chat/completions'],
    ['anthropic', '/v1/messages', '', 'https://api.anthropic.com', '/v1/messages'],
    [
      'workers-ai',
      '/@cf/meta/llama-3.1-8b-instruct',
      '',
      'https://api.cloudflare.com',
      '/client/v4/accounts/acc1/ai/run/@cf/meta/llama-3.1-8b-instruct',
    ],
    [
      'workers-ai',
      '/v1/chat/completions',
      '',
      'https://api.cloudflare.com',
      '/client/v4/accounts/acc1/ai/v1/chat/completions',
    ],
    [
      'azure-openai',
      '/res-1/gpt-4.1/chat/completions',
      '?api-version=1',
      'https://res-1.openai.azure.com',
      '/openai/deployments/gpt-4.1/chat/completions?api-version=1',
    ],
    ['custom-mylab', '/chat/completions', '', 'http://127.0.0.1:9000', '/v1/chat/completions'],
    ['openai', '', '', 'https://api.openai.com', '/v1'],
  ])('locates %s %s', (provider, rest, search, origin, path) => {
    expect(locateUpstream(registry.get(provider)!, rest, search)).toEqual({ origin, path })
  })

  it('takes the Workers AI account from the long URL form when options have none', () => {
    const bare = createProviderRegistry({
      providers: {},
      customProviders: {},
      forwardHeaders: [],
      callerKeys: 'forward',
    })
    const location = locateUpstream(bare.get('workers-ai')!, '/@cf/m', '', 'acc-url')
    expect(location.path).toBe('/client/v4/accounts/acc-url/ai/run/@cf/m')
    expect(() => locateUpstream(bare.get('workers-ai')!, '/@cf/m', '')).toThrow(
      expect.objectContaining({ code: 2103 }),
    )
  })

  it.each([
    ['openai', '/../admin'],
    ['openai', '/v1/%2e%2e/admin'],
    ['openai', '/..#/admin'],
    ['openai', '/chat/.%2E#'],
    ['openai', '/..%2fadmin'],
    ['openai', '/x%2F%2e%2e%5Cadmin'],
    ['openai', '/a\\b'],
    ['azure-openai', '/evil.com#/dep/chat'],
    ['azure-openai', '/res/../x'],
    ['azure-openai', '/only-resource'],
  ])('refuses %s path %s with 2102', (provider, rest) => {
    expect(() => locateUpstream(registry.get(provider)!, rest, '')).toThrow(
      expect.objectContaining({ code: 2102 }),
    )
  })
})
