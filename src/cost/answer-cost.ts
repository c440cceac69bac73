import type { UpstreamTarget } from '../target.js'
import type { GatewayContext } from '../types.js'
import { computeCost, type Usage } from './cost.js'
import type { Price } from './pricing.js'

/** Budgets count micro-dollars: a store of whole numbers then keeps cents exact. */
export const MICROS_PER_DOLLAR = 1_000_000

/**
 * The price a request's answer is billed at, as its log record states it: the request's own
 * `cf-aig-custom-cost`, else the table's price for the target's model; `undefined` when neither is known.
 */
export function priceOf(ctx: GatewayContext, target: UpstreamTarget | undefined): Price | undefined {
  const custom = ctx.state.settings?.customCost
  if (custom !== undefined) return custom
  if (target?.model === undefined) return undefined
  return ctx.gateway.prices.find(target.provider.spec.id, target.model)
}

/** What an answer cost in micro-dollars, rounded up; `undefined` without a price. */
export function costMicros(
  ctx: GatewayContext,
  target: UpstreamTarget | undefined,
  usage: Usage,
): number | undefined {
  const price = priceOf(ctx, target)
  return price === undefined ? undefined : Math.ceil(computeCost(usage, price) * MICROS_PER_DOLLAR)
}
