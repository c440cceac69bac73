import type { GatewayRequest } from '../../src/index.js'

/** A chat completion request for `gateway.handle()`, as a client would send it to the passthrough surface. */
export function chatRequest(text: string, headers: Record<string, string> = {}): GatewayRequest {
  return {
    method: 'POST',
    path: '/openai/chat/completions',
    search: '',
    headers: { 'content-type': 'application/json', ...headers },
    signal: new AbortController().signal,
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] }),
  }
}
