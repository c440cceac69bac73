import { GatewayError } from '../errors.js'
import { isRecord } from '../json.js'
import { compileCondition, compilePath } from './condition.js'
import type { RouteDefinition, RouteElement } from './types.js'

/** Route names: what follows `dynamic/` in a model name. */
export const ROUTE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
/** More elements than any route drawn by hand needs; each is walked per request. */
export const MAX_ELEMENTS = 64
/** The reference's limit on a percentage element's named branches (besides `else`). */
export const MAX_BRANCHES = 5
const MAX_INTERVAL_SECONDS = 366 * 24 * 3600
const MAX_RETRIES = 4
const PERCENT = /^(\d{1,3}(?:\.\d{1,2})?)%$/

const OUTPUTS: Readonly<Record<RouteElement['type'], { required: string[]; optional: string[] }>> = {
  start: { required: ['next'], optional: [] },
  conditional: { required: ['true', 'false'], optional: [] },
  percentage: { required: [], optional: ['else'] },
  rate: { required: ['success'], optional: ['fallback'] },
  model: { required: [], optional: ['success', 'fallback'] },
  end: { required: [], optional: [] },
}

/** Element types as the reference's documentation and SDK name them. */
const TYPE_ALIASES: Readonly<Record<string, RouteElement['type']>> = { rate_limit: 'rate' }

/**
 * Checks a route as saved, and gives it back in the stored shape (aliases resolved, defaults filled). Every
 * error names the element and what is wrong: no start or several, an output that leads nowhere, a cycle,
 * percentages over 100, an unknown provider, a condition that does not compile.
 *
 * @example
 * parseRouteDefinition({ name: 'support', elements: [...] }, (id) => registry.has(id))
 */
