export { compose } from './compose.js'
export type { GatewayServices } from './context.js'
export { ERRORS, type ErrorName, errorBody, GatewayError, toGatewayError } from './errors.js'
export type {
  GatewayEvents,
  RequestEndEvent,
  RequestStartEvent,
  UpstreamRequestEvent,
  UpstreamResponseEvent,
} from './events.js'
export { createGateway, type Gateway, isGateway, renderError } from './gateway.js'
export { type GatewayOptions, GatewayOptionsError, parseOptions, type ResolvedOptions } from './options.js'
export { PROVIDERS } from './providers/catalog.js'
export type { CustomProviderConfig, ProviderConfig } from './providers/registry.js'
export { type Dialect, defineProvider, type ProviderSpec } from './providers/types.js'
export { builtInSteps, forward, parse, route } from './steps/index.js'
export type { RequestSettings } from './steps/parse.js'
export type {
  BodyReader,
  GatewayContext,
  GatewayRequest,
  GatewayResponse,
  GatewayState,
  MaybePromise,
  Next,
  ResponseBody,
  Step,
  Surface,
} from './types.js'
export type { UpstreamTarget } from './upstream/call.js'
