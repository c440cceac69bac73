/** Narrows an unknown value to a plain object (not an array, not null). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** `JSON.parse` that answers `undefined` instead of throwing on text that is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

const parsedBodies = new WeakMap<Buffer, unknown>()

/**
 * A request body as JSON, parsed once however many steps ask (routing, cache key, limits, logs), or
 * `undefined` when it is not a JSON object or array. Only bodies starting with `{` or `[` are tried.
 */
export function jsonBody(body: Buffer | undefined): unknown {
  if (body === undefined || body.length === 0 || (body[0] !== 0x7b && body[0] !== 0x5b)) return undefined
  if (parsedBodies.has(body)) return parsedBodies.get(body)
  const json = parseJson(body.toString('utf8'))
  parsedBodies.set(body, json)
  return json
}
