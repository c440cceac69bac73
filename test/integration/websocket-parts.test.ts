import { describe, expect, it } from 'vitest'
import { parseOptions } from '../../src/options.js'
import { createProviderRegistry } from '../../src/providers/registry.js'
import type { UpstreamTarget } from '../../src/target.js'
import { closeReason, codeForPeer, isSendable } from '../../src/websocket/close-codes.js'
import {
  modelFromQuery,
  placeKey,
  realtimeSlug,
  realtimeSpec,
  renameKeyQuery,
  sessionPath,
  splitProtocols,
} from '../../src/websocket/providers.js'
import { addUsage, realtimeUsageReader, setupModel } from '../../src/websocket/usage.js'

const options = parseOptions({ providers: { openai: { apiKey: 'sk-stored' } } })
const providers = createProviderRegistry(options)
const settings = options.websockets === false ? undefined : options.websockets

function target(slug: string, path: string, headers: Record<string, string>): UpstreamTarget {
  const provider = providers.get(slug)!
  return {
    provider,
    origin: 'https://example.test',
    path,
    method: 'GET',
    headers,
    body: undefined,
    model: undefined,
    stream: false,
    step: 0,
    policy: {},
    clientDialect: provider.spec.dialect,
  }
}

describe('WebSocket parts', () => {
  it('cuts a close reason to 123 bytes of UTF-8, never inside a character', () => {
    expect(closeReason('short')).toBe('short')
    const cut = closeReason('é'.repeat(100))
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(123)
    expect(cut).toBe('é'.repeat(61))
    expect(closeReason('😀'.repeat(40))).toBe('😀'.repeat(30))
  })

  it('passes a close code on as a frame may carry it', () => {
    expect(codeForPeer(1005, 1014)).toBe(1000)
    expect(codeForPeer(1006, 1014)).toBe(1014)
    expect(codeForPeer(4000, 1014)).toBe(4000)
    expect([1000, 1014, 3000, 4999].every(isSendable)).toBe(true)
    expect([1004, 1005, 1006, 1015, 2000, 5000].some(isSendable)).toBe(false)
  })

  it('reads usage from OpenAI Realtime and Gemini Live frames, and nothing from others', () => {
    const openai = realtimeUsageReader('openai')!
    const done = {
      type: 'response.done',
      response: {
        usage: { input_tokens: 120, output_tokens: 30, input_token_details: { cached_tokens: 100 } },
      },
    }
    expect(openai(Buffer.from(JSON.stringify(done)))).toEqual({
      inputTokens: 120,
      outputTokens: 30,
      cacheReadTokens: 100,
      inputIncludesCache: true,
    })
    expect(openai(Buffer.from('{"type":"response.output_text.delta","delta":"hi"}'))).toBeUndefined()
    const gemini = realtimeUsageReader('gemini')!
    const turn = { usageMetadata: { promptTokenCount: 9, responseTokenCount: 4, thoughtsTokenCount: 2 } }
    expect(gemini(Buffer.from(JSON.stringify(turn)))).toMatchObject({ inputTokens: 9, outputTokens: 6 })
    expect(realtimeUsageReader('native')).toBeUndefined()
    expect(
      addUsage(addUsage(undefined, { inputTokens: 1, outputTokens: 2, inputIncludesCache: true }), {
        inputTokens: 3,
        outputTokens: 4,
        inputIncludesCache: true,
      }),
    ).toMatchObject({ inputTokens: 4, outputTokens: 6 })
    expect(setupModel(Buffer.from('{"setup":{"model":"models/gemini-live"}}'))).toBe('gemini-live')
  })

  it('finds the session path, the model and the key query for a realtime provider', () => {
    expect(realtimeSlug('google', providers)).toBe('google-ai-studio')
    const openai = realtimeSpec('openai', settings!)
    expect(sessionPath('', 'openai', '', openai)).toBe('/openai/realtime')
    expect(sessionPath('/v1/acct/gw', 'openai', '/realtime', openai)).toBe('/v1/acct/gw/openai/realtime')
    expect(modelFromQuery('/v1/realtime?model=gpt-realtime')).toBe('gpt-realtime')
    const google = realtimeSpec('google-ai-studio', settings!)
    expect(renameKeyQuery('?api_key=k1&x=1', google, providers.get('google-ai-studio')!)).toBe('?x=1&key=k1')
    expect(
      splitProtocols(
        ['realtime', 'cf-aig-authorization.t', 'openai-insecure-api-key.k'],
        openai,
        'cf-aig-authorization.',
      ),
    ).toEqual({
      upstream: ['realtime'],
      key: 'k',
    })
  })

  it('moves the stored key to a query parameter or a subprotocol where the endpoint takes it there', () => {
    const google = realtimeSpec('google-ai-studio', settings!)
    const inQuery = placeKey(
      target('google-ai-studio', '/ws/live?alt=1', { 'x-goog-api-key': 'goog-k' }),
      google,
    )
    expect(inQuery.target.path).toBe('/ws/live?alt=1&key=goog-k')
    expect(inQuery.target.headers['x-goog-api-key']).toBeUndefined()
    const inProtocol = placeKey(target('openai', '/v1/realtime', { authorization: 'Bearer sk-k' }), {
      key: { protocol: 'openai-insecure-api-key.' },
    })
    expect(inProtocol.protocol).toBe('openai-insecure-api-key.sk-k')
    expect(inProtocol.target.headers.authorization).toBeUndefined()
    const inHeader = placeKey(target('openai', '/v1/realtime', { authorization: 'Bearer sk-k' }), {})
    expect(inHeader.target.headers.authorization).toBe('Bearer sk-k')
  })
})
