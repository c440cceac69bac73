export { createTestContext, type TestContextOptions } from './context.js'
export type { MockCall, MockProvider, MockProviderOptions, MockScript } from './mock-provider.js'
export { createMockProvider } from './mock-provider.js'
export type { MockRealtime, MockRealtimeScript, MockRealtimeSession } from './mock-realtime.js'
