/**
 * The filters of conditional elements (see `Condition` in ./types.ts), MongoDB-style as in the reference's
 * dynamic routes. A filter is validated and compiled once, when its route is saved, into closures; each
 * request then runs them in time linear in the filter's size, with no regular expressions and no code
 * built from strings, and the compiled form keeps no reference to the object it was made from.
 *
 * Choices the reference leaves open, made here for predictability:
 * - No implicit array membership: `{ tags: 'a' }` and `$in` compare the whole value, so `'a'` does not
 *   match `['a', 'b']` (read elements by index instead: `messages.0.role`).
 * - A missing value equals nothing, not even `null` (test it with `$exists`), and `$ne` / `$nin` are the
 *   exact negations of `$eq` / `$in`, so they match a missing value, as in MongoDB.
 * - `$gt $gte $lt $lte` compare numbers with numbers and strings with strings (by UTF-16 code units);
 *   anything else, a missing value included, is false. Header values are strings: no coercion to numbers.
 */
import { isRecord } from '../json.js'

/** What a condition can read about a request. */
export interface ConditionInput {
  /** The `cf-aig-metadata` values. */
  readonly metadata: Readonly<Record<string, unknown>>
  /** The request's JSON body; `undefined` when it has none. */
  readonly body: unknown
  /** Request headers by lower-case name. */
  readonly headers: Readonly<Record<string, string | undefined>>
  /** The host's identity of the caller (`id`, `tenant`, ...), when it has one. */
  readonly principal: Readonly<Record<string, unknown>> | undefined
}

export interface CompiledCondition {
  /** Whether the request matches; a missing value or one of another type is a non-match, never an error. */
  matches(input: ConditionInput): boolean
}

/** Reads the value at a path of a request; `undefined` when there is none. */
export type PathReader = (input: ConditionInput) => unknown

/**
 * Bounds that keep a condition's cost small whatever is saved. Strings count in UTF-8 bytes; value items
 * are every scalar, list and object of the operands, across the whole condition.
 */
const LIMITS = {
  depth: 8,
  nodes: 200,
  pathLength: 256,
  pathSegments: 16,
  list: 100,
  stringBytes: 4096,
  totalStringBytes: 65_536,
  valueItems: 2000,
} as const

/** A key shown in a message is cut to this many characters: keys come from the caller, of any length. */
const SHOWN_KEY = 64

type Test = (input: ConditionInput) => boolean
type Match = (value: unknown) => boolean
type Where = readonly (string | number)[]

const COMPARISONS = new Set(['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$exists'])
const LOGICAL = new Set(['$and', '$or', '$not'])

/**
 * Validates a condition, when its route is saved, and compiles it. Throws an `Error` whose message is `at`
 * followed by what is wrong and where in the condition, as a JSON pointer (e.g.
 * `element 'c1': $in needs a list (at /metadata.plan/$in)`).
 *
 * @example
 * const premium = compileCondition({ 'metadata.plan': { $in: ['pro', 'team'] } }, "element 'c1': ")
 * premium.matches({ metadata: { plan: 'pro' }, body: {}, headers: {}, principal: undefined }) // true
 */
export function compileCondition(condition: unknown, at: string): CompiledCondition {
  const test = new Compiler(at).filter(condition, [], 1)
  return { matches: (input) => test(input) }
}

/**
 * Compiles one path as conditions read it, for elements that key on a request value (a sticky percentage
 * split, a rate limit's counter), so that a bad path is refused when the route is saved. Throws as
 * `compileCondition` does.
 *
 * @example
 * compilePath('principal.id', "element 'r1': ")({ ...input, principal: { id: 'u1' } }) // 'u1'
 */
export function compilePath(path: string, at: string): PathReader {
  return new Compiler(at).path(path, [])
}

/**
 * The value at a path of a request, read once without compiling; `undefined` when there is none, or when
 * the path is one `compilePath` refuses. Never throws.
 *
 * @example
 * readPath({ ...input, metadata: { user_id: 'u1' } }, 'metadata.user_id') // 'u1'
 */
