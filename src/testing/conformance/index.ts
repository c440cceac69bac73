/**
 * Conformance suites for the storage interfaces: run them in your own vitest tests against your own store
 * to check it behaves as the gateway expects. This entry imports `vitest`; the mock provider's entry
 * (`ai-gateway-middleware/testing`) does not.
 */
export {
  breakerStoreConformance,
  type CacheConformanceHooks,
  type ConformanceHooks,
  cacheStoreConformance,
  limitStoreConformance,
} from '../conformance.js'
export { secretStoreConformance } from '../key-store-conformance.js'
export { logStoreConformance } from '../log-store-conformance.js'
export { routeStoreConformance } from '../route-store-conformance.js'
