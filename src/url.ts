/**
 * Splits a request target into its path and its query string (with the leading `?`, or `''`).
 *
 * @example
 * splitQuery('/v1/models?limit=2') // { path: '/v1/models', search: '?limit=2' }
 */
export function splitQuery(target: string): { path: string; search: string } {
  const query = target.indexOf('?')
  return query === -1
    ? { path: target, search: '' }
    : { path: target.slice(0, query), search: target.slice(query) }
}