export function readPath(input: ConditionInput, path: string): unknown {
  const parsed = parsePath(path)
  return typeof parsed === 'string' ? undefined : parsed(input)
}

class Compiler {
  private nodes = 0
  private items = 0
  private bytes = 0

  constructor(private readonly at: string) {}

  /** All keys of a filter must hold; `{}` holds for every request. */
  filter(filter: unknown, where: Where, depth: number): Test {
    if (!isRecord(filter)) {
      this.fail(where, where.length === 0 ? 'a condition must be an object' : 'a filter must be an object')
    }
    if (depth > LIMITS.depth) this.fail(where, `filters nested deeper than ${LIMITS.depth} levels`)
    const tests: Test[] = []
    for (const key of Object.keys(filter)) {
      const here = [...where, key]
      this.node(here)
      tests.push(
        key.startsWith('$')
          ? this.logical(key, filter[key], here, depth)
          : this.field(key, filter[key], here),
      )
    }
    return every(tests)
  }

  path(path: string, where: Where): PathReader {
    const parsed = parsePath(path)
    if (typeof parsed === 'string') this.fail(where, parsed)
    return parsed
  }

  private logical(operator: string, operand: unknown, where: Where, depth: number): Test {
    if (operator === '$not') {
      const test = this.filter(operand, where, depth + 1)
      return (input) => !test(input)
    }
    if (operator === '$and' || operator === '$or') {
      if (!Array.isArray(operand) || operand.length === 0) {
        this.fail(where, `${operator} needs a non-empty list of filters`)
      }
      const tests: Test[] = []
      for (let i = 0; i < operand.length; i++) {
        // Each listed filter counts, so that a long list of empty filters stays within the bound too.
        this.node([...where, i])
        tests.push(this.filter(operand[i], [...where, i], depth + 1))
      }
      return operator === '$and' ? every(tests) : some(tests)
    }
    if (COMPARISONS.has(operator)) {
      this.fail(where, `${operator} needs a path: { "<path>": { "${operator}": ... } }`)
    }
    this.fail(where, `unknown operator ${show(operator)}`)
  }

  /** A path mapped to a value (equality) or to operators, which must all hold. */
  private field(path: string, operand: unknown, where: Where): Test {
    const read = this.path(path, where)
    const keys = isRecord(operand) ? Object.keys(operand) : []
    const operators = keys.filter((key) => key.startsWith('$'))
    if (operators.length === 0) {
      const match = this.value(operand, where, 1)
      return (input) => match(read(input))
    }
    if (operators.length !== keys.length) {
      this.fail(where, `operators and fields mixed in one object; write nested fields as a path ('a.b')`)
    }
    const record = operand as Record<string, unknown>
    const matches: Match[] = []
    for (const operator of operators) {
      const here = [...where, operator]
      this.node(here)
      matches.push(this.operator(operator, record[operator], here))
    }
    const match = matches.length === 1 ? matches[0]! : (value: unknown) => matches.every((m) => m(value))
    return (input) => match(read(input))
  }

  private operator(operator: string, operand: unknown, where: Where): Match {
    switch (operator) {
      case '$eq':
        return this.value(operand, where, 1)
      case '$ne': {
        const match = this.value(operand, where, 1)
        return (value) => !match(value)
      }
      case '$gt':
      case '$gte':
      case '$lt':
      case '$lte':
        return this.comparison(operator, operand, where)
      case '$in':
        return this.list(operator, operand, where)
      case '$nin': {
        const match = this.list(operator, operand, where)
        return (value) => !match(value)
      }
      case '$exists': {
        if (typeof operand !== 'boolean') this.fail(where, '$exists needs true or false')
        return (value) => (value !== undefined) === operand
      }
    }
    if (LOGICAL.has(operator)) {
      this.fail(where, `${operator} combines filters: put it beside paths, not under one`)
    }
    this.fail(where, `unknown operator ${show(operator)}`)
  }

