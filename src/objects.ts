/**
 * `{ ...base, ...fields }` as a new object, for code that runs per request. Node 20's V8 builds a literal
 * that spreads an object and then adds properties (`{ ...base, key }`) on a slow path: about a microsecond
 * per object on the machine the bench runs on, where `Object.assign` takes a tenth of that on every
 * version (Node 24 is fast either way).
 *
 * @example
 * withFields(target, { path: '/v1/chat/completions' })
 */
export function withFields<T extends object, U extends object>(base: T, fields: U): Omit<T, keyof U> & U {
  return Object.assign({}, base, fields)
}
