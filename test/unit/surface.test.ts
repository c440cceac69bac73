import { describe, expect, it } from 'vitest'
import { normalizePrefix, relativeUrl } from '../../src/node/request.js'
import { matchSurface, methodNotAllowed } from '../../src/surface.js'
import type { Surface } from '../../src/types.js'

describe('matchSurface()', () => {
  it.each([
    ['POST', '/openai/chat/completions', { kind: 'provider', provider: 'openai', rest: '/chat/completions' }],
    ['GET', '/openai', { kind: 'provider', provider: 'openai', rest: '' }],
    ['POST', '/compat/chat/completions', { kind: 'compat', operation: '/chat/completions' }],
    ['POST', '/', { kind: 'universal' }],
    ['GET', '/', undefined],
    ['POST', '/v1/acc/gw', { kind: 'universal', account: 'acc', gatewayName: 'gw' }],
    ['POST', '/v1/acc/gw/', { kind: 'universal', account: 'acc', gatewayName: 'gw' }],
    // The long form is unmistakably the gateway's: matched for any method, then refused with a 405.
    ['GET', '/v1/acc/gw', { kind: 'universal', account: 'acc', gatewayName: 'gw' }],
    ['GET', '/compat/chat/completions', { kind: 'compat', operation: '/chat/completions' }],
    ['PUT', '/', undefined],
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

describe('methodNotAllowed()', () => {
  const compat = (operation: string): Surface => ({ kind: 'compat', operation })
  const universal: Surface = { kind: 'universal' }
  const provider: Surface = { kind: 'provider', provider: 'openai', rest: '/models' }

  it.each<[string, Surface]>([
    ['GET', compat('/chat/completions')],
    ['HEAD', compat('/chat/completions')],
    ['OPTIONS', compat('/embeddings')],
    ['GET', universal],
  ])('refuses %s on %j with 405, code 2119 and allow: POST', (method, surface) => {
    const error = methodNotAllowed(method, surface)
    expect(error).toMatchObject({
      key: 'METHOD_NOT_ALLOWED',
      code: 2119,
      status: 405,
      headers: { allow: 'POST' },
    })
    expect(error?.message).toContain(`accepts POST, not ${method}`)
  })

  it.each<[string, Surface]>([
    ['POST', compat('/chat/completions')],
    ['POST', compat('/embeddings')],
    ['POST', universal],
    ['GET', provider],
    ['DELETE', provider],
    // An operation compat does not serve keeps the compat route's own answer.
    ['GET', compat('/responses')],
  ])('lets %s on %j through', (method, surface) => {
    expect(methodNotAllowed(method, surface)).toBeUndefined()
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
