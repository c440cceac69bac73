/**
 * Policy conditions: CEL expressions, parsed and type-checked once, when policies are compiled.
 *
 * CEL has no loops or recursion, but a few of its features still let one short expression do unbounded
 * work per request, so they are refused when the condition is compiled:
 * - `matches()`: the CEL library hands the pattern to JavaScript's backtracking `RegExp`, and the text it
 *   is matched against (metadata) comes from the caller, so `^(a+)+$` would stall the event loop;
 * - `cel.bind()`: nested bindings double a string or list at each level;
 * - a comprehension (`all`, `exists`, `exists_one`, `map`, `filter`) inside another, which multiplies
 *   the iteration counts.
 * With those gone, and the parser's own limits on size and nesting, the work is at most the expression's
 * size times the longest list it iterates.
 */
import { type ASTNode, Environment, type ParseResult } from '@marcbachmann/cel-js'
import { isRecord } from '../json.js'
import type { PolicyRequest } from './types.js'

/** The default bound on a condition's source, in UTF-8 bytes. */
export const MAX_CONDITION_BYTES = 4096

const LIMITS = {
  maxAstNodes: 1000,
  maxDepth: 32,
  maxListElements: 100,
  maxMapEntries: 100,
  maxCallArguments: 8,
} as const

const REFUSED_CALLS: Readonly<Record<string, string>> = {
  matches: 'matches() is not available (regular expressions can backtrack without bound)',
  bind: 'cel.bind() is not available',
}
const COMPREHENSIONS = new Set(['all', 'exists', 'exists_one', 'map', 'filter'])
/** How deep values from the principal are copied into a condition's input. */
const MAX_VALUE_DEPTH = 8

/**
 * One environment for every condition: the four variables are maps, so a condition naming anything else
 * fails its type check at compile time.
 */
const environment = new Environment({ limits: LIMITS })
  .registerVariable('principal', 'map')
  .registerVariable('metadata', 'map')
  .registerVariable('request', 'map')
  .registerVariable('time', 'map')

/** CEL values for one request, built once and shared by every condition it meets. */
export type ConditionContext = Readonly<Record<string, unknown>>

export interface CompiledCondition {
  readonly source: string
  /** `true` or `false`; throws when the expression fails (a missing key, a wrong type, a division by 0). */
  evaluate(context: ConditionContext): boolean
}

/**
 * Parses and checks a condition; throws an `Error` saying what is wrong (the caller adds which policy).
 *
 * @example
 * compileCondition('principal.plan == "pro" && time.hour >= 9').evaluate(conditionContext(input))
 */
export function compileCondition(source: string, maxBytes = MAX_CONDITION_BYTES): CompiledCondition {
  const bytes = Buffer.byteLength(source)
  if (bytes > maxBytes) throw new Error(`${bytes} bytes, more than the ${maxBytes} allowed`)
  if (source.trim() === '') throw new Error('empty expression')
  let program: ParseResult
  try {
    program = environment.parse(source)
  } catch (error) {
    throw new Error(firstLine(error))
  }
  refuseUnbounded(program.ast, 0)
  const checked = program.check()
  if (!checked.valid) throw new Error(firstLine(checked.error))
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    throw new Error(`must be a boolean expression, this one is of type ${checked.type}`)
  }
  return {
    source,
    evaluate(context) {
      const result: unknown = program(context)
      if (typeof result !== 'boolean')
        throw new TypeError(`the condition gave ${describe(result)}, not a bool`)
      return result
    },
  }
}

/** Walks the parsed expression and throws on a call that could make its cost unbounded. */
function refuseUnbounded(node: ASTNode, comprehensions: number): void {
  const args = node.args as unknown
  if (node.op === 'call' || node.op === 'rcall') {
    const name = (args as unknown[])[0] as string
    const refused = REFUSED_CALLS[name]
    if (refused !== undefined) throw new Error(refused)
    if (node.op === 'rcall' && COMPREHENSIONS.has(name)) {
      if (comprehensions > 0) throw new Error(`${name}() inside another comprehension is not allowed`)
      const [, target, macroArgs] = args as [string, ASTNode, ASTNode[]]
      refuseUnbounded(target, comprehensions)
      for (const arg of macroArgs) refuseUnbounded(arg, comprehensions + 1)
      return
    }
  }
  for (const child of childNodes(args)) refuseUnbounded(child, comprehensions)
}

/** The AST nodes among a node's operands, however they are nested (lists, map entries, call arguments). */
function childNodes(args: unknown): ASTNode[] {
  if (isNode(args)) return [args]
  if (!Array.isArray(args)) return []
  return args.flatMap(childNodes)
}

function isNode(value: unknown): value is ASTNode {
  return isRecord(value) && typeof value.op === 'string' && 'args' in value
}

/**
 * The variables a condition sees: `principal` and `metadata` (maps; integers become CEL ints, anything
 * that is not plain data is left out), `request` (`provider`, `model` or null, `path`, `method`) and `time`
 * (`hour` 0-23 and `weekday` 0-6 from Sunday, as CEL's `getDayOfWeek`, both UTC).
 */
export function conditionContext(input: PolicyRequest): ConditionContext {
  const date = new Date(input.now)
  return {
    principal: plainMap(input.principal, 0),
    metadata: plainMap(input.metadata, 0),
    request: {
      provider: input.provider,
      model: input.model ?? null,
      path: input.path,
      method: input.method,
    },
    time: { hour: BigInt(date.getUTCHours()), weekday: BigInt(date.getUTCDay()) },
  }
}

function plainMap(
  value: Readonly<Record<string, unknown>> | undefined,
  depth: number,
): Record<string, unknown> {
  const map: Record<string, unknown> = {}
  if (value === undefined) return map
  for (const [key, entry] of Object.entries(value)) {
    const plain = plainValue(entry, depth + 1)
    if (plain !== undefined) map[key] = plain
  }
  return map
}

function plainValue(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'bigint':
      return value
    case 'number':
      if (!Number.isFinite(value)) return undefined
      // JSON has one number type; CEL's int arithmetic (`metadata.n + 1`) needs whole numbers as ints.
      return Number.isSafeInteger(value) ? BigInt(value) : value
    case 'object':
      if (value === null) return null
      if (depth >= MAX_VALUE_DEPTH) return undefined
      if (Array.isArray(value)) {
        return value.map((item) => plainValue(item, depth + 1)).filter((item) => item !== undefined)
      }
      return Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null
        ? plainMap(value as Record<string, unknown>, depth)
        : undefined
    default:
      return undefined
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (value instanceof Promise) return 'a promise'
  return typeof value === 'object' ? (Array.isArray(value) ? 'a list' : 'a map') : `a ${typeof value}`
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  return message.split('\n')[0]!.trim()
}
