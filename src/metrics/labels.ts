/** The label value of what a request did not have: no provider reached, no model named, no metadata entry. */
export const NONE = 'none'
/** Where values past a label's cap are counted. */
export const OTHER = 'other'

// A label value longer than this is not a name anyone reads on a dashboard.
const MAX_VALUE_LENGTH = 200

/**
 * The values one label may take, capped, each known by its index in `names` so that a request's series is
 * found by numbers rather than by a string built per request. The first `max` distinct values keep their
 * names and later ones are counted as `other`, so a stream of distinct values (model names a client made
 * up, a metadata entry holding a user id) cannot grow the number of series without bound. A value takes a
 * place only when a request carrying it succeeded: a made-up model name the provider refused never pushes
 * a real one out.
 *
 * @example
 * const models = new BoundedValues(100)
 * models.names[models.of('gpt-4o-mini', true)] // 'gpt-4o-mini', kept from now on
 * models.names[models.of('gpt-4o-typo', false)] // 'other': not kept from a failed request
 */
export class BoundedValues {
  /** Index 0 is `none`, 1 is `other`, then the values kept, in the order they came. */
  readonly names: string[] = [NONE, OTHER]
  readonly #ids = new Map<string, number>([
    [NONE, 0],
    [OTHER, 1],
  ])

  constructor(readonly max: number) {}

  /** The index of `value`'s label in `names`. */
  of(value: string | undefined, admit: boolean): number {
    if (value === undefined || value === '') return 0
    const id = this.#ids.get(value)
    if (id !== undefined) return id
    if (!admit || this.names.length - 2 >= this.max || value.length > MAX_VALUE_LENGTH) return 1
    this.#ids.set(value, this.names.length)
    this.names.push(value)
    return this.names.length - 1
  }
}

/**
 * `2xx`, `4xx`, `5xx`: what dashboards group statuses by, with the exact status left to the log.
 *
 * @example
 * statusClass(429) // '4xx'
 */
export function statusClass(status: number): string {
  return `${Math.floor(status / 100)}xx`
}

/**
 * Label names the gateway's own metrics use, which a metadata label may not take: Prometheus would refuse
 * a metric with a label twice, and `le` is the histograms' bucket label.
 */
export const RESERVED_LABELS: readonly string[] = [
  'provider',
  'model',
  'surface',
  'status_class',
  'cache',
  'outcome',
  'direction',
  'le',
]
