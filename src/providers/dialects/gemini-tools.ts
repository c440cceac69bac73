import { GatewayError } from '../../errors.js'
import { isRecord } from '../../json.js'

/** Tool declarations, tool choice and JSON schemas for Gemini, shared by tools and `response_format`. */

export interface FunctionDeclaration {
  name: string
  description?: string
  parameters?: unknown
}

/**
 * JSON-schema keywords Gemini's Schema object rejects as unknown fields and that only annotate or loosen a
 * schema: `$schema`, `$id`, `$comment` (annotations) and `additionalProperties` (Gemini's output keeps to the
 * declared properties). Keywords that change what is valid (`$ref`, `oneOf`, `allOf`, `const`,
 * `not`, ...) are kept, so Gemini's own error names them instead of the schema quietly loosening.
 */
export const STRIPPED_SCHEMA_KEYS: ReadonlySet<string> = new Set([
  '$schema',
  '$id',
  '$comment',
  'additionalProperties',
])

/** Keywords whose value is a map of subschemas, a list of them, or one (or a list) of them. */
const SCHEMA_MAPS = new Set(['properties', '$defs', 'definitions'])
const SCHEMA_LISTS = new Set(['anyOf', 'oneOf', 'allOf', 'prefixItems'])
const SCHEMA_VALUES = new Set(['items', 'not'])

export function unsupported(detail: string): GatewayError {
  return new GatewayError('UNSUPPORTED_PARAMETER', detail)
}

export function invalid(detail: string): GatewayError {
  return new GatewayError('INVALID_REQUEST_BODY', detail)
}

function schemaType(type: unknown): Record<string, unknown> {
  // Gemini takes one type and a `nullable` flag where JSON schema lists `[T, 'null']`.
  if (Array.isArray(type) && type.length === 2 && type.includes('null')) {
    const types: unknown[] = type
    return { type: types.find((t) => t !== 'null'), nullable: true }
  }
  return { type }
}

function schemaEntry(key: string, value: unknown): Record<string, unknown> {
  if (key === 'type') return schemaType(value)
  if (SCHEMA_MAPS.has(key) && isRecord(value)) {
    return {
      [key]: Object.fromEntries(Object.entries(value).map(([name, sub]) => [name, toGeminiSchema(sub)])),
    }
  }
  if (SCHEMA_LISTS.has(key) && Array.isArray(value)) return { [key]: value.map(toGeminiSchema) }
  if (SCHEMA_VALUES.has(key)) {
    return { [key]: Array.isArray(value) ? value.map(toGeminiSchema) : toGeminiSchema(value) }
  }
  return { [key]: value }
}

/**
 * A JSON schema as Gemini's Schema object: `STRIPPED_SCHEMA_KEYS` removed at every level (property names
 * are names, not keywords, so a property called `additionalProperties` stays), `type: [T, 'null']` as
 * `type: T, nullable: true`.
 * @example toGeminiSchema({ type: 'object', additionalProperties: false, properties: { a: { type: ['string', 'null'] } } })
 * // { type: 'object', properties: { a: { type: 'string', nullable: true } } }
 */
export function toGeminiSchema(schema: unknown): unknown {
  if (!isRecord(schema)) return schema
  const entries = Object.entries(schema).filter(([key]) => !STRIPPED_SCHEMA_KEYS.has(key))
  return Object.assign({}, ...entries.map(([key, value]) => schemaEntry(key, value)))
}

/** Gemini rejects an OBJECT schema with no properties, which is how a function without arguments is declared. */
function isEmptyObjectSchema(schema: unknown): boolean {
  if (!isRecord(schema) || schema.type !== 'object') return false
  return !isRecord(schema.properties) || Object.keys(schema.properties).length === 0
}

function functionDeclaration(tool: unknown, at: string): FunctionDeclaration {
  if (!isRecord(tool)) throw invalid(`${at} must be an object`)
  if (tool.type !== 'function') {
    throw unsupported(`${at}: '${String(tool.type)}' tools are not translated for Gemini, only 'function'`)
  }
  const fn = tool.function
  if (!isRecord(fn) || typeof fn.name !== 'string') throw invalid(`${at}.function.name must be a string`)
  const description = fn.description ?? undefined
  if (description !== undefined && typeof description !== 'string') {
    throw invalid(`${at}.function.description must be a string`)
  }
  if ((fn.parameters ?? undefined) !== undefined && !isRecord(fn.parameters)) {
    throw invalid(`${at}.function.parameters must be an object`)
  }
  if (fn.strict === true) {
    throw unsupported(`${at}.function.strict: Gemini has no strict mode for function declarations`)
  }
  const parameters = toGeminiSchema(fn.parameters ?? undefined)
  return {
    name: fn.name,
    ...(description !== undefined ? { description } : {}),
    ...(parameters !== undefined && !isEmptyObjectSchema(parameters) ? { parameters } : {}),
  }
}

export function toTools(tools: unknown): { declarations: FunctionDeclaration[] } {
  if (tools === undefined || tools === null) return { declarations: [] }
  if (!Array.isArray(tools)) throw invalid('tools must be an array')
  return { declarations: tools.map((tool: unknown, i) => functionDeclaration(tool, `tools[${i}]`)) }
}

/**
 * OpenAI `tool_choice` as Gemini `toolConfig`.
 * @example toToolConfig('required', []) // { functionCallingConfig: { mode: 'ANY' } }
 */
export function toToolConfig(choice: unknown, declarations: FunctionDeclaration[]): unknown {
  if (choice === undefined || choice === null) return undefined
  const modes: Record<string, string> = { auto: 'AUTO', none: 'NONE', required: 'ANY' }
  if (typeof choice === 'string' && modes[choice]) return { functionCallingConfig: { mode: modes[choice] } }
  if (!isRecord(choice) || choice.type !== 'function' || !isRecord(choice.function)) {
    throw invalid("tool_choice must be 'auto', 'none', 'required' or {type: 'function', function: {name}}")
  }
  const name = choice.function.name
  if (typeof name !== 'string' || !declarations.some((declaration) => declaration.name === name)) {
    throw invalid(`tool_choice names function '${String(name)}', which is not among tools`)
  }
  return { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: [name] } }
}
