import { isRecord, jsonBody } from '../json.js'
import type { UpstreamTarget } from '../upstream/call.js'

const models = new WeakMap<UpstreamTarget, string | null>()

/**
 * The model a target asks for, as the provider names it: the compat model after its prefix, else the
 * body's `model`, else a Gemini path's `models/{model}:…`. Read once per target and remembered, since the
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
  const json = jsonBody(target.body)
  if (isRecord(json) && typeof json.model === 'string') return json.model
  return /\/models\/([^/:?]+)/.exec(target.path)?.[1]
}
