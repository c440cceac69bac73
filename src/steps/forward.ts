import { GatewayError } from '../errors.js'
import type { Step } from '../types.js'
import { callUpstream } from '../upstream/call.js'

/**
 * Calls the resolved target and answers with what the provider sent. The first-byte clock comes from
 * `cf-aig-request-timeout` when the client set one, else from the options.
 */
export function forward(): Step {
  return async function forward(ctx) {
    const target = ctx.state.targets?.[0]
    if (target === undefined) throw new GatewayError('INTERNAL', 'no upstream target was resolved')
    const { timeouts } = ctx.gateway.options
    ctx.response = await callUpstream(
      ctx,
      target,
      {
        firstByteMs: ctx.state.settings?.requestTimeoutMs ?? timeouts.firstByteMs,
        idleMs: timeouts.idleMs,
        totalMs: timeouts.totalMs,
      },
      1,
    )
  }
}
