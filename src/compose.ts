import { GatewayError } from './errors.js'
import type { GatewayContext, Step } from './types.js'

/**
 * Composes steps onion style, with koa-compose's semantics: each step gets `next` to run the rest, and
 * calling `next` twice rejects with `STEP_NEXT_TWICE` instead of running the tail again (which would call
 * the provider twice).
 *
 * @example
 * const run = compose([timing, route(), forward()])
 * await run(ctx)
 */
export function compose(steps: readonly Step[]): (ctx: GatewayContext) => Promise<void> {
  for (const step of steps) {
    if (typeof step !== 'function') throw new TypeError(`Every step must be a function, got ${typeof step}`)
  }
  return function runSteps(ctx) {
    let lastIndex = -1
    function dispatch(index: number): Promise<void> {
      if (index <= lastIndex) {
        const caller = steps[index - 1]?.name || 'anonymous'
        return Promise.reject(new GatewayError('STEP_NEXT_TWICE', `step '${caller}'`))
      }
      lastIndex = index
      const step = steps[index]
      if (step === undefined) return Promise.resolve()
      try {
        return Promise.resolve(step(ctx, () => dispatch(index + 1)))
      } catch (error) {
        return Promise.reject(error)
      }
    }
    return dispatch(0)
  }
}
