import type { GatewayResponse } from '../types.js'

/**
 * The dashboard's Content-Security-Policy: its own scripts, styles and fetches only, nothing inline, never
 * framed. `data:` images are Pico CSS's icons (select arrows, checkmarks), which it embeds as SVG data URLs.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

/**
 * Headers on every admin answer, the JSON ones too: a response read in a browser tab is then never sniffed
 * into HTML, framed, or told where the user came from.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
}

/**
 * Adds `SECURITY_HEADERS` to a response, keeping any the response set itself.
 *
 * @example
 * return withSecurityHeaders(jsonResponse(200, { rows }))
 */
export function withSecurityHeaders(response: GatewayResponse): GatewayResponse {
  response.headers = { ...SECURITY_HEADERS, ...response.headers }
  return response
}
