import { createRequire } from 'node:module'
import { GatewayOptionsError } from './errors.js'

/**
 * Loads an optional peer dependency when the option that needs it is given, synchronously, so that a
 * missing package fails `createGateway` with an error naming the option, at start-up rather than at the
 * first scrape. Resolved from this package's own location, as an import of it would be.
 *
 * @example
 * const promClient = loadPeer<typeof import('prom-client')>('prom-client', 'metrics')
 */
export function loadPeer<T>(name: string, option: string): T {
  try {
    return createRequire(import.meta.url)(name) as T
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'MODULE_NOT_FOUND') throw error
    throw new GatewayOptionsError(`${option} needs the ${name} package: npm install ${name}`, {
      cause: error,
    })
  }
}
