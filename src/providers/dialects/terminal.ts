import type { GatewayError } from '../../errors.js'
import type { Dialect } from '../types.js'
import { dialectOf } from './index.js'

/**
 * The last event of a stream that failed after it started, in the client's dialect; see
 * `DialectSpec.terminalEvent`. Never a `[DONE]`; none for dialects without an in-band error form.
 */
export function terminalEvent(dialect: Dialect, error: GatewayError): string | undefined {
  return dialectOf(dialect).terminalEvent(error)
}
