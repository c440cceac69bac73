/**
 * Custom patterns run on re2js, a pure JavaScript port of RE2 (the Go `regexp` design): matching takes
 * time linear in the input whatever the pattern, so no configured pattern can backtrack catastrophically.
 * It was chosen over re2-wasm, Google's WebAssembly build of RE2, because re2js is actively released
 * (several releases a month, Node >= 20 declared), has no dependencies and nothing to build or load (no
 * WebAssembly module, no native addon), reports UTF-16 offsets into JavaScript strings as the rest of
 * this module does, and ships its own types; re2-wasm has one published version and no release since.
 */
import { RE2JS } from 're2js'
import { z } from 'zod'
import { GatewayOptionsError } from '../../errors.js'
import { isRecord } from '../../json.js'
import { DETECTORS } from './detectors/index.js'
import { detectorMatcher, keywordDetector, patternMatcher } from './matchers.js'
import { DLP_PROFILES } from './profiles.js'
import type { CompileDlpOptions, CompiledDlpProfiles, DlpMatcher, DlpOwner, DlpProfile } from './types.js'

/** 1 Mi characters: a large prompt or answer, read in well under a second by every matcher. */
export const DEFAULT_MAX_SCAN_CHARS = 1_048_576
/** 64 Mi characters. */
const MAX_MAX_SCAN_CHARS = 67_108_864
export const MAX_DLP_PROFILES = 100
export const MAX_DLP_ENTRIES = 1000
const MAX_KEYWORD_CHARS = 256
const MAX_PATTERN_CHARS = 1024
/**
 * RE2 matches in time linear in the input and, per input character, in the size of the compiled program;
 * this bound keeps that factor small. `[a-z]{1000}` compiles to about 1,000 instructions.
 */
const MAX_PATTERN_PROGRAM = 10_000

const id = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/,
    'must be 1-128 letters, digits, _ . : or -, not starting with punctuation',
  )

// Strict objects: a misspelt field (`entires`, `pattern`) is an error, not a silently ignored setting.
const entrySchema = z.strictObject({
  id,
  type: z.enum(['keyword', 'pattern', 'detector']),
  value: z.string().min(1, 'must not be empty'),
})

const profileSchema = z.strictObject({
  id,
  entries: z
    .array(entrySchema)
    .min(1, 'must have at least one entry')
    .max(MAX_DLP_ENTRIES, `at most ${MAX_DLP_ENTRIES}`),
})

const optionsSchema = z.strictObject({
  maxScanChars: z.int().min(1).max(MAX_MAX_SCAN_CHARS).optional(),
})

/**
 * Validates DLP profiles and compiles them once: detectors looked up, keywords and RE2 patterns compiled,
 * and entries with the same type and value (the same detector in two profiles) sharing one matcher. Each
 * item is the id of a built-in profile (`financial`, `pii`, `government_ids`, `credentials`, `secrets`) or
 * a profile of its own. Throws `GatewayOptionsError` listing every problem by profile and entry, an invalid
 * pattern with the RE2 parser's message.
 *
 * @example
 * const dlp = compileDlpProfiles([
 *   'financial',
 *   { id: 'project-x', entries: [
 *     { id: 'codename', type: 'keyword', value: 'blue harbor' },
 *     { id: 'ticket', type: 'pattern', value: '(?i)PRJX-[0-9]{4,6}' },
 *     { id: 'cards', type: 'detector', value: 'credit_card' },
 *   ] },
 * ])
 */
