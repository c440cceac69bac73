import type { IncomingMessage } from 'node:http'
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import type { GatewayResponse } from '../types.js'

/** The subprotocol a browser, which cannot set headers, carries its gateway token in. */
export const GATEWAY_TOKEN_PROTOCOL = 'cf-aig-authorization.'
/** The request header that token stands for. */
const GATEWAY_TOKEN_HEADER = 'cf-aig-authorization'

// Request headers that belong to the WebSocket handshake itself: never copied into the request the
// pipeline sees, so no step mistakes them for the client's (and none is sent on to a provider).
const HANDSHAKE_HEADERS = new Set([
  'connection',
  'upgrade',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
  'content-length',
  'transfer-encoding',
])

// RFC 6455 §4.1: a base64 nonce of 16 bytes; ws refuses any other key the same way.
const WEBSOCKET_KEY = /^[+/0-9A-Za-z]{22}==$/

/**
 * Whether a request asks to become a WebSocket (other upgrades, `h2c` say, are not the gateway's).
 *
 * @example
 * isWebSocketUpgrade(req) // true for `Upgrade: websocket`, false for `Upgrade: h2c`
 */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return req.headers.upgrade?.toLowerCase() === 'websocket'
}

/**
 * What is wrong with a WebSocket handshake, as `ws` would refuse it, or `undefined` when it is well formed.
 *
 * @example
 * handshakeProblem(req) // { status: 400, message: 'Missing or invalid Sec-WebSocket-Key header' }
 */
export function handshakeProblem(req: IncomingMessage): { status: number; message: string } | undefined {
  if (req.method !== 'GET') return { status: 405, message: 'A WebSocket handshake is a GET' }
  if (!WEBSOCKET_KEY.test(req.headers['sec-websocket-key'] ?? '')) {
    return { status: 400, message: 'Missing or invalid Sec-WebSocket-Key header' }
  }
  const version = req.headers['sec-websocket-version']
  if (version !== '13' && version !== '8') {
    return { status: 400, message: 'Missing or invalid Sec-WebSocket-Version header' }
  }
  return undefined
}

/**
 * The subprotocols a client offered, in its order.
 *
 * @example
 * offeredProtocols(req) // ['realtime', 'cf-aig-authorization.gw-token…'] for `Sec-WebSocket-Protocol: realtime, cf-aig-authorization.gw-token…`
 */
export function offeredProtocols(req: IncomingMessage): string[] {
  const header = req.headers['sec-websocket-protocol']
  if (header === undefined) return []
  return header
    .split(',')
    .map((protocol) => protocol.trim())
    .filter((protocol) => protocol !== '')
}

/**
 * The upgrade request's headers as the pipeline reads them: lower-case, the handshake's own left out, and
 * the gateway token a browser sent as the subprotocol `cf-aig-authorization.<token>` given as the
 * `cf-aig-authorization` header it stands for (a header the client sent wins).
 *
 * @example
 * requestHeaders(req, ['cf-aig-authorization.gw-token…'])['cf-aig-authorization'] // 'Bearer gw-token…'
 */
export function requestHeaders(
  req: IncomingMessage,
  protocols: readonly string[],
): Record<string, string | undefined> {
  const headers: Record<string, string | undefined> = {}
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || HANDSHAKE_HEADERS.has(name)) continue
    headers[name] = Array.isArray(value) ? value.join(', ') : value
  }
  const token = protocols.find((protocol) => protocol.startsWith(GATEWAY_TOKEN_PROTOCOL))
  if (token !== undefined && headers[GATEWAY_TOKEN_HEADER] === undefined) {
    headers[GATEWAY_TOKEN_HEADER] = `Bearer ${token.slice(GATEWAY_TOKEN_PROTOCOL.length)}`
  }
  return headers
}

/**
 * Answers an upgrade request with an ordinary HTTP response instead of switching protocols (a refused
 * token, a provider's own refusal, a limit), then closes the connection once it is written.
 *
 * @example
 * refuseUpgrade(socket, renderError(new GatewayError('UNAUTHORIZED'))) // HTTP/1.1 401 Unauthorized, then closed
 */
export function refuseUpgrade(socket: Duplex, response: GatewayResponse): void {
  const body = bodyBytes(response.body)
  const lines = [`HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? 'Error'}`]
  for (const [name, value] of Object.entries(response.headers)) {
    const lower = name.toLowerCase()
    if (lower === 'content-length' || lower === 'connection' || lower === 'transfer-encoding') continue
    lines.push(`${name}: ${value}`)
  }
  lines.push(`content-length: ${body.length}`, 'connection: close', '', '')
  if (!socket.writable) {
    socket.destroy()
    return
  }
  socket.end(Buffer.concat([Buffer.from(lines.join('\r\n')), body]))
  // A client that never reads the answer must not hold the connection open.
  socket.once('finish', () => socket.destroy())
}

function bodyBytes(body: GatewayResponse['body']): Buffer {
  if (body === null || (typeof body === 'object' && 'pipe' in body)) return Buffer.alloc(0)
  if (typeof body === 'string') return Buffer.from(body)
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength)
}
