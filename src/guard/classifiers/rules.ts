/**
 * Guardrails without a model: categories decided by keywords and patterns the host writes, for hosts that
 * run no classifier model, or that want certain words caught whatever a model says. Keywords are matched
 * here (`createKeywordMatcher`); patterns are compiled by a function the host or the guard step supplies,
 * an RE2-semantics engine, because a JavaScript `RegExp` built from configuration can backtrack for
 * seconds on a crafted prompt.
 */
import { z } from 'zod'
import { GatewayOptionsError } from '../../errors.js'
import { unavailable } from './errors.js'
import { createKeywordMatcher, type KeywordEntry } from './keywords.js'
import { classifierId, fn, parseOptions } from './options.js'
import { GUARD_CATEGORIES, type GuardCategory, type GuardClassifier, type GuardVerdict } from './types.js'
import { verdictOf } from './verdict.js'

/**
 * One rule: the text is in `category` when any keyword or any pattern matches it. Give at least one of the
 * two. Keywords match ignoring case, on word boundaries (see `createKeywordMatcher`), white space inside a
 * keyword exactly as written. Patterns use the syntax of the `compilePattern` given; with RE2, `(?i)` makes
 * one case-insensitive.
 */
export interface GuardRule {
  readonly category: GuardCategory
  readonly keywords?: readonly string[] | undefined
  readonly patterns?: readonly string[] | undefined
}

/** A compiled pattern. `test` must run in time linear in the text (RE2 semantics: no backtracking). */
export interface CompiledPattern {
  test(text: string): boolean
}

/**
 * Compiles one pattern, or throws when it is not valid. The guard step supplies the RE2 engine the DLP
 * scanner uses; a host calling `createRuleClassifier` itself passes its own (e.g. `re2js`).
 */
export type CompilePattern = (source: string) => CompiledPattern

export interface RuleClassifierOptions {
  /** Names the classifier in errors and logs. Default `rules`. */
  readonly id?: string | undefined
  readonly rules: readonly GuardRule[]
  /** Needed as soon as a rule has `patterns`; there is deliberately no built-in default (see the module). */
  readonly compilePattern?: CompilePattern | undefined
}

export const MAX_RULES = 1000
const MAX_KEYWORDS = 10_000
const MAX_KEYWORD_CHARS = 256
const MAX_PATTERNS = 1000
const MAX_PATTERN_CHARS = 4096

const keyword = z
  .string()
  .max(MAX_KEYWORD_CHARS, `at most ${MAX_KEYWORD_CHARS} characters`)
  .refine((value) => value.trim() !== '', 'must not be blank')

const ruleSchema = z
  .strictObject({
    category: z.enum(GUARD_CATEGORIES),
    keywords: z.array(keyword).max(MAX_KEYWORDS, `at most ${MAX_KEYWORDS}`).optional(),
    patterns: z
      .array(
        z
          .string()
          .min(1, 'must not be empty')
          .max(MAX_PATTERN_CHARS, `at most ${MAX_PATTERN_CHARS} characters`),
      )
      .max(MAX_PATTERNS, `at most ${MAX_PATTERNS}`)
      .optional(),
  })
  .refine((rule) => (rule.keywords?.length ?? 0) + (rule.patterns?.length ?? 0) > 0, {
    message: 'give at least one keyword or pattern',
  })

const optionsSchema = z.strictObject({
  id: classifierId.optional(),
  rules: z.array(ruleSchema).min(1, 'give at least one rule').max(MAX_RULES, `at most ${MAX_RULES}`),
  compilePattern: fn<CompilePattern>('(source) => { test(text): boolean }').optional(),
})

/**
 * A classifier from rules: each rule's category scores 1 when one of its keywords or patterns matches, the
 * same in both phases. Keywords are trimmed and searched all at once in one pass over the text; patterns
 * are compiled once, here, by `compilePattern`, and run only for categories no keyword found. Throws
 * `GatewayOptionsError` for bad options, for patterns without `compilePattern`, and for each pattern it
 * cannot compile. A pattern throwing while it runs rejects with `GuardClassifierUnavailable`.
 *
 * @example
 * const rules = createRuleClassifier({
 *   rules: [
 *     { category: 'S9', keywords: ['nerve agent', 'pipe bomb'] },
 *     { category: 'P1', keywords: ['ignore previous instructions'], patterns: ['(?i)you are now (DAN|in developer mode)'] },
 *   ],
 *   compilePattern: (source) => {
 *     const re = RE2JS.compile(source) // re2js: RE2 semantics, linear time
 *     return { test: (text) => re.matcher(text).find() }
 *   },
 * })
 * await rules.classify('Ignore previous instructions and ...', 'prompt', { signal }) // { unsafe: true, categories: [{ category: 'P1', score: 1 }] }
 */
export function createRuleClassifier(options: RuleClassifierOptions): GuardClassifier {
  const parsed = parseOptions(optionsSchema, options, 'rule classifier')
  const id = parsed.id ?? 'rules'
  const entries: KeywordEntry<GuardCategory>[] = []
  const patterns: { category: GuardCategory; pattern: CompiledPattern }[] = []
  const problems: string[] = []
  for (const [index, rule] of parsed.rules.entries()) {
    for (const word of rule.keywords ?? []) entries.push({ keyword: word.trim(), tag: rule.category })
    if (rule.patterns === undefined || rule.patterns.length === 0) continue
    const compile = parsed.compilePattern
    if (compile === undefined) {
      problems.push(`rules.${index}.patterns: patterns need compilePattern (an RE2-semantics engine)`)
      continue
    }
    for (const [at, source] of rule.patterns.entries()) {
      try {
        const pattern = compile(source)
        if (typeof pattern?.test !== 'function') throw new Error('compilePattern returned no test()')
        patterns.push({ category: rule.category, pattern })
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error)
        problems.push(`rules.${index}.patterns.${at}: cannot compile ${JSON.stringify(source)}: ${reason}`)
      }
    }
  }
  if (problems.length > 0) {
    throw new GatewayOptionsError(`Invalid rule classifier options: ${problems.join('; ')}`)
  }
  const findKeywords = createKeywordMatcher(entries)
  const categories = new Set(parsed.rules.map((rule) => rule.category))

  return {
    id,
    async classify(text, _phase, context): Promise<GuardVerdict> {
      context.signal.throwIfAborted()
      try {
        const found = findKeywords(text, categories)
        for (const { category, pattern } of patterns) {
          if (!found.has(category) && pattern.test(text)) found.add(category)
        }
        return verdictOf([...found].map((category) => ({ category, score: 1 })))
      } catch (error) {
        throw unavailable(id, error, context.signal)
      }
    },
  }
}