  private comparison(operator: '$gt' | '$gte' | '$lt' | '$lte', operand: unknown, where: Where): Match {
    if (typeof operand === 'string') this.string(operand, where)
    else if (typeof operand === 'number' && Number.isFinite(operand)) this.item(where)
    else this.fail(where, `${operator} needs a number or a string`)
    const bound = operand as number | string
    // One closure per operand type, so that only values of that type reach the comparison.
    const same = typeof bound === 'number' ? isNumber : isString
    switch (operator) {
      case '$gt':
        return (value) => same(value) && value > bound
      case '$gte':
        return (value) => same(value) && value >= bound
      case '$lt':
        return (value) => same(value) && value < bound
      case '$lte':
        return (value) => same(value) && value <= bound
    }
  }

  private list(operator: string, operand: unknown, where: Where): Match {
    if (!Array.isArray(operand)) this.fail(where, `${operator} needs a list`)
    if (operand.length > LIMITS.list) this.fail(where, `${operator} has more than ${LIMITS.list} values`)
    // Scalars are looked up in a set (SameValueZero is `===` for JSON scalars); lists and objects are
    // compared one by one.
    const scalars = new Set<unknown>()
    const structured: Match[] = []
    for (let i = 0; i < operand.length; i++) {
      const item: unknown = operand[i]
      const match = this.value(item, [...where, i], 1)
      if (typeof item === 'object' && item !== null) structured.push(match)
      else scalars.add(item)
    }
    if (structured.length === 0) return (value) => scalars.has(value)
    return (value) => scalars.has(value) || structured.some((match) => match(value))
  }

  /**
   * Validates a JSON value to compare with and compiles its equality test: strict for scalars, structural
   * for lists and objects (same length, same own keys in any order), bounded by the value's own size.
   */
  private value(value: unknown, where: Where, depth: number): Match {
    switch (typeof value) {
      case 'string':
        this.string(value, where)
        return (actual) => actual === value
      case 'number':
        if (!Number.isFinite(value)) this.fail(where, 'numbers must be finite')
        this.item(where)
        return (actual) => actual === value
      case 'boolean':
        this.item(where)
        return (actual) => actual === value
      case 'object': {
        this.item(where)
        if (value === null) return (actual) => actual === null
        if (depth > LIMITS.depth) this.fail(where, `value nested deeper than ${LIMITS.depth} levels`)
        if (Array.isArray(value)) {
          const items = value.map((item: unknown, i) => this.value(item, [...where, i], depth + 1))
          return (actual) =>
            Array.isArray(actual) && actual.length === items.length && items.every((m, i) => m(actual[i]))
        }
        if (isRecord(value)) {
          const entries: [string, Match][] = []
          for (const key of Object.keys(value)) {
            // An operator below the top of an operand is almost surely a misplaced filter, not data.
            if (key.startsWith('$')) this.fail([...where, key], `operator ${show(key)} inside a value`)
            entries.push([key, this.value(value[key], [...where, key], depth + 1)])
          }
          return (actual) =>
            isRecord(actual) &&
            Object.keys(actual).length === entries.length &&
            entries.every(([key, match]) => Object.hasOwn(actual, key) && match(actual[key]))
        }
        break
      }
    }
    this.fail(where, 'not a JSON value')
  }

  private string(value: string, where: Where): void {
    this.item(where)
    // A UTF-8 encoding is never shorter than the UTF-16 length: long strings are refused before encoding.
    const bytes = value.length > LIMITS.stringBytes ? value.length : Buffer.byteLength(value, 'utf8')
    if (bytes > LIMITS.stringBytes) this.fail(where, `string longer than ${LIMITS.stringBytes} bytes`)
    this.bytes += bytes
    if (this.bytes > LIMITS.totalStringBytes) {
      this.fail(where, `strings longer than ${LIMITS.totalStringBytes} bytes in total`)
    }
  }

