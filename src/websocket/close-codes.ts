/**
 * The close codes the gateway sends on its own account, and the rules for passing one side's close on to
 * the other. Codes 4000-4999 are the application's range (RFC 6455 §7.4.2); the gateway's mirror the HTTP
 * statuses they stand for.
 */
export const CLOSE_CODES = {
  /** A normal end, either side. */
  NORMAL: 1000,
  /** The gateway is closing (`gateway.close()`), or the client went away without a close frame. */
  GOING_AWAY: 1001,
  /** A message over `websockets.maxPayload`. */
  TOO_BIG: 1009,
  /** A bug in the gateway. */
  INTERNAL: 1011,
  /** The provider's connection was lost or failed (RFC 6455's registry: Bad Gateway). */
  BAD_GATEWAY: 1014,
  /** No frame either way for `websockets.idleTimeoutMs`. */
  IDLE: 4408,
  /** The connection reached `websockets.maxSessionMs`. */
  SESSION_LIMIT: 4409,
  /** A rate or spend limit ran out while the session was open. */
  LIMITED: 4429,
} as const

/** The longest close reason a frame can carry, in UTF-8 bytes. */
export const MAX_CLOSE_REASON_BYTES = 123

/**
 * A close reason cut to what a close frame can carry (123 bytes of UTF-8), never inside a character.
 *
 * @example
 * closeReason('é'.repeat(100)) // 61 × 'é' (122 bytes)
 */
export function closeReason(reason: string): string {
  if (Buffer.byteLength(reason) <= MAX_CLOSE_REASON_BYTES) return reason
  let cut = reason.slice(0, MAX_CLOSE_REASON_BYTES)
  while (Buffer.byteLength(cut) > MAX_CLOSE_REASON_BYTES) cut = cut.slice(0, -1)
  // A lone high surrogate left at the end would not encode.
  return /[\uD800-\uDBFF]$/.test(cut) ? cut.slice(0, -1) : cut
}

/**
 * The code to send one side when the other closed with `code`. Codes no frame may carry are translated:
 * 1005 (closed without a code) becomes 1000; 1006 (the connection dropped) becomes `lost`, the code that
 * says so to the peer (1001 towards a provider whose client left, 1014 towards a client whose provider did).
 *
 * @example
 * codeForPeer(1006, CLOSE_CODES.BAD_GATEWAY) // 1014
 * codeForPeer(4000, CLOSE_CODES.BAD_GATEWAY) // 4000
 */
export function codeForPeer(code: number, lost: number): number {
  if (code === 1005) return CLOSE_CODES.NORMAL
  if (isSendable(code)) return code
  return lost
}

/**
 * Whether a close frame may carry `code` (RFC 6455 §7.4: 1000-1014 less the reserved ones, and 3000-4999).
 *
 * @example
 * isSendable(4429) // true
 * isSendable(1006) // false: it only reports a dropped connection
 */
export function isSendable(code: number): boolean {
  return (
    (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999)
  )
}
