import { withFields } from '../objects.js'
import { dialectOf } from '../providers/dialects/index.js'
import type { UpstreamTarget } from '../target.js'
import type { GatewayContext } from '../types.js'
import { askForStreamUsage } from '../upstream/stream-usage.js'

/** A target before `nativeTarget` reads what its body asks for. */
export type TargetDraft = Omit<UpstreamTarget, 'model' | 'stream'>

/**
 * Completes a target whose body is in the provider's own dialect: the model and whether it streams, as the
 * dialect reads them (the body's `model`, a Gemini path's `models/{model}:streamGenerateContent`), from
 * the JSON its builder parsed once; and, when the pipeline watches usage, the ask for stream usage.
 */
export function nativeTarget(ctx: GatewayContext, draft: TargetDraft, json: unknown): UpstreamTarget {
  const dialect = dialectOf(draft.provider.spec.dialect)
  const target: UpstreamTarget = withFields(draft, {
    model: dialect.model(draft.path, json),
    stream: dialect.streams(draft.path, json),
  })
  return ctx.gateway.watchesUsage ? askForStreamUsage(target, json) : target
}
