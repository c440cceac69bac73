import { jsonBody } from '../json.js'
import { dialectOf } from '../providers/dialects/index.js'
import type { UpstreamTarget } from '../upstream/call.js'

const models = new WeakMap<UpstreamTarget, string | null>()

/**
 * The model a target asks for, as the provider names it: the compat model after its prefix, else where
 * the provider's dialect names it (the body's `model`, a Gemini path's `models/{model}:…`). Read once per target and remembered, since the
 * cache key, limit rules and logs all ask.
 */
export function targetModel(target: UpstreamTarget): string | undefined {
  let model = models.get(target)
  if (model === undefined) {
    model = readModel(target) ?? null
    models.set(target, model)
  }
  return model ?? undefined
}

function readModel(target: UpstreamTarget): string | undefined {
  if (target.translation !== undefined) return target.translation.model
  return dialectOf(target.provider.spec.dialect).model(target.path, jsonBody(target.body))
}
