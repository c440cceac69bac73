import type { Step } from '../types.js'
import { forward } from './forward.js'
import { parse } from './parse.js'
import { route } from './route.js'

export { forward, parse, route }

/** The built-in pipeline, in order. Hosts get a fresh copy to insert their own steps into. */
export function builtInSteps(): Step[] {
  return [parse(), route(), forward()]
}
