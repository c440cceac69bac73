export { compose } from './compose.js'
export type { GatewayServices } from './context.js'
export { ERRORS, type ErrorName, errorBody, GatewayError, toGatewayError } from './errors.js'
export type {
  GatewayEvents,
  RequestEndEvent,
  RequestStartEvent,
  StoreErrorEvent,
  UpstreamRequestEvent,
  UpstreamResponseEvent,
} from './events.js'
export { createGateway, type Gateway, isGateway, renderError } from './gateway.js'
export {
  type GatewayOptions,
  GatewayOptionsError,
  type LimitKey,
  type LimitRuleOptions,
  parseOptions,
  type ResolvedOptions,
} from './options.js'
export { PROVIDERS } from './providers/catalog.js'
export type { CustomProviderConfig, ProviderConfig } from './providers/registry.js'
export { type Dialect, defineProvider, type ProviderSpec } from './providers/types.js'
export { builtInSteps, cache, forward, identify, limit, parse, route } from './steps/index.js'
export type { Metadata, RequestSettings } from './steps/parse.js'
export { createMemoryCacheStore, type MemoryCacheStoreOptions } from './stores/memory-cache.js'
export { createMemoryLimitStore, type MemoryLimitStoreOptions } from './stores/memory-limits.js'
export type {
  CacheEntry,
  CacheStore,
  LimitDecision,
  LimitStore,
  LimitWindow,
} from './stores/types.js'
export type {
  BodyReader,
  GatewayContext,
  GatewayRequest,
  GatewayResponse,
  GatewayState,
  MaybePromise,
  Next,
  Principal,
  ResponseBody,
  Step,
  Surface,
} from './types.js'
export type { UpstreamTarget } from './upstream/call.js'