export function parseRouteDefinition(raw: unknown, knownProvider: (id: string) => boolean): RouteDefinition {
  if (!isRecord(raw)) invalid('a route must be a JSON object with a name and elements')
  const { name, elements } = raw
  if (typeof name !== 'string' || !ROUTE_NAME.test(name)) {
    invalid("'name' must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
  }
  if (!Array.isArray(elements) || elements.length === 0) invalid("'elements' must be a non-empty list")
  if (elements.length > MAX_ELEMENTS) invalid(`a route has at most ${MAX_ELEMENTS} elements`)
  const parsed: RouteElement[] = []
  const ids = new Set<string>()
  for (const [index, element] of elements.entries()) {
    const checked = parseElement(element, index, knownProvider)
    if (ids.has(checked.id)) invalid(`element '${checked.id}': another element has the same id`)
    ids.add(checked.id)
    parsed.push(checked)
  }
  const starts = parsed.filter((element) => element.type === 'start')
  if (starts.length !== 1) invalid(`a route needs exactly one start element, found ${starts.length}`)
  for (const element of parsed) {
    for (const [output, { elementId }] of Object.entries(element.outputs)) {
      if (!ids.has(elementId)) {
        invalid(`element '${element.id}': output '${output}' leads to '${elementId}', which does not exist`)
      }
      if (elementId === starts[0]!.id)
        invalid(`element '${element.id}': output '${output}' leads back to start`)
    }
  }
  findCycle(parsed)
  return { name, elements: parsed }
}

function parseElement(raw: unknown, index: number, knownProvider: (id: string) => boolean): RouteElement {
  if (!isRecord(raw)) invalid(`element ${index} must be an object`)
  const { id, outputs } = raw
  if (typeof id !== 'string' || id === '' || id.length > 64) {
    invalid(`element ${index}: 'id' must be a string of 1 to 64 characters`)
  }
  const at = `element '${id}'`
  const type = typeof raw.type === 'string' ? (TYPE_ALIASES[raw.type] ?? raw.type) : undefined
  if (type === undefined || !(type in OUTPUTS)) {
    invalid(`${at}: 'type' must be one of ${Object.keys(OUTPUTS).join(', ')}`)
  }
  const kind = type as RouteElement['type']
  const properties = raw.properties === undefined ? {} : raw.properties
  if (!isRecord(properties)) invalid(`${at}: 'properties' must be an object`)
  const parsedOutputs = parseOutputs(outputs, at, kind)
  switch (kind) {
    case 'start':
    case 'end':
      return { id, type: kind, outputs: parsedOutputs }
    case 'conditional': {
      // The reference's SDK types name it `conditions`.
      const condition = properties.condition ?? properties.conditions
      if (!isRecord(condition)) invalid(`${at}: 'properties.condition' must be a filter object`)
      rethrown(() => compileCondition(condition, `${at}: `))
      return { id, type: kind, properties: { condition }, outputs: parsedOutputs }
    }
    case 'percentage': {
      checkBranches(parsedOutputs, at)
      const { key } = properties
      checkKey(key, at)
      return {
        id,
        type: kind,
        ...(key === undefined ? {} : { properties: { key } }),
        outputs: parsedOutputs,
      }
    }
    case 'rate':
      return { id, type: kind, properties: parseRate(properties, at), outputs: parsedOutputs }
    case 'model':
      return { id, type: kind, properties: parseModel(properties, at, knownProvider), outputs: parsedOutputs }
  }
}

function parseOutputs(
  raw: unknown,
  at: string,
  type: RouteElement['type'],
): Record<string, { elementId: string }> {
  const outputs = raw === undefined ? {} : raw
  if (!isRecord(outputs)) invalid(`${at}: 'outputs' must map output names to { elementId }`)
  const { required, optional } = OUTPUTS[type]
  const parsed: Record<string, { elementId: string }> = {}
  for (const [name, output] of Object.entries(outputs)) {
    const allowed =
      required.includes(name) || optional.includes(name) || (type === 'percentage' && PERCENT.test(name))
    if (!allowed) invalid(`${at}: a ${type} element has no output '${name}'`)
    const elementId = isRecord(output) ? output.elementId : undefined
    if (typeof elementId !== 'string') invalid(`${at}: output '${name}' must be { "elementId": "..." }`)
    parsed[name] = { elementId }
  }
  for (const name of required) if (parsed[name] === undefined) invalid(`${at}: output '${name}' is required`)
  return parsed
}

function checkBranches(outputs: Record<string, unknown>, at: string): void {
  const branches = Object.keys(outputs).filter((name) => name !== 'else')
  if (branches.length === 0) invalid(`${at}: a percentage element needs at least one branch such as '50%'`)
  if (branches.length > MAX_BRANCHES)
    invalid(`${at}: at most ${MAX_BRANCHES} percentage branches besides 'else'`)
  let total = 0
  for (const name of branches) {
    const share = Number(PERCENT.exec(name)![1])
    if (share <= 0 || share > 100) invalid(`${at}: branch '${name}' must be more than 0% and at most 100%`)
    total += share
  }
  // Hundredths, so that 33.33% three times is 99.99% and not a rounding error.
  total = Math.round(total * 100) / 100
  if (total > 100) invalid(`${at}: the branches add up to ${total}%, over 100%`)
  if (total < 100 && outputs.else === undefined) {
    invalid(`${at}: the branches add up to ${total}%; add an 'else' output for the rest`)
  }
}

function parseRate(properties: Record<string, unknown>, at: string) {
  const { limitType, key, limit, technique } = properties
  // The documentation calls it `interval`, the SDK `window`.
  const interval = properties.interval ?? properties.window
  if (limitType !== 'count' && limitType !== 'cost') invalid(`${at}: 'limitType' must be 'count' or 'cost'`)
  if (typeof limit !== 'number' || !(limit > 0) || !Number.isFinite(limit)) {
    invalid(`${at}: 'limit' must be a positive number (requests, or USD for cost)`)
  }
  if (limitType === 'count' && !Number.isInteger(limit))
    invalid(`${at}: a count 'limit' must be a whole number`)
  if (
    typeof interval !== 'number' ||
    !Number.isInteger(interval) ||
    interval < 1 ||
    interval > MAX_INTERVAL_SECONDS
  ) {
    invalid(`${at}: 'interval' must be a whole number of seconds, 1 to ${MAX_INTERVAL_SECONDS}`)
  }
  if (technique !== undefined && technique !== 'fixed' && technique !== 'sliding') {
    invalid(`${at}: 'technique' must be 'fixed' or 'sliding'`)
  }
  checkKey(key, at)
  return {
    limitType,
    ...(key === undefined ? {} : { key }),
    limit,
    interval,
    technique: technique ?? 'sliding',
  } as const
}

function parseModel(properties: Record<string, unknown>, at: string, knownProvider: (id: string) => boolean) {
  const { provider, model, timeout, retries } = properties
  if (typeof provider !== 'string' || !knownProvider(provider)) {
    invalid(`${at}: 'provider' must be a configured provider, got ${JSON.stringify(provider)}`)
  }
  if (typeof model !== 'string' || model === '' || model.length > 256)
    invalid(`${at}: 'model' must be a model name`)
  if (timeout !== undefined && (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1)) {
    invalid(`${at}: 'timeout' must be a whole number of milliseconds`)
  }
  if (
    retries !== undefined &&
    (typeof retries !== 'number' || !Number.isInteger(retries) || retries < 0 || retries > MAX_RETRIES)
  ) {
    invalid(`${at}: 'retries' must be a whole number from 0 to ${MAX_RETRIES}`)
  }
  return {
    provider,
    model,
    ...(timeout === undefined ? {} : { timeout }),
    ...(retries === undefined ? {} : { retries }),
  }
}

/** Routes are walked from start to an end: an output that leads back to an element on its own path loops. */
function findCycle(elements: readonly RouteElement[]): void {
  const byId = new Map(elements.map((element) => [element.id, element]))
  const state = new Map<string, 'visiting' | 'done'>()
  const visit = (element: RouteElement, path: string[]): void => {
    state.set(element.id, 'visiting')
    for (const { elementId } of Object.values(element.outputs)) {
      const seen = state.get(elementId)
      if (seen === 'visiting') invalid(`the route loops: ${[...path, element.id, elementId].join(' → ')}`)
      if (seen === undefined) visit(byId.get(elementId)!, [...path, element.id])
    }
    state.set(element.id, 'done')
  }
  for (const element of elements) if (!state.has(element.id)) visit(element, [])
}

/** A percentage or rate element's key: a path a condition could read, checked as conditions are. */
function checkKey(key: unknown, at: string): asserts key is string | undefined {
  if (key === undefined) return
  if (typeof key !== 'string')
    invalid(`${at}: 'key' must be a path such as 'metadata.user_id' or 'principal.id'`)
  rethrown(() => compilePath(key, `${at}: 'key': `))
}

/** Runs a condition check, its plain error made the route's. */
function rethrown(check: () => unknown): void {
  try {
    check()
  } catch (error) {
    invalid((error as Error).message)
  }
}

function invalid(message: string): never {
  throw new GatewayError('INVALID_ROUTE', message)
}
