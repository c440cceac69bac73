import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest'
import type { MockProvider } from '../../src/testing/index.js'
import { type MockBackedGateway, mountOnMock } from '../helpers/express-gateway.js'
import type { ProvidedClientTests } from '../setup/provided.js'

/**
 * The Vercel AI SDK and Cloudflare's ai-gateway-provider used as their users use them, against the gateway
 * in Express 5 and the mock provider. Their packages need a newer Node than this library supports, so they
 * are this directory's own (package.json, package-lock.json), installed by the run's global setup
 * (test/setup/client-packages.ts) on a Node that can run them; elsewhere these tests are skipped, and the
 * run says why at its start.
 */
const clientTests: ProvidedClientTests = inject('clientTests')

const CLAUDE = 'anthropic/claude-sonnet-4-5'
const GEMINI = 'google-ai-studio/gemini-2.5-flash'

const loadAiSdk = async () => ({
  ai: await import('ai'),
  compatible: await import('@ai-sdk/openai-compatible'),
  openai: await import('@ai-sdk/openai'),
  anthropic: await import('@ai-sdk/anthropic'),
  cloudflare: await import('ai-gateway-provider'),
})

describe.skipIf(!clientTests.available)('Vercel AI SDK', () => {
  let gateway: MockBackedGateway
  let mock: MockProvider
  let url: string
  let sdk: Awaited<ReturnType<typeof loadAiSdk>>

  beforeAll(async () => {
    sdk = await loadAiSdk()
    gateway = await mountOnMock()
    ;({ mock, url } = gateway)
  })

  afterAll(() => gateway.close())

  beforeEach(() => {
    mock.reset()
  })

  const onlyCall = () => gateway.onlyCall()

  /** Streams `prompt` through `model`: the text it carried, and every error the SDK reported on the way. */
  async function streamed(model: Parameters<typeof sdk.ai.streamText>[0]['model'], prompt: string) {
    const errors: unknown[] = []
    const result = sdk.ai.streamText({
      model,
      prompt,
      maxRetries: 0,
      onError: ({ error }) => {
        errors.push(error)
      },
    })
    const deltas: string[] = []
    for await (const delta of result.textStream) deltas.push(delta)
    return { result, errors, text: deltas.join('') }
  }

  describe('OpenAI-compatible provider on /compat', () => {
    const gw = () =>
      sdk.compatible.createOpenAICompatible({ name: 'gw', baseURL: `${url}/ai/compat`, apiKey: 'sk-test' })

    it.each([
      [CLAUDE, '/v1/messages'],
      [GEMINI, '/v1beta/models/gemini-2.5-flash:generateContent'],
    ])('generateText with %s', async (model, path) => {
      const result = await sdk.ai.generateText({
        model: gw()(model),
        prompt: 'generate please',
        maxRetries: 0,
      })
      expect(result.text).toBe('mock reply to: generate please')
      expect(result.finishReason).toBe('stop')
      expect(onlyCall().path).toBe(path)
    })

    it.each([
      [CLAUDE, '/v1/messages'],
      [GEMINI, '/v1beta/models/gemini-2.5-flash:streamGenerateContent'],
    ])('streamText with %s', async (model, path) => {
      const { result, errors, text } = await streamed(gw()(model), 'stream please')
      expect(errors).toEqual([])
      expect(text).toBe('mock reply to: stream please')
      expect(await result.finishReason).toBe('stop')
      expect(onlyCall().path).toBe(path)
    })
  })

  describe("Cloudflare's ai-gateway-provider on the universal endpoint", () => {
    const CLOUDFLARE = 'https://gateway.ai.cloudflare.com/'
    const original = globalThis.fetch

    // The provider has no base URL option: it always posts to Cloudflare, so that origin is sent here.
    beforeEach(() => {
      globalThis.fetch = (input, init) => {
        const href = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
        if (!href.startsWith(CLOUDFLARE)) return original(input, init)
        const target = `${url}/ai/${href.slice(CLOUDFLARE.length)}`
        return original(input instanceof Request ? new Request(target, input) : target, init)
      }
    })
    afterEach(() => {
      globalThis.fetch = original
    })

    const fallbackModel = () => {
      const aigateway = sdk.cloudflare.createAiGateway({
        accountId: 'acct',
        gateway: 'default',
        apiKey: 'cf-token',
      })
      return aigateway([
        // `.chat`: the mock speaks Chat Completions, not the Responses API the default model id uses.
        sdk.openai.createOpenAI({ apiKey: 'sk-test' }).chat('gpt-4o-mini'),
        sdk.anthropic.createAnthropic({ apiKey: 'sk-ant' })('claude-sonnet-4-5'),
      ])
    }

    it('generateText answers from the first model', async () => {
      const result = await sdk.ai.generateText({
        model: fallbackModel(),
        prompt: 'first model',
        maxRetries: 0,
      })
      expect(result.text).toBe('mock reply to: first model')
      expect(result.response.headers?.['cf-aig-step']).toBe('0')
      const call = onlyCall()
      expect(call.path).toBe('/v1/chat/completions')
      expect(call.headers.authorization).toBe('Bearer sk-test')
      expect(call.headers['cf-aig-authorization']).toBeUndefined()
      expect(call.json).toMatchObject({ model: 'gpt-4o-mini' })
    })

    it('falls over to the second model when the first answers 503', async () => {
      mock.enqueue({ status: 503 })
      const result = await sdk.ai.generateText({ model: fallbackModel(), prompt: 'fall over', maxRetries: 0 })
      expect(result.text).toBe('mock reply to: fall over')
      expect(result.response.headers?.['cf-aig-step']).toBe('1')
      expect(mock.calls.map((call) => call.path)).toEqual(['/v1/chat/completions', '/v1/messages'])
      const anthropicCall = mock.calls[1]
      expect(anthropicCall?.headers['x-api-key']).toBe('sk-ant')
      expect(anthropicCall?.headers['anthropic-version']).toBeDefined()
      expect(anthropicCall?.json).toMatchObject({ model: 'claude-sonnet-4-5' })
    })

    it('streamText streams from the first model', async () => {
      const { result, errors, text } = await streamed(fallbackModel(), 'stream first')
      expect(errors).toEqual([])
      expect(text).toBe('mock reply to: stream first')
      expect((await result.response).headers?.['cf-aig-step']).toBe('0')
      expect(onlyCall().json).toMatchObject({ model: 'gpt-4o-mini', stream: true })
    })
  })
})
