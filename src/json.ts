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

/**
 * A body as JSON, or `undefined` when it is not a JSON object or array. Only bodies starting with `{` or `[`
 * (after white space) are tried, so that audio or form bodies are never handed to the parser.
 */
export function parseJsonBody(body: Buffer | undefined): unknown {
  if (body === undefined) return undefined
  let start = 0
  while (start < body.length && isJsonSpace(body[start]!)) start++
  const first = body[start]
  if (first !== 0x7b && first !== 0x5b) return undefined
  return parseJson(body.toString('utf8'))
}

function isJsonSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09
}
