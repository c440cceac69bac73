import type { ResolvedOptions } from '../options.js'
import type { Step } from '../types.js'
import { authenticate } from './authenticate.js'
import { cache } from './cache.js'
import { forward } from './forward.js'
import { identify } from './identify.js'
import { limit } from './limit.js'
import { parse } from './parse.js'
import { route } from './route.js'

export { authenticate, cache, forward, identify, limit, parse, route }

/**
 * The built-in pipeline, in order. Hosts get a fresh copy to insert their own steps into. `route` runs
 * before `cache` and `limit` because both key on what it resolves (provider, model, credential); it only
 * computes, so a cache hit still never reaches the provider.
 */
export function builtInSteps(options: Pick<ResolvedOptions, 'authentication'> = {}): Step[] {
  return [authenticate(options.authentication), parse(), identify(), route(), cache(), limit(), forward()]
}
