/**
 * The vocabulary every guardrail classifier shares: the reference's categories, what a classifier answers
 * (a verdict), and the one interface the guard step calls. Classifiers know nothing of the gateway: they
 * take text and answer with categories and scores; the step decides what a hit means (FLAG or BLOCK).
 */

/**
 * The reference's guardrail categories: the Llama Guard 3 hazard taxonomy S1 to S13 and `P1`, prompt
 * injection. Llama Guard 3's S14 (code interpreter abuse) is left out, as the reference leaves it out: the
 * gateway's configuration has no key for it, so a model answering S14 is ignored rather than acted on.
 */
export const GUARD_CATEGORIES = [
  'S1',
  'S2',
  'S3',
  'S4',
  'S5',
  'S6',
  'S7',
  'S8',
  'S9',
  'S10',
  'S11',
  'S12',
  'S13',
  'P1',
] as const

export type GuardCategory = (typeof GUARD_CATEGORIES)[number]

/** The categories Llama Guard answers with: every guard category but prompt injection. */
export type HazardCategory = Exclude<GuardCategory, 'P1'>

/** The reference's display name of each category, for logs and dashboards. */
export const GUARD_CATEGORY_NAMES: Readonly<Record<GuardCategory, string>> = {
  S1: 'Violent Crimes',
  S2: 'Non-Violent Crimes',
  S3: 'Sex-Related Crimes',
  S4: 'Child Sexual Exploitation',
  S5: 'Defamation',
  S6: 'Specialized Advice',
  S7: 'Privacy',
  S8: 'Intellectual Property',
  S9: 'Indiscriminate Weapons',
  S10: 'Hate',
  S11: 'Suicide & Self-Harm',
  S12: 'Sexual Content',
  S13: 'Elections',
  P1: 'Prompt Injection',
}

/**
 * Whether `value` is one of the reference's categories.
 *
 * @example
 * isGuardCategory('S10') // true
 * isGuardCategory('S14') // false: not a reference category
 */
export function isGuardCategory(value: unknown): value is GuardCategory {
  return typeof value === 'string' && (GUARD_CATEGORIES as readonly string[]).includes(value)
}

/** Which side of the exchange is classified: the caller's prompt, or the model's answer to it. */
export type GuardPhase = 'prompt' | 'answer'

/** One category a classifier found, with how sure it is (0 to 1; 1 where the classifier gives no score). */
export interface GuardHit {
  readonly category: GuardCategory
  readonly score: number
}

/**
 * What a classifier answers for one text. `categories` lists each recognised category found, at most once,
 * in `GUARD_CATEGORIES` order. `unsafe` is the classifier's own judgement: it is true whenever `categories`
 * is not empty, and can be true with no category when a model calls the text unsafe without naming a
 * category the gateway knows (Llama Guard answering only `S14`, or `unsafe` alone); what to do then is the
 * guard step's decision.
 */
export interface GuardVerdict {
  readonly unsafe: boolean
  readonly categories: readonly GuardHit[]
}

/** What a classification may need besides the text. */
export interface ClassifyContext {
  /** Aborted when the classification is no longer wanted (deadline, client gone); pass it to every call made. */
  readonly signal: AbortSignal
  /**
   * For the answer phase, the prompt the answer replies to: Llama Guard judges an answer in the context of
   * the user turn (a plain "yes" is harmless alone, not after some questions). Ignored for prompts.
   */
  readonly prompt?: string | undefined
}

/**
 * A guardrail classifier. It resolves with a verdict, or rejects with `GuardClassifierUnavailable` when it
 * cannot classify (its backend failed, answered something unreadable, or took too long), or with the
 * signal's reason when `context.signal` was aborted by the caller.
 *
 * @example
 * const verdict = await classifier.classify('How do I pick a lock?', 'prompt', { signal: AbortSignal.timeout(2000) })
 * if (verdict.categories.some((hit) => hit.category === 'S2')) flag()
 */
export interface GuardClassifier {
  /** Names the classifier in errors and logs, e.g. `llama-guard`. */
  readonly id: string
  classify(text: string, phase: GuardPhase, context: ClassifyContext): Promise<GuardVerdict>
}