export function compileDlpProfiles(
  profiles: readonly (string | DlpProfile)[],
  options: CompileDlpOptions = {},
): CompiledDlpProfiles {
  const parsedOptions = optionsSchema.safeParse(options)
  if (!parsedOptions.success) {
    const issues = parsedOptions.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`)
    throw new GatewayOptionsError(`Invalid DLP options: ${issues.join('; ')}`)
  }
  const raw: unknown = profiles
  if (!Array.isArray(raw)) throw new GatewayOptionsError('Invalid DLP profiles: expected a list of profiles')
  if (raw.length > MAX_DLP_PROFILES) {
    throw new GatewayOptionsError(`Invalid DLP profiles: at most ${MAX_DLP_PROFILES}, got ${raw.length}`)
  }
  const problems: string[] = []
  const ids = new Set<string>()
  const resolved: DlpProfile[] = []
  for (const [index, item] of raw.entries()) {
    const where = nameOf(item, index)
    const profile = resolveProfile(item, where, problems)
    if (profile === undefined) continue
    if (ids.has(profile.id)) problems.push(`${where}: id: another profile has the same id`)
    ids.add(profile.id)
    const entryIds = new Set<string>()
    for (const entry of profile.entries) {
      if (entryIds.has(entry.id))
        problems.push(`${where}: entry '${entry.id}': another entry has the same id`)
      entryIds.add(entry.id)
    }
    resolved.push(profile)
  }

  const byKey = new Map<string, { make: (owners: readonly DlpOwner[]) => DlpMatcher; owners: DlpOwner[] }>()
  let order = 0
  for (const [index, profile] of resolved.entries()) {
    for (const entry of profile.entries) {
      const owner: DlpOwner = { profileId: profile.id, entryId: entry.id, order: order++ }
      const key = `${entry.type}:${entry.value}`
      const known = byKey.get(key)
      if (known !== undefined) {
        known.owners.push(owner)
        continue
      }
      const where = `profile '${profile.id}' (#${index}): entry '${entry.id}'`
      const make = makerFor(key, entry.type, entry.value, where, problems)
      if (make !== undefined) byKey.set(key, { make, owners: [owner] })
    }
  }
  if (problems.length > 0) {
    throw new GatewayOptionsError(
      `Invalid DLP profiles:\n${problems.map((line) => `  - ${line}`).join('\n')}`,
    )
  }
  const matchers = [...byKey.values()].map(({ make, owners }) => make(owners))
  return {
    profileIds: resolved.map((profile) => profile.id),
    maxScanChars: parsedOptions.data.maxScanChars ?? DEFAULT_MAX_SCAN_CHARS,
    maxFindingChars: Math.max(0, ...matchers.map((matcher) => matcher.reach ?? 0)),
    hasPatterns: matchers.some((matcher) => matcher.reach === undefined),
    matchers,
  }
}

/** A built-in profile by id, or a validated profile of the host's own. */
function resolveProfile(item: unknown, where: string, problems: string[]): DlpProfile | undefined {
  if (typeof item === 'string') {
    if (Object.hasOwn(DLP_PROFILES, item)) return DLP_PROFILES[item as keyof typeof DLP_PROFILES]
    problems.push(`${where}: no built-in profile has this id (${Object.keys(DLP_PROFILES).join(', ')})`)
    return undefined
  }
  const parsed = profileSchema.safeParse(item)
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push(`${where}: ${issue.path.join('.') || '(profile)'}: ${issue.message}`)
    }
    return undefined
  }
  return parsed.data
}

/** How to make the matcher of one entry, or `undefined` after saying what is wrong with it. */
function makerFor(
  key: string,
  type: 'keyword' | 'pattern' | 'detector',
  value: string,
  where: string,
  problems: string[],
): ((owners: readonly DlpOwner[]) => DlpMatcher) | undefined {
  if (type === 'detector') {
    const detector = DETECTORS.get(value)
    if (detector === undefined) {
      problems.push(
        `${where}: no built-in detector '${value.slice(0, 64)}' (${[...DETECTORS.keys()].join(', ')})`,
      )
      return undefined
    }
    return (owners) => detectorMatcher(key, detector, owners)
  }
  if (type === 'keyword') {
    if (value.trim() === '' || value.length > MAX_KEYWORD_CHARS) {
      problems.push(`${where}: a keyword must have 1-${MAX_KEYWORD_CHARS} characters, not only white space`)
      return undefined
    }
    const detector = keywordDetector(value)
    return (owners) => detectorMatcher(key, detector, owners)
  }
  if (value.length > MAX_PATTERN_CHARS) {
    problems.push(`${where}: a pattern must have at most ${MAX_PATTERN_CHARS} characters`)
    return undefined
  }
  let pattern: RE2JS
  try {
    pattern = RE2JS.compile(value)
  } catch (error) {
    problems.push(`${where}: invalid pattern: ${(error as Error).message}`)
    return undefined
  }
  if (pattern.programSize() > MAX_PATTERN_PROGRAM) {
    problems.push(
      `${where}: pattern too large (${pattern.programSize()} RE2 instructions, at most ${MAX_PATTERN_PROGRAM})`,
    )
    return undefined
  }
  return (owners) => patternMatcher(key, pattern, owners)
}

/** How an error names a profile: by its id when it has a usable one, and always by its place in the list. */
function nameOf(item: unknown, index: number): string {
  const name = typeof item === 'string' ? item : isRecord(item) && typeof item.id === 'string' ? item.id : ''
  return name === '' ? `profile #${index}` : `profile '${name.slice(0, 128)}' (#${index})`
}
