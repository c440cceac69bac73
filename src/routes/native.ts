import { dialectOf } from '../providers/dialects/index.js'
import type { UpstreamTarget } from '../target.js'
import type { GatewayContext } from '../types.js'
import { askForStreamUsage } from '../upstream/stream-usage.js'

/** A target before `nativeTarget` reads what its body asks for. */
export type TargetDraft = Omit<UpstreamTarget, 'model' | 'stream' | 'translation' | 'streamUsage' | 'route'>

/**
 * Completes a target whose body is in the provider's own dialect: the model and whether it streams, as the
 * dialect reads them (the body's `model`, a Gemini path's `models/{model}:streamGenerateContent`), from
 * the JSON its builder parsed once; and, when the pipeline watches usage, the ask for stream usage.
 */
export function nativeTarget(ctx: GatewayContext, draft: TargetDraft, json: unknown): UpstreamTarget {
  const dialect = dialectOf(draft.provider.spec.dialect)
  const ask = ctx.gateway.watchesUsage ? askForStreamUsage(draft, json) : undefined
  // Every field written out: a literal of one shape is built in a few instructions a field, where copying
  // the draft (`withFields`) looks up a map transition for each (about 2.5k instructions a request).
  return {
    provider: draft.provider,
    origin: draft.origin,
    path: draft.path,
    method: draft.method,
    headers: ask?.headers ?? draft.headers,
    body: ask?.body ?? draft.body,
    model: dialect.model(draft.path, json),
    stream: dialect.streams(draft.path, json),
    step: draft.step,
    policy: draft.policy,
    clientDialect: draft.clientDialect,
    streamUsage: ask?.streamUsage,
  }
}
