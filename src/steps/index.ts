import type { Step } from '../types.js'
import { cache } from './cache.js'
import { forward } from './forward.js'
import { identify } from './identify.js'
import { limit } from './limit.js'
import { parse } from './parse.js'
import { route } from './route.js'

export { cache, forward, identify, limit, parse, route }

/**
 * The built-in pipeline, in order. Hosts get a fresh copy to insert their own steps into. `route` runs
 * before `cache` and `limit` because both key on what it resolves (provider, model, credential); it only
 * computes, so a cache hit still never reaches the provider.
 */
export function builtInSteps(): Step[] {
  return [parse(), identify(), route(), cache(), limit(), forward()]
}
