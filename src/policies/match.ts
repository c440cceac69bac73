/**
 * Who and what a policy is about: its `actor` (the caller, possibly templated) and its `resource` (every
 * model, a provider, or a provider's model, with `*` wildcards). Both are parsed once, when policies are
 * compiled; matching a request then uses no regular expressions.
 */

/** Where a template reads a value. */
export interface ActorInput {
  readonly principal: Readonly<Record<string, unknown>> | undefined
  readonly metadata: Readonly<Record<string, unknown>>
}

type Part =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'principal' | 'metadata'; readonly field: string }

/**
 * A parsed actor:
 * - `any` (`*`): every caller, one shared bucket;
 * - `template` (at least one `{...}`): every caller for whom each value is present, one bucket per resolved
 *   string (`{principal.id}` is a bucket per user);
 * - `literal` (no `{...}`): the one caller whose `principal.id` or `principal.email` is that string.
 */
export type Actor =
  | { readonly kind: 'any' }
  | { readonly kind: 'literal'; readonly text: string }
  | { readonly kind: 'template'; readonly parts: readonly Part[] }

/** The reference's own names for the caller's identity, read from the principal here. */
const PRINCIPAL_ALIASES = ['cf.user.', 'principal.'] as const
const MAX_PART = 128

/**
 * Parses an actor string; throws an `Error` saying what is wrong (the caller adds which policy).
 *
 * @example
 * parseActor('team-{principal.tenant}') // { kind: 'template', parts: [text 'team-', principal 'tenant'] }
 */
export function parseActor(source: string): Actor {
  if (source === '*') return { kind: 'any' }
  const parts: Part[] = []
  let index = 0
  while (index < source.length) {
    const open = source.indexOf('{', index)
    const close = source.indexOf('}', index)
    if (close !== -1 && (open === -1 || close < open)) throw new Error(`unmatched '}' at ${close}`)
    if (open === -1) {
      parts.push({ kind: 'text', text: source.slice(index) })
      break
    }
    if (open > index) parts.push({ kind: 'text', text: source.slice(index, open) })
    const end = source.indexOf('}', open)
    if (end === -1) throw new Error(`unclosed '{' at ${open}`)
    parts.push(placeholder(source.slice(open + 1, end)))
    index = end + 1
  }
  if (parts.every((part) => part.kind === 'text')) return { kind: 'literal', text: source }
  return { kind: 'template', parts }
}

function placeholder(name: string): Part {
  if (name.includes('{')) throw new Error(`'{' inside '{${name}}'`)
  for (const prefix of PRINCIPAL_ALIASES) {
    if (name.startsWith(prefix)) return { kind: 'principal', field: field(name, prefix) }
  }
  if (name.startsWith('metadata.')) return { kind: 'metadata', field: field(name, 'metadata.') }
  throw new Error(`'{${name}}' is not {principal.<field>}, {cf.user.<field>} or {metadata.<key>}`)
}

function field(name: string, prefix: string): string {
  const value = name.slice(prefix.length)
  if (value === '' || value.length > MAX_PART) {
    throw new Error(`'{${name}}' needs a field name of 1 to ${MAX_PART} characters`)
  }
  return value
}

/**
 * The bucket name of the caller under `actor`, or `undefined` when the actor does not cover this caller (a
 * templated value is missing, or a literal actor names someone else).
 */
export function resolveActor(actor: Actor, input: ActorInput): string | undefined {
  switch (actor.kind) {
    case 'any':
      return '*'
    case 'literal': {
      const { principal } = input
      const matches =
        principal !== undefined && (principal.id === actor.text || principal.email === actor.text)
      return matches ? actor.text : undefined
    }
    case 'template': {
      let resolved = ''
      for (const part of actor.parts) {
        if (part.kind === 'text') {
          resolved += part.text
          continue
        }
        const source = part.kind === 'principal' ? input.principal : input.metadata
        const value = source === undefined ? undefined : textOf(own(source, part.field))
        if (value === undefined) return undefined
        resolved += value
      }
      return resolved
    }
  }
}

function own(record: Readonly<Record<string, unknown>>, key: string): unknown {
  return Object.hasOwn(record, key) ? record[key] : undefined
}

/** A value a template can name a bucket with; an empty string is as good as missing. */
function textOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value === '' ? undefined : value
  if (typeof value === 'boolean' || typeof value === 'bigint') return String(value)
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : undefined
  return undefined
}

/**
 * A parsed resource:
 * - `any` (`*`): every request;
 * - `provider` (no `/`): every request to a matching provider, with or without a model;
 * - `model` (`{provider}/{model}`): requests naming a matching model. The model part `*` alone matches any
 *   model of the provider (models with `/` in their names too); otherwise the model is compared segment by
 *   segment, the same number of segments on both sides, a `*` matching within one segment only.
 */
export type Resource =
  | { readonly kind: 'any' }
  | { readonly kind: 'provider'; readonly provider: string }
  | { readonly kind: 'model'; readonly provider: string; readonly model: readonly string[] | 'any' }

/**
 * Parses a resource string; throws an `Error` saying what is wrong.
 *
 * @example
 * parseResource('openai/gpt-4*') // { kind: 'model', provider: 'openai', model: ['gpt-4*'] }
 */
export function parseResource(source: string): Resource {
  if (source === '*') return { kind: 'any' }
  if (/\s/.test(source)) throw new Error('no white space allowed')
  const slash = source.indexOf('/')
  if (slash === -1) return { kind: 'provider', provider: source }
  const provider = source.slice(0, slash)
  const model = source.slice(slash + 1)
  const segments = model.split('/')
  if (provider === '' || segments.some((segment) => segment === '')) {
    throw new Error("empty segment: write '{provider}', '{provider}/{model}' or '*'")
  }
  return { kind: 'model', provider, model: model === '*' ? 'any' : segments }
}

/** Whether `resource` covers a request to `provider` for `model` (`undefined`: the request names none). */
export function matchResource(resource: Resource, provider: string, model: string | undefined): boolean {
  switch (resource.kind) {
    case 'any':
      return true
    case 'provider':
      return wildcard(resource.provider, provider)
    case 'model': {
      if (model === undefined || !wildcard(resource.provider, provider)) return false
      if (resource.model === 'any') return true
      const segments = model.split('/')
      return (
        segments.length === resource.model.length &&
        resource.model.every((pattern, index) => wildcard(pattern, segments[index]!))
      )
    }
  }
}

/**
 * `*` matches any run of characters (none included) within one segment. The classic two-pointer match:
 * on a mismatch it resumes after the last `*`, so the cost stays within pattern length × text length, with
 * no regular expression to backtrack.
 */
export function wildcard(pattern: string, text: string): boolean {
  if (text.includes('/')) return false
  let p = 0
  let t = 0
  let star = -1
  let resume = 0
  while (t < text.length) {
    if (p < pattern.length && pattern[p] === '*') {
      star = p++
      resume = t
    } else if (p < pattern.length && pattern[p] === text[t]) {
      p++
      t++
    } else if (star !== -1) {
      p = star + 1
      t = ++resume
    } else {
      return false
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++
  return p === pattern.length
}
