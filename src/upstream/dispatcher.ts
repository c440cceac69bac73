import { Agent, type Dispatcher } from 'undici'

/**
 * The default upstream dispatcher: a keep-alive undici Agent with the connect clock. Redirects are not
 * followed (undici 7 only follows them through an interceptor we do not add), so a provider cannot send a
 * request, with its credential, somewhere else.
 */
export function createDispatcher(connectTimeoutMs: number): Dispatcher {
  return new Agent({ connect: { timeout: connectTimeoutMs } })
}
