/**
 * Settings as the dashboard may show them: whatever the host's `settings()` returns, with every secret
 * replaced. Keys, tokens, passwords and connection strings never leave; what is left says how the gateway
 * is set up (limits, timeouts, providers and their base URLs, which stores are plugged in).
 */
import { redact } from '../logs/recorder.js'
import { REDACTED } from '../secrets.js'

// A key whose name says it holds a secret: everything under it is masked, whatever its shape.
const SECRET_KEY =
  /(?:key|token|secret|passw|passphrase|credential|cookie|signature|salt|private|auth(?:orization)?$|dsn|connection|conn(?:ection)?string)/i
// Connection strings of databases, caches and queues carry their password in the URL.
// Names the pattern above catches that hold no secret: the gateway's `callerKeys` policy is an enum.
const NOT_SECRET = new Set(['callerKeys'])
const CONNECTION_STRING = /^[a-z][a-z0-9+.-]*:\/\/[^/\s]*@/i
const NON_HTTP_URL = /^(?!https?:)[a-z][a-z0-9+.-]*:\/\//i
const MAX_DEPTH = 8
const MAX_ITEMS = 100

/**
 * A copy of `value` fit to show: secrets masked as `[REDACTED]`, functions as `[function name]`, objects
 * of a class (a store, a pool, a client) as `[ClassName]`, long arrays cut at 100 items and nesting at 8
 * levels. Cycles are cut too.
 *
 * @example
 * maskSettings({ providers: { openai: { apiKey: 'sk-…', baseURL: 'https://api.openai.com/v1' } } })
 * // { providers: { openai: { apiKey: '[REDACTED]', baseURL: 'https://api.openai.com/v1' } } }
 */
export function maskSettings(value: unknown): unknown {
  return mask(value, false, 0, new WeakSet())
}

function mask(value: unknown, secret: boolean, depth: number, seen: WeakSet<object>): unknown {
  if (value === null || value === undefined || typeof value === 'boolean') return value ?? null
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value)
  if (typeof value === 'bigint') return secret ? REDACTED : String(value)
  if (typeof value === 'string') return secret ? REDACTED : maskText(value)
  if (typeof value === 'symbol') return value.toString()
  if (typeof value === 'function') return value.name ? `[function ${value.name}]` : '[function]'
  if (value instanceof Date) return value.toISOString()
  if (value instanceof RegExp) return value.toString()
  // Bytes in settings are key material (a master key given as a Buffer).
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return REDACTED
  if (seen.has(value) || depth >= MAX_DEPTH) return '[…]'
  seen.add(value)
  try {
    if (Array.isArray(value)) return maskArray(value, secret, depth, seen)
    const prototype = Object.getPrototypeOf(value)
    if (prototype !== Object.prototype && prototype !== null) {
      return `[${(value.constructor as { name?: string } | undefined)?.name || 'object'}]`
    }
    return maskObject(value as Record<string, unknown>, secret, depth, seen)
  } finally {
    seen.delete(value)
  }
}

function maskArray(value: unknown[], secret: boolean, depth: number, seen: WeakSet<object>): unknown[] {
  const items = value.slice(0, MAX_ITEMS).map((item) => mask(item, secret, depth + 1, seen))
  if (value.length > MAX_ITEMS) items.push(`[… ${value.length - MAX_ITEMS} more]`)
  return items
}

function maskObject(
  value: Record<string, unknown>,
  secret: boolean,
  depth: number,
  seen: WeakSet<object>,
): unknown {
  const entries = Object.entries(value)
  // A store or client made by a factory: a plain object of methods. Its methods say nothing useful.
  if (entries.length > 0 && entries.every(([, entry]) => typeof entry === 'function')) return '[object]'
  const out: Record<string, unknown> = {}
  for (const [key, entry] of entries) {
    out[key] = mask(entry, secret || (SECRET_KEY.test(key) && !NOT_SECRET.has(key)), depth + 1, seen)
  }
  return out
}

function maskText(text: string): string {
  if (CONNECTION_STRING.test(text) || NON_HTTP_URL.test(text)) return REDACTED
  if (/^https?:\/\//i.test(text)) return maskUrl(text)
  return redact(text, undefined)
}

// An http(s) URL without credentials (those are masked whole above) keeps its origin and path; its query
// may carry a key (`?key=`), so it is masked.
function maskUrl(text: string): string {
  try {
    const url = new URL(text)
    return url.search === '' ? text : `${url.protocol}//${url.host}${url.pathname}?${REDACTED}`
  } catch {
    return REDACTED
  }
}
