import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { compose, unless, when } from '../../src/compose.js'
import { createGateway, GatewayError, type GatewayRequest } from '../../src/index.js'
import { createMockProvider, type MockProvider } from '../../src/testing/index.js'
import type { GatewayContext, Step } from '../../src/types.js'

const ctx = {} as GatewayContext

const traced =
  (trace: string[], name: string): Step =>
  async (_ctx, next) => {
    trace.push(`${name} in`)
    await next()
    trace.push(`${name} out`)
  }

describe('compose()', () => {
  it('runs steps onion style', async () => {
    const trace: string[] = []
    const step =
      (name: string): Step =>
      async (_ctx, next) => {
        trace.push(`${name} in`)
        await next()
        trace.push(`${name} out`)
      }
    await compose([step('a'), step('b'), step('c')])(ctx)
    expect(trace).toEqual(['a in', 'b in', 'c in', 'c out', 'b out', 'a out'])
  })

  it('rejects with STEP_NEXT_TWICE, naming the step, when next() is called twice', async () => {
    let tailRuns = 0
    const twice: Step = async function twice(_ctx, next) {
      await next()
      await next()
    }
    const tail: Step = async () => {
      tailRuns++
    }
    await expect(compose([twice, tail])(ctx)).rejects.toMatchObject({
      code: 2111,
      message: expect.stringContaining("'twice'"),
    })
    expect(tailRuns).toBe(1)
  })

  it('turns a synchronous throw into a rejection', async () => {
    const throws = (() => {
      throw new Error('sync')
    }) as unknown as Step
    await expect(compose([throws])(ctx)).rejects.toThrow('sync')
  })

  it('refuses a step that is not a function', () => {
    expect(() => compose([42 as unknown as Step])).toThrow(TypeError)
  })
})

describe('compose() as a step', () => {
  it('nests: a composed list runs in place, then calls its own next', async () => {
    const trace: string[] = []
    const inner = compose([traced(trace, 'b'), traced(trace, 'c')])
    await compose([traced(trace, 'a'), inner, traced(trace, 'd')])(ctx)
    expect(trace).toEqual(['a in', 'b in', 'c in', 'd in', 'd out', 'c out', 'b out', 'a out'])
  })

  it('calls the next it is given after the last step, once', async () => {
    let nextRuns = 0
    await compose([traced([], 'a')])(ctx, async () => {
      nextRuns++
    })
    expect(nextRuns).toBe(1)
    await expect(compose([])(ctx, async () => void nextRuns++)).resolves.toBeUndefined()
    expect(nextRuns).toBe(2)
  })

  it('rejects with STEP_NEXT_TWICE inside a nested compose, and runs the outer tail once', async () => {
    let tailRuns = 0
    const twice: Step = async function twice(_ctx, next) {
      await next()
      await next()
    }
    const tail: Step = async () => {
      tailRuns++
    }
    await expect(compose([compose([twice]), tail])(ctx)).rejects.toMatchObject({
      code: 2111,
      message: expect.stringContaining("'twice'"),
    })
    expect(tailRuns).toBe(1)
  })
})

describe('when() and unless()', () => {
  it('runs the step when the predicate is true', async () => {
    const trace: string[] = []
    await compose([when(() => true, traced(trace, 'a')), traced(trace, 'b')])(ctx)
    expect(trace).toEqual(['a in', 'b in', 'b out', 'a out'])
  })

  it('skips the step, but not the rest, when the predicate is false', async () => {
    const trace: string[] = []
    await compose([when(() => false, traced(trace, 'a')), traced(trace, 'b')])(ctx)
    expect(trace).toEqual(['b in', 'b out'])
  })

  it('awaits an async predicate', async () => {
    const trace: string[] = []
    const later = (value: boolean) => () => new Promise<boolean>((resolve) => setTimeout(resolve, 5, value))
    await compose([when(later(true), traced(trace, 'yes')), when(later(false), traced(trace, 'no'))])(ctx)
    expect(trace).toEqual(['yes in', 'yes out'])
  })

  it('unless() runs the step when the predicate is false', async () => {
    const trace: string[] = []
    const steps = [unless(async () => true, traced(trace, 'a')), unless(() => false, traced(trace, 'b'))]
    await compose(steps)(ctx)
    expect(trace).toEqual(['b in', 'b out'])
  })

  it('keeps the step’s name, so STEP_NEXT_TWICE names the host’s step', async () => {
    const twice: Step = async function twice(_ctx, next) {
      await next()
      await next()
    }
    const conditional = when(() => true, twice)
    expect(conditional.name).toBe('twice')
    await expect(compose([conditional])(ctx)).rejects.toMatchObject({
      message: expect.stringContaining("'twice'"),
    })
  })

  it('rejects when the predicate throws, without running the step', async () => {
    const trace: string[] = []
    const step = when(
      () => {
        throw new Error('predicate')
      },
      traced(trace, 'a'),
    )
    await expect(compose([step])(ctx)).rejects.toThrow('predicate')
    expect(trace).toEqual([])
  })

  it('refuses a predicate or step that is not a function', () => {
    expect(() => when(true as unknown as () => boolean, traced([], 'a'))).toThrow(TypeError)
    expect(() => when(() => true, 'a' as unknown as Step)).toThrow(TypeError)
    expect(() => unless(() => true, 'a' as unknown as Step)).toThrow(TypeError)
  })
})

// The README's "Extending / Steps" example, run: a host step inserted with `when` after `route`.
describe('README: steps: (builtIn) => [...] with when()', () => {
  let mock: MockProvider
  beforeAll(async () => {
    mock = await createMockProvider()
  })
  afterAll(() => mock.close())

  /** Free-plan callers may only reach OpenAI. */
  const openaiOnly: Step = async function openaiOnly(ctx, next) {
    if (ctx.state.targets?.some((target) => target.provider.spec.id !== 'openai'))
      throw new GatewayError('INVALID_PROVIDER', 'the free plan only reaches OpenAI')
    await next()
  }

  function request(provider: 'openai' | 'anthropic', plan: string): GatewayRequest {
    const path = provider === 'openai' ? '/openai/chat/completions' : '/anthropic/v1/messages'
    return {
      method: 'POST',
      path,
      search: '',
      headers: { 'content-type': 'application/json', 'x-plan': plan },
      signal: new AbortController().signal,
      body: JSON.stringify({ model: 'm', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
    }
  }

  it('refuses other providers to free-plan callers only', async () => {
    const gateway = createGateway({
      providers: {
        openai: { apiKey: 'sk-test', baseURL: `${mock.url}/v1` },
        anthropic: { apiKey: 'sk-ant-test', baseURL: mock.url },
      },
      identify: (_host, req) => ({ id: 'user-1', plan: req.headers['x-plan'] }),
      steps: (builtIn) => {
        const at = builtIn.findIndex((step) => step.name === 'route') + 1 // after route: the targets are known
        return [
          ...builtIn.slice(0, at),
          when((ctx) => ctx.state.principal?.plan === 'free', openaiOnly),
          ...builtIn.slice(at),
        ]
      },
    })
    const callsBefore = mock.calls.length
    const refused = await gateway.handle(request('anthropic', 'free'))
    expect(refused?.status).toBe(400)
    expect(String(refused?.body)).toContain('the free plan only reaches OpenAI')
    expect(mock.calls.length).toBe(callsBefore)
    expect((await gateway.handle(request('openai', 'free')))?.status).toBe(200)
    expect((await gateway.handle(request('anthropic', 'pro')))?.status).toBe(200)
    expect(mock.calls.length).toBe(callsBefore + 2)
    await gateway.close()
  })
})