  private item(where: Where): void {
    if (++this.items > LIMITS.valueItems) {
      this.fail(where, `values with more than ${LIMITS.valueItems} items in total`)
    }
  }

  private node(where: Where): void {
    if (++this.nodes > LIMITS.nodes) this.fail(where, `more than ${LIMITS.nodes} paths and operators`)
  }

  private fail(where: Where, what: string): never {
    const pointer = where.map((key) => `/${show(String(key)).replaceAll('~', '~0').replaceAll('/', '~1')}`)
    throw new Error(`${this.at}${what}${where.length > 0 ? ` (at ${pointer.join('')})` : ''}`)
  }
}

/** A path's reader, or what is wrong with the path. */
function parsePath(path: string): PathReader | string {
  if (path.length > LIMITS.pathLength) return `path longer than ${LIMITS.pathLength} characters`
  // The rest of a header path is the whole header name: header names may hold dots.
  if (path.startsWith('headers.')) {
    const name = path.slice('headers.'.length).toLowerCase()
    if (name === '') return "path 'headers.' names no header"
    return (input) => (Object.hasOwn(input.headers, name) ? input.headers[name] : undefined)
  }
  const segments = path.split('.')
  if (segments.length > LIMITS.pathSegments) return `path with more than ${LIMITS.pathSegments} segments`
  if (segments.includes('')) return `path '${show(path)}' has an empty segment`
  let root: PathReader = readBody
  const first = segments[0]!
  if (first === 'metadata' || first === 'principal' || first === 'body' || first === 'headers') {
    // A bare prefix would read the body field of that name (`metadata` is one in OpenAI's requests), which
    // is rarely what was meant: ask for the explicit form.
    if (segments.length === 1)
      return `path '${first}' names no field: write '${first}.<name>', or 'body.${first}'`
    segments.shift()
    if (first === 'metadata') root = readMetadata
    else if (first === 'principal') root = readPrincipal
  }
  const steps = segments.map((key) => ({ key, index: arrayIndex(key) }))
  return (input) => {
    let value = root(input)
    for (const { key, index } of steps) {
      if (value === undefined) return undefined
      value = child(value, key, index)
    }
    return value
  }
}

const readBody: PathReader = (input) => input.body
const readMetadata: PathReader = (input) => input.metadata
const readPrincipal: PathReader = (input) => input.principal

/**
 * One step down a path. Only own properties count, so that `__proto__`, `constructor` or `toString` read
 * nothing; lists are read only by index, so that `length` reads nothing either.
 */
function child(value: unknown, key: string, index: number | undefined): unknown {
  if (Array.isArray(value)) return index !== undefined && index < value.length ? value[index] : undefined
  if (typeof value === 'object' && value !== null && Object.hasOwn(value, key)) {
    return (value as Record<string, unknown>)[key]
  }
  return undefined
}

/** A segment as a list index: decimal digits without a leading zero (`0`, `12`, not `01` or `-1`). */
function arrayIndex(segment: string): number | undefined {
  if (segment.length > 9 || (segment.length > 1 && segment[0] === '0')) return undefined
  for (let i = 0; i < segment.length; i++) {
    const code = segment.charCodeAt(i)
    if (code < 0x30 || code > 0x39) return undefined
  }
  return Number(segment)
}

function isNumber(value: unknown): value is number {
  return typeof value === 'number'
}

function isString(value: unknown): value is string {
  return typeof value === 'string'
}

function every(tests: Test[]): Test {
  if (tests.length === 0) return () => true
  if (tests.length === 1) return tests[0]!
  return (input) => {
    for (const test of tests) if (!test(input)) return false
    return true
  }
}

function some(tests: Test[]): Test {
  if (tests.length === 1) return tests[0]!
  return (input) => {
    for (const test of tests) if (test(input)) return true
    return false
  }
}

function show(key: string): string {
  return key.length > SHOWN_KEY ? `${key.slice(0, SHOWN_KEY)}...` : key
}
