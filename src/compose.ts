import { GatewayError } from './errors.js'
import type { GatewayContext, MaybePromise, Next, Step } from './types.js'

/**
 * Composes steps onion style, with koa-compose's semantics: each step gets `next` to run the rest, and
 * calling `next` twice rejects with `STEP_NEXT_TWICE` instead of running the tail again (which would call
 * the provider twice). The result is itself a step: after the last step it calls its own `next`, if given,
 * so pipelines nest.
 *
 * @example
 * const run = compose([timing, route(), forward()])
 * await run(ctx)
 * const audited = compose([audit, compose([redact, log])]) // a step made of steps
 */
export function compose(steps: readonly Step[]): (ctx: GatewayContext, next?: Next) => Promise<void> {
  const list = [...steps]
  for (const step of list) {
    if (typeof step !== 'function') throw new TypeError(`Every step must be a function, got ${typeof step}`)
  }
  const composed = function composed(ctx: GatewayContext, next?: Next): Promise<void> {
    let lastIndex = -1
    function dispatch(index: number): Promise<void> {
      if (index <= lastIndex) {
        const caller = list[index - 1]?.name || 'anonymous'
        return Promise.reject(new GatewayError('STEP_NEXT_TWICE', `step '${caller}'`))
      }
      lastIndex = index
      try {
        if (index === list.length) return next === undefined ? Promise.resolve() : Promise.resolve(next())
        const step = list[index]!
        return Promise.resolve(step(ctx, () => dispatch(index + 1)))
      } catch (error) {
        return Promise.reject(error)
      }
    }
    return dispatch(0)
  }
  // The composed step reads usage when any step in it does.
  if (list.some(watchesUsage)) Object.assign(composed, { watchesUsage: true })
  return composed
}

/** Whether a step (or any step composed into it) reads usage: see `Step.watchesUsage`. */
export function watchesUsage(step: unknown): boolean {
  return typeof step === 'function' && (step as Step).watchesUsage === true
}

/** Decides per request whether a conditional step runs; may answer with a promise. */
export type StepPredicate = (ctx: GatewayContext) => MaybePromise<boolean>

/**
 * Runs `step` only for requests `predicate` accepts; for the others it just calls `next`. The step keeps
 * its name, so errors and `builtIn.findIndex((s) => s.name === …)` still find it.
 *
 * @example
 * steps: (builtIn) => [when((ctx) => ctx.state.principal?.plan === 'free', freeTier), ...builtIn]
 */
export function when(predicate: StepPredicate, step: Step): Step {
  if (typeof predicate !== 'function') throw new TypeError(`The predicate must be a function`)
  if (typeof step !== 'function') throw new TypeError(`Every step must be a function, got ${typeof step}`)
  const conditional: Step = async (ctx, next) => {
    if (await predicate(ctx)) return step(ctx, next)
    return next()
  }
  Object.defineProperty(conditional, 'name', { value: step.name })
  if (step.watchesUsage) conditional.watchesUsage = true
  return conditional
}

/** Runs `step` for every request except those `predicate` accepts: `when` with the test turned round. */
export function unless(predicate: StepPredicate, step: Step): Step {
  if (typeof predicate !== 'function') throw new TypeError(`The predicate must be a function`)
  return when(async (ctx) => !(await predicate(ctx)), step)
}
