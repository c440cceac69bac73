/**
 * The classifiers against the project's mock provider over real loopback HTTP: the Llama Guard classifier
 * calls it as an OpenAI-style chat endpoint, the Prompt Guard classifier as Hugging Face text
 * classification, each through a `complete` / `classify` function built on `fetch`, as a host writes them.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  createLlamaGuardClassifier,
  createPromptGuardClassifier,
  GuardClassifierUnavailable,
  type LlamaGuardComplete,
  type LlamaGuardPromptFormat,
  type PromptGuardClassify,
  SAFE_VERDICT,
  withDeadline,
} from '../../src/guard/classifiers/index.js'
import { createMockProvider, type MockProvider } from '../../src/testing/index.js'

let mock: MockProvider

beforeAll(async () => {
  mock = await createMockProvider({ keys: ['sk-guard'] })
})

afterAll(async () => {
  await mock.close()
})

beforeEach(() => {
  mock.reset()
})

const headers = { authorization: 'Bearer sk-guard', 'content-type': 'application/json' }

const complete: LlamaGuardComplete = async ({ model, messages, maxTokens, temperature, signal }) => {
  const res = await fetch(`${mock.url}/v1/chat/completions`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ model, messages, max_tokens: maxTokens, temperature }),
    signal,
  })
  if (!res.ok) throw new Error(`HTTP ${res.status}`)
  const body = (await res.json()) as { choices: { message: { content: string } }[] }
  return body.choices[0]!.message.content
}

const classify =
  (model: string): PromptGuardClassify =>
  async (text, signal) => {
    const res = await fetch(`${mock.url}/models/${model}`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ inputs: text }),
      signal,
    })
    if (!res.ok) throw new Error(`HTTP ${res.status}`)
    return (await res.json()) as { label: string; score: number }[]
  }

const signal = () => new AbortController().signal

describe.each<LlamaGuardPromptFormat>(['chat', 'raw'])(
  'Llama Guard against the mock provider (%s format)',
  (promptFormat) => {
    const guard = createLlamaGuardClassifier({ model: '@cf/meta/llama-guard-3-8b', complete, promptFormat })

    it('classifies a safe and an unsafe prompt', async () => {
      expect(await guard.classify('What is the capital of France?', 'prompt', { signal: signal() })).toEqual(
        SAFE_VERDICT,
      )
      expect(await guard.classify('tell me [[unsafe:S1,S10]] now', 'prompt', { signal: signal() })).toEqual({
        unsafe: true,
        categories: [
          { category: 'S1', score: 1 },
          { category: 'S10', score: 1 },
        ],
      })
      const sent = mock.calls.map((call) => call.json as { messages: { role: string }[]; max_tokens: number })
      expect(sent).toHaveLength(2)
      expect(sent[0]?.max_tokens).toBe(64)
    })

    it('judges an answer on its own, with the prompt as context only', async () => {
      const prompt = 'a question with [[unsafe:S2]] in it'
      expect(await guard.classify('a harmless answer', 'answer', { signal: signal(), prompt })).toEqual(
        SAFE_VERDICT,
      )
      expect(
        await guard.classify('an answer with [[unsafe:S11]]', 'answer', { signal: signal(), prompt: 'fine' }),
      ).toEqual({ unsafe: true, categories: [{ category: 'S11', score: 1 }] })
      const roles = (mock.calls[0]!.json as { messages: { role: string }[] }).messages.map((m) => m.role)
      expect(roles).toEqual(promptFormat === 'chat' ? ['user', 'assistant'] : ['user'])
    })

    it('ignores categories outside the taxonomy', async () => {
      expect(await guard.classify('[[unsafe:S14]]', 'prompt', { signal: signal() })).toEqual({
        unsafe: true,
        categories: [],
      })
    })

    it('reports an unreadable answer and a failing provider as unavailable', async () => {
      const unreadable = await guard
        .classify('[[guard:malformed]]', 'prompt', { signal: signal() })
        .catch((e) => e)
      expect(unreadable).toBeInstanceOf(GuardClassifierUnavailable)
      expect(unreadable).toMatchObject({ reason: 'error' })
      mock.enqueue({ status: 503 })
      const failed = await guard.classify('hello', 'prompt', { signal: signal() }).catch((e) => e)
      expect(failed).toMatchObject({ reason: 'error', message: expect.stringContaining('HTTP 503') })
    })
  },
)

describe('withDeadline over HTTP', () => {
  it('times out a guard model that does not answer and aborts its request', async () => {
    mock.enqueue({ stallBeforeHeaders: true })
    const signals: AbortSignal[] = []
    const watched: LlamaGuardComplete = (request) => {
      signals.push(request.signal)
      return complete(request)
    }
    const guard = withDeadline(
      createLlamaGuardClassifier({ model: 'llama-guard-3-8b', complete: watched }),
      50,
    )
    const error = await guard.classify('hello', 'prompt', { signal: signal() }).catch((e) => e)
    expect(error).toMatchObject({ reason: 'timeout' })
    expect(signals[0]?.aborted).toBe(true)
    // Whether the request reached the mock before the deadline depends on the machine; if it did, it was cut.
    const call = mock.calls[0]
    if (call !== undefined) expect(await call.outcome).toBe('aborted')
  })
})

describe('Prompt Guard against the mock provider', () => {
  const long = `${'Notes from the quarterly planning meeting, nothing unusual. '.repeat(300)}[[injection]]`

  it('finds an injection at the end of a long text (Prompt-Guard-86M labels)', async () => {
    const guard = createPromptGuardClassifier({ classify: classify('meta-llama/Prompt-Guard-86M') })
    const verdict = await guard.classify(long, 'prompt', { signal: signal() })
    expect(verdict.unsafe).toBe(true)
    expect(verdict.categories).toHaveLength(1)
    expect(verdict.categories[0]?.category).toBe('P1')
    expect(verdict.categories[0]?.score).toBeCloseTo(0.9995, 4)
    const inputs = mock.calls.map((call) => (call.json as { inputs: string }).inputs)
    expect(inputs.length).toBeGreaterThan(10)
    expect(inputs.every((input) => input.length <= 1500)).toBe(true)
    expect(inputs.filter((input) => input.includes('[[injection]]'))).toHaveLength(1)
    expect(await guard.classify(long.replace('[[injection]]', ''), 'prompt', { signal: signal() })).toEqual(
      SAFE_VERDICT,
    )
  })

  it('reads Llama-Prompt-Guard-2 labels', async () => {
    const guard = createPromptGuardClassifier({ classify: classify('meta-llama/Llama-Prompt-Guard-2-86M') })
    expect(await guard.classify('hi [[jailbreak]]', 'prompt', { signal: signal() })).toEqual({
      unsafe: true,
      categories: [{ category: 'P1', score: 0.9987 }],
    })
    expect(await guard.classify('hi', 'prompt', { signal: signal() })).toEqual(SAFE_VERDICT)
  })
})
