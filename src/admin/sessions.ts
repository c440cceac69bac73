import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/**
 * Dashboard sessions, kept in this process's memory: a login creates one, logout revokes it at once, and
 * each ends on its own `ttlMs` after it began (absolute, not sliding: a stolen cookie is not kept alive by
 * use). Behind several instances, a browser's session lives on the instance it logged in to (sticky
 * sessions, or a login per instance).
 */
export interface AdminSession {
  /** The cookie's value: 256 random bits. Only its hash is kept as the map key. */
  readonly id: string
  /** Sent back in `x-csrf-token` by the dashboard on every call that changes something. */
  readonly csrfToken: string
  /** Milliseconds since the epoch. */
  readonly expiresAt: number
}

export interface SessionStore {
  create(): AdminSession
  /** The live session with this cookie value, or undefined (unknown, revoked or expired). */
  find(id: string | undefined): AdminSession | undefined
  /** Ends the session; false when there was none. */
  revoke(id: string): boolean
  readonly size: number
}

export interface SessionStoreOptions {
  readonly ttlMs: number
  /** Live sessions at most; the oldest goes first when a login would pass it. */
  readonly maxSessions?: number
  readonly now?: () => number
}

const ID = /^[A-Za-z0-9_-]{43}$/

// Looked up by hash: a map's own comparisons take time that depends on the key, the hash's say nothing.
function keyOf(id: string): string {
  return createHash('sha256').update(id).digest('base64url')
}

/**
 * An in-memory session store. Every session lives exactly `ttlMs`, so the map's insertion order is also
 * its expiry order, and expired sessions are swept from its front on each login.
 *
 * @example
 * const sessions = createSessionStore({ ttlMs: 8 * 3_600_000 })
 * const { id, csrfToken } = sessions.create()
 * sessions.find(id)?.csrfToken === csrfToken // true, until revoke(id) or eight hours
 */
export function createSessionStore(options: SessionStoreOptions): SessionStore {
  const { ttlMs, maxSessions = 10_000, now = Date.now } = options
  const sessions = new Map<string, AdminSession>()

  function sweep(at: number): void {
    for (const [key, session] of sessions) {
      if (session.expiresAt > at && sessions.size < maxSessions) return
      sessions.delete(key)
    }
  }

  return {
    create() {
      const at = now()
      sweep(at)
      const session = {
        id: randomBytes(32).toString('base64url'),
        csrfToken: randomBytes(32).toString('base64url'),
        expiresAt: at + ttlMs,
      }
      sessions.set(keyOf(session.id), session)
      return session
    },
    find(id) {
      if (id === undefined || !ID.test(id)) return undefined
      const key = keyOf(id)
      const session = sessions.get(key)
      if (session === undefined) return undefined
      if (session.expiresAt > now()) return session
      sessions.delete(key)
      return undefined
    },
    revoke(id) {
      return ID.test(id) && sessions.delete(keyOf(id))
    },
    get size() {
      return sessions.size
    },
  }
}

/**
 * Whether `given` is the session's CSRF token, compared in constant time.
 *
 * @example
 * csrfMatches(session, request.headers['x-csrf-token'])
 */
export function csrfMatches(session: AdminSession, given: string | undefined): boolean {
  if (given === undefined) return false
  const expected = Buffer.from(session.csrfToken)
  const actual = Buffer.from(given)
  return actual.length === expected.length && timingSafeEqual(actual, expected)
}
