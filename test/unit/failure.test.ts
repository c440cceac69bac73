import { describe, expect, it } from 'vitest'
import { GatewayError } from '../../src/errors.js'
import { dialectOf } from '../../src/providers/dialects/index.js'
import type { Dialect } from '../../src/providers/types.js'
import { classOfAnswer, classOfError, statusDecidesClass } from '../../src/upstream/failure.js'

describe('failure classes', () => {
  it.each<[string, Dialect, number, unknown, string]>([
    ['a 429', 'openai', 429, undefined, 'rate_limited'],
    ['a 408', 'openai', 408, undefined, 'server_error'],
    ['a 503', 'openai', 503, undefined, 'server_error'],
    ["Anthropic's 529", 'anthropic', 529, undefined, 'server_error'],
    [
      "OpenAI's context_length_exceeded",
      'openai',
      400,
      {
        error: {
          message: 'too long',
          type: 'invalid_request_error',
          param: 'messages',
          code: 'context_length_exceeded',
        },
      },
      'context_length',
    ],
    [
      "Anthropic's prompt is too long",
      'anthropic',
      400,
      {
        type: 'error',
        error: {
          type: 'invalid_request_error',
          message: 'prompt is too long: 208000 tokens > 200000 maximum',
        },
      },
      'context_length',
    ],
    [
      "Gemini's token count",
      'gemini',
      400,
      {
        error: {
          code: 400,
          message: 'The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).',
          status: 'INVALID_ARGUMENT',
        },
      },
      'context_length',
    ],
    [
      "OpenAI's content_policy_violation",
      'openai',
      400,
      {
        error: {
          message: 'rejected',
          type: 'invalid_request_error',
          param: null,
          code: 'content_policy_violation',
        },
      },
      'content_policy',
    ],
    [
      "Azure's content_filter as a 400",
      'openai',
      400,
      {
        error: { message: 'The response was filtered', type: null, param: 'prompt', code: 'content_filter' },
      },
      'content_policy',
    ],
    [
      'a 401',
      'openai',
      401,
      { error: { message: 'Incorrect API key', type: 'invalid_request_error', code: 'invalid_api_key' } },
      'auth',
    ],
    [
      'a 403',
      'gemini',
      403,
      { error: { code: 403, message: 'denied', status: 'PERMISSION_DENIED' } },
      'auth',
    ],
    [
      'a plain 400',
      'openai',
      400,
      { error: { message: 'bad temperature', type: 'invalid_request_error', code: null } },
      'bad_request',
    ],
    ['a 404 without a body', 'anthropic', 404, undefined, 'bad_request'],
  ])('%s', (_name, dialect, status, body, expected) => {
    expect(classOfAnswer(status, dialectOf(dialect).providerError(body))).toBe(expected)
  })

  it('reads the status alone only where it decides', () => {
    expect([429, 408, 500, 529].every(statusDecidesClass)).toBe(true)
    expect([400, 401, 403, 404, 413, 422].some(statusDecidesClass)).toBe(false)
  })

  it.each<[string, GatewayError, string | undefined]>([
    ['a first-byte timeout', new GatewayError('UPSTREAM_FIRST_BYTE_TIMEOUT'), 'timeout'],
    ['a first-token timeout', new GatewayError('UPSTREAM_FIRST_TOKEN_TIMEOUT'), 'timeout'],
    ['a connect timeout', new GatewayError('UPSTREAM_CONNECT_TIMEOUT'), 'timeout'],
    ['a reset', new GatewayError('PROVIDER_FAILED', 'ECONNRESET'), 'network'],
    ['a cut before the commit', new GatewayError('UPSTREAM_INTERRUPTED'), 'network'],
    [
      'an overloaded_error event',
      new GatewayError('UPSTREAM_STREAM_ERROR', 'x', {
        cause: { type: 'overloaded_error', message: 'Overloaded' },
      }),
      'server_error',
    ],
    [
      'a rate_limit_error event',
      new GatewayError('UPSTREAM_STREAM_ERROR', 'x', {
        cause: { type: 'rate_limit_error', message: 'slow down' },
      }),
      'rate_limited',
    ],
    [
      'a context error event',
      new GatewayError('UPSTREAM_STREAM_ERROR', 'x', {
        cause: { type: 'invalid_request_error', message: 'prompt is too long' },
      }),
      'context_length',
    ],
    ['the total deadline', new GatewayError('UPSTREAM_DEADLINE'), undefined],
    ['the client leaving', new GatewayError('CLIENT_CLOSED'), undefined],
    ['a size cap', new GatewayError('RESPONSE_TOO_LARGE'), undefined],
  ])('%s', (_name, error, expected) => {
    expect(classOfError(error)).toBe(expected)
  })
})
