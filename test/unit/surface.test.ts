import { describe, expect, it } from 'vitest'
import { normalizePrefix, relativeUrl } from '../../src/node/request.js'
import { matchSurface } from '../../src/surface.js'

describe('matchSurface()', () => {
  it.each([
    ['POST', '/openai/chat/completions', { kind: 'provider', provider: 'openai', rest: '/chat/completions' }],
    ['GET', '/openai', { kind: 'provider', provider: 'openai', rest: '' }],
    ['POST', '/compat/chat/completions', { kind: 'compat', operation: '/chat/completions' }],
    ['POST', '/', { kind: 'universal' }],
    ['GET', '/', undefined],
    ['POST', '/v1/acc/gw', { kind: 'universal', account: 'acc', gatewayName: 'gw' }],
    ['POST', '/v1/acc/gw/', { kind: 'universal', account: 'acc', gatewayName: 'gw' }],
    [
      'POST',
      '/v1/acc/gw/compat/embeddings',
      { kind: 'compat', operation: '/embeddings', account: 'acc', gatewayName: 'gw' },
    ],
    [
      'POST',
      '/v1/acc/gw/anthropic/v1/messages',
      { kind: 'provider', provider: 'anthropic', rest: '/v1/messages', account: 'acc', gatewayName: 'gw' },
    ],
    ['GET', '', undefined],
    ['POST', '/v1/acc', undefined],
  ])('%s %s', (method, path, expected) => {
    expect(matchSurface(method, path)).toEqual(expected)
  })
})

describe('relativeUrl()', () => {
  it.each([
    ['/ai/openai/x?y=1', '/ai', '/openai/x?y=1'],
    ['/ai', '/ai', '/'],
    ['/ai?x=1', '/ai', '/?x=1'],
    ['/aix/openai', '/ai', undefined],
    ['/other', '/ai', undefined],
    ['/any', '', '/any'],
  ])('%s under %s', (url, prefix, expected) => {
    expect(relativeUrl(url, prefix)).toBe(expected)
  })

  it('normalizes prefixes', () => {
    expect([
      normalizePrefix('/ai/'),
      normalizePrefix('ai'),
      normalizePrefix('/'),
      normalizePrefix(undefined),
    ]).toEqual(['/ai', '/ai', '', ''])
  })
})
