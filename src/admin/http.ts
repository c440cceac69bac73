import { readRequestBody } from '../context.js'
import { GatewayError } from '../errors.js'
import { isRecord, parseJson } from '../json.js'
import type { GatewayRequest, GatewayResponse } from '../types.js'

/** One admin call after routing: the request and the raw (still percent-encoded) path parameters. */
export interface AdminCall {
  readonly request: GatewayRequest
  readonly params: readonly string[]
}

/** Largest admin request body, in bytes: a feedback patch, a provider key or a route is far smaller. */
export const MAX_ADMIN_BODY_BYTES = 1024 * 1024

/**
 * A JSON response with its length set. Admin answers carry logs and key hints, so no cache may keep them.
 *
 * @example
 * jsonResponse(200, { deleted: 3 })
 */
export function jsonResponse(status: number, value: unknown): GatewayResponse {
  const body = JSON.stringify(value)
  return {
    status,
    headers: {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      'cache-control': 'no-store',
    },
    body,
  }
}

/** `204 No Content`. */
export function noContent(): GatewayResponse {
  return { status: 204, headers: { 'cache-control': 'no-store' }, body: null }
}

/**
 * The query string as an object of single values, for the log parsers, which refuse unknown keys. A key
 * given twice is refused rather than silently reduced to one of its values.
 *
 * @example
 * queryObject('?limit=20&orderBy=cost') // { limit: '20', orderBy: 'cost' }
 */
export function queryObject(search: string): Record<string, string> {
  const entries = new Map<string, string>()
  for (const [key, value] of new URLSearchParams(search)) {
    if (entries.has(key)) throw new GatewayError('INVALID_QUERY', `${quote(key)} is given more than once`)
    entries.set(key, value)
  }
  // fromEntries defines own properties, so even a key named __proto__ stays a plain entry.
  return Object.fromEntries(entries)
}

/**
 * A path segment decoded, or `INVALID_QUERY` when its percent-encoding is broken.
 *
 * @example
 * pathParam('team%2Da') // 'team-a'
 */
export function pathParam(segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    throw new GatewayError('INVALID_QUERY', 'a path segment is not valid percent-encoding')
  }
}

/**
 * Reads the body (at most `MAX_ADMIN_BODY_BYTES`) as a JSON object. The message on failure never quotes
 * the body: it may hold a provider key, and `JSON.parse` errors repeat part of their input.
 *
 * @example
 * const { secret } = await readJsonObject(request)
 */
export async function readJsonObject(request: GatewayRequest): Promise<Record<string, unknown>> {
  const bytes = await readRequestBody(request, MAX_ADMIN_BODY_BYTES)
  const value = bytes === undefined ? undefined : parseJson(bytes.toString('utf8'))
  if (!isRecord(value)) throw new GatewayError('INVALID_REQUEST_BODY', 'expected a JSON object')
  return value
}

/**
 * The body as text, at most `limitBytes` (else `BODY_TOO_LARGE`); `''` without one.
 *
 * @example
 * const form = new URLSearchParams(await readBodyText(request, 8192))
 */
export async function readBodyText(request: GatewayRequest, limitBytes: number): Promise<string> {
  const bytes = await readRequestBody(request, limitBytes)
  return bytes === undefined ? '' : bytes.toString('utf8')
}

// Names from the query string are quoted back escaped and trimmed.
function quote(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text)
}
