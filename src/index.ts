export {
  type Admin,
  type AdminOptions,
  createAdmin,
  type DashboardOptions,
  isAdmin,
  type SettingsSource,
  type VerifyAdminToken,
} from './admin/index.js'
export { compose, type StepPredicate, unless, when } from './compose.js'
export type { GatewayServices } from './context.js'
export {
  computeCost,
  extractStreamUsage,
  extractUsage,
  parseCustomCost,
  totalInputTokens,
  type Usage,
} from './cost/cost.js'
export { createPriceTable, findPrice, PRICES_AS_OF, type Price, type PriceOverrides } from './cost/pricing.js'
export type { GatewayRoutes } from './dynamic/routes.js'
export type {
  RouteDefinition,
  RouteDeployment,
  RouteElement,
  RouteStore,
  RouteSummary,
  RouteVersion,
} from './dynamic/types.js'
export {
  ERRORS,
  type ErrorName,
  errorBody,
  GatewayError,
  GatewayOptionsError,
  KeyStoreError,
  LIBRARY_ERRORS,
  type LibraryErrorName,
  LogQueryError,
  type LogQueryIssue,
  LogRecordError,
  renderError,
  StoreTimeoutError,
  toGatewayError,
} from './errors.js'
export type {
  GatewayEvents,
  LogDroppedEvent,
  PolicyErrorEvent,
  RequestEndEvent,
  RequestStartEvent,
  StoreErrorEvent,
  UpstreamRequestEvent,
  UpstreamResponseEvent,
  WebSocketBackpressureEvent,
  WebSocketCloseEvent,
  WebSocketOpenEvent,
} from './events.js'
export { createGateway, type Gateway, isGateway } from './gateway.js'
export { createKeyRing, type KeyRing, type KeyRingOptions } from './keys/key-ring.js'
export { createMemorySecretStore, type MemorySecretStoreOptions } from './keys/memory-store.js'
export type { MaskedKey, SecretStore, StoredSecret } from './keys/types.js'
export { createMemoryLogStore, type MemoryLogStoreOptions } from './logs/memory-store.js'
export { parseAnalyticsQuery, parseLogPatch, parseLogQuery } from './logs/query.js'
export type { LogStats } from './logs/recorder.js'
export type {
  AnalyticsQuery,
  AnalyticsRow,
  LogAttempt,
  LogAttemptAction,
  LogDlp,
  LogDlpAction,
  LogDlpFinding,
  LogFilter,
  LogGuard,
  LogGuardHit,
  LogGuardrailAction,
  LogGuardrails,
  LogOutcome,
  LogPage,
  LogPatch,
  LogQuery,
  LogRecord,
  LogRoute,
  LogStore,
  LogWebSocket,
} from './logs/types.js'
export type { GatewayMetrics } from './metrics/index.js'
export type { PrometheusRegistry } from './metrics/prometheus.js'
export { serveMetrics } from './metrics/serve.js'
export {
  type ErrorHook,
  type GatewayOptions,
  type LimitKey,
  type LimitRuleOptions,
  type MetricsOptions,
  type PoliciesOption,
  parseOptions,
  type ResolvedOptions,
} from './options.js'
export {
  compilePolicies,
  evaluatePolicies,
  type Policy,
  type PolicyAction,
  type PolicyDecision,
  settlePolicies,
} from './policies/index.js'
export { PROVIDERS } from './providers/catalog.js'
export { type DialectSpec, dialectOf, type UsageReader } from './providers/dialects/index.js'
export type { CustomProviderConfig, ProviderConfig } from './providers/registry.js'
export { DIALECTS, type Dialect, defineProvider, type ProviderSpec } from './providers/types.js'
export type { Backoff, CacheSettings, Metadata, RequestSettings, TargetPolicy } from './settings.js'
export type { AuthenticationOptions } from './steps/authenticate.js'
export type { CacheOptions } from './steps/cache.js'
export type { ForwardOptions } from './steps/forward.js'
export type { IdentifyFn } from './steps/identify.js'
export {
  authenticate,
  builtInSteps,
  cache,
  forward,
  identify,
  limit,
  parse,
  policy,
  record,
  route,
} from './steps/index.js'
export type { LimitOptions } from './steps/limit.js'
export type { RecordOptions } from './steps/record.js'
export { createMemoryBreakerStore, type MemoryBreakerStoreOptions } from './stores/memory-breaker.js'
export { createMemoryCacheStore, type MemoryCacheStoreOptions } from './stores/memory-cache.js'
export { createMemoryLimitStore, type MemoryLimitStoreOptions } from './stores/memory-limits.js'
export { createMemoryRouteStore } from './stores/memory-routes.js'
export type {
  BreakerPolicy,
  BreakerState,
  BreakerStore,
  CacheEntry,
  CacheStore,
  LimitCallOptions,
  LimitDecision,
  LimitStore,
  LimitWindow,
} from './stores/types.js'
export type { Translation, UpstreamTarget } from './target.js'
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
  TraceContext,
} from './types.js'
export { attachWebSockets, type UpgradeEmitter, type Upgrader } from './websocket/attach.js'
export { CLOSE_CODES, type UpgradeOptions } from './websocket/index.js'
export type { RealtimeKeyPlacement, WebSocketOptions } from './websocket/options.js'
