import { describe, expect, it } from 'vitest'
import { compose } from '../../src/compose.js'
import type { GatewayContext, Step } from '../../src/types.js'

const ctx = {} as GatewayContext

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
