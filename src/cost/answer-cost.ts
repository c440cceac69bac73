import type { UpstreamTarget } from '../target.js'
import type { GatewayContext } from '../types.js'
import { computeCost, type Usage } from './cost.js'
import type { Price } from './pricing.js'

/** Budgets count micro-dollars: a store of whole numbers then keeps cents exact. */
export const MICROS_PER_DOLLAR = 1_000_000

/**
 * What budgets, spend limits and policy caps charge for an answer, in USD: its cost at the table's price for
 * the target's model, or at the request's own `cf-aig-custom-cost` when that is dearer (or the model has no
 * price). The caller a budget caps sends that header: a lower price of its own must not shrink its charge.
 * The log record keeps the custom cost as it is. `undefined` when neither price is known.
 */
export function chargedCost(
  ctx: GatewayContext,
  target: UpstreamTarget | undefined,
  usage: Usage,
): number | undefined {
  const listed = listPrice(ctx, target)
  const custom = ctx.state.settings?.customCost
  const atList = listed === undefined ? undefined : computeCost(usage, listed)
  const atCustom = custom === undefined ? undefined : computeCost(usage, custom)
  if (atList === undefined) return atCustom
  return atCustom === undefined ? atList : Math.max(atList, atCustom)
}

/** `chargedCost` in micro-dollars, rounded up. */
export function costMicros(
  ctx: GatewayContext,
  target: UpstreamTarget | undefined,
  usage: Usage,
): number | undefined {
  const cost = chargedCost(ctx, target, usage)
  return cost === undefined ? undefined : Math.ceil(cost * MICROS_PER_DOLLAR)
}

/** Whether budgets can charge an answer of this target: its model has a price, or the request set its own. */
export function isPriced(ctx: GatewayContext, target: UpstreamTarget): boolean {
  return ctx.state.settings?.customCost !== undefined || listPrice(ctx, target) !== undefined
}

function listPrice(ctx: GatewayContext, target: UpstreamTarget | undefined): Price | undefined {
  if (target?.model === undefined) return undefined
  return ctx.gateway.prices.find(target.provider.spec.id, target.model)
}
