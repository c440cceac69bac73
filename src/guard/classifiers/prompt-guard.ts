/**
 * Prompt injection (`P1`) from a Prompt Guard style model: Meta's Prompt-Guard-86M (labels `BENIGN`,
 * `INJECTION`, `JAILBREAK`) or Llama-Prompt-Guard-2 (`LABEL_0` benign, `LABEL_1` malicious, as its
 * Hugging Face config names them). These are text classifiers, not chat models: they answer a list of
 * labels with probabilities, the Hugging Face text-classification output `[{ label, score }]`. They read
 * 512 tokens at most, so text is classified in overlapping chunks and the highest score wins.
 */
import { z } from 'zod'
import { isRecord } from '../../json.js'
import { MAX_CONCURRENCY, MIN_CHUNK_CHARS, mapBounded, splitText } from './chunk.js'
import { unavailable } from './errors.js'
import { classifierId, fn, parseOptions, whole } from './options.js'
import type { GuardClassifier, GuardVerdict } from './types.js'
import { SAFE_VERDICT } from './verdict.js'

/** One label of a text-classification answer and its probability. */
export interface TextClassification {
  readonly label: string
  readonly score: number
}

/**
 * Classifies one chunk of text and resolves with its labels and scores (all of them, or the top ones).
 * Rejects on any failure; the classifier turns that into `GuardClassifierUnavailable`.
 */
export type PromptGuardClassify = (
  text: string,
  signal: AbortSignal,
) => Promise<readonly TextClassification[]>

/** Labels that mean an attack, across Prompt Guard versions and the names deployments give them. */
export const PROMPT_GUARD_ATTACK_LABELS = ['INJECTION', 'JAILBREAK', 'MALICIOUS', 'LABEL_1'] as const
/** Labels that mean harmless text. */
export const PROMPT_GUARD_BENIGN_LABELS = ['BENIGN', 'LABEL_0'] as const

export interface PromptGuardOptions {
  /** Names the classifier in errors and logs. Default `prompt-guard`. */
  readonly id?: string | undefined
  readonly classify: PromptGuardClassify
  /** The attack score (0 to 1) from which text is `P1`. Default 0.5. */
  readonly threshold?: number | undefined
  /** Labels counted as an attack, compared without case. Default `PROMPT_GUARD_ATTACK_LABELS`. */
  readonly attackLabels?: readonly string[] | undefined
  /** Labels known to mean harmless text, compared without case. Default `PROMPT_GUARD_BENIGN_LABELS`. */
  readonly benignLabels?: readonly string[] | undefined
  /**
   * The longest chunk, in UTF-16 code units. Default 1500: about 400 tokens of English, leaving room in the
   * 512-token window for denser text (code, other scripts), whose excess the model would silently drop.
   */
  readonly maxChars?: number | undefined
  /** How much each chunk repeats of the previous one. Default 200. */
  readonly overlapChars?: number | undefined
  /** How many chunks are classified at once. Default 4. */
  readonly concurrency?: number | undefined
}

const label = z.string().min(1, 'must not be empty').max(64, 'at most 64 characters')

const optionsSchema = z
  .strictObject({
    id: classifierId.optional(),
    classify: fn<PromptGuardClassify>('(text, signal) => Promise<Array<{ label, score }>>'),
    threshold: z.number().min(0, 'at least 0').max(1, 'at most 1').optional(),
    attackLabels: z.array(label).min(1, 'name at least one label').optional(),
    benignLabels: z.array(label).optional(),
    maxChars: whole(MIN_CHUNK_CHARS, 1_000_000).optional(),
    overlapChars: whole(0, 500_000).optional(),
    concurrency: whole(1, MAX_CONCURRENCY).optional(),
  })
  .refine((options) => (options.overlapChars ?? 200) * 2 < (options.maxChars ?? 1500), {
    message: 'must be less than half of maxChars',
    path: ['overlapChars'],
  })
  .refine(
    (options) => {
      const benign = new Set((options.benignLabels ?? PROMPT_GUARD_BENIGN_LABELS).map((l) => l.toUpperCase()))
      return !(options.attackLabels ?? PROMPT_GUARD_ATTACK_LABELS).some((l) => benign.has(l.toUpperCase()))
    },
    { message: 'a label cannot be both an attack and benign', path: ['attackLabels'] },
  )

/**
 * A classifier for `P1` from a Prompt Guard model. Each chunk's attack score is the sum of its attack
 * labels' probabilities (for Prompt-Guard-86M, `INJECTION` + `JAILBREAK`, Meta's score for untrusted text),
 * capped at 1; the text's score is its highest chunk's, and from `threshold` up the verdict is `P1` with that
 * score; below it the text is safe, as is empty or blank text, without a call. An answer that is not a list of `{ label, score }` with scores from 0 to 1, or names no known label
 * (a model with other labels, a misread response), rejects with `GuardClassifierUnavailable` (reason
 * `error`), as does a failed call. Throws `GatewayOptionsError` for bad options.
 *
 * @example
 * const guard = createPromptGuardClassifier({
 *   threshold: 0.8,
 *   classify: async (text, signal) => {
 *     const res = await fetch(`${hf}/models/meta-llama/Llama-Prompt-Guard-2-86M`, {
 *       method: 'POST',
 *       headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
 *       body: JSON.stringify({ inputs: text }),
 *       signal,
 *     })
 *     if (!res.ok) throw new Error(`HTTP ${res.status}`)
 *     return res.json()
 *   },
 * })
 * await guard.classify(document, 'prompt', { signal }) // { unsafe: true, categories: [{ category: 'P1', score: 0.97 }] }
 */
export function createPromptGuardClassifier(options: PromptGuardOptions): GuardClassifier {
  const parsed = parseOptions(optionsSchema, options, 'Prompt Guard classifier')
  const id = parsed.id ?? 'prompt-guard'
  const threshold = parsed.threshold ?? 0.5
  const attack = new Set((parsed.attackLabels ?? PROMPT_GUARD_ATTACK_LABELS).map((l) => l.toUpperCase()))
  const benign = new Set((parsed.benignLabels ?? PROMPT_GUARD_BENIGN_LABELS).map((l) => l.toUpperCase()))
  const maxChars = parsed.maxChars ?? 1500
  const overlap = parsed.overlapChars ?? 200
  const concurrency = parsed.concurrency ?? 4
  const { classify } = parsed

  const scoreOf = async (chunk: string, signal: AbortSignal): Promise<number> => {
    const answer: unknown = await classify(chunk, signal)
    return attackScore(readLabels(answer), attack, benign)
  }

  return {
    id,
    async classify(text, _phase, context): Promise<GuardVerdict> {
      const { signal } = context
      signal.throwIfAborted()
      if (text.trim() === '') return SAFE_VERDICT
      try {
        const scores = await mapBounded(splitText(text, maxChars, overlap), concurrency, signal, scoreOf)
        const score = Math.max(...scores)
        if (score < threshold) return SAFE_VERDICT
        return { unsafe: true, categories: [{ category: 'P1', score }] }
      } catch (error) {
        throw unavailable(id, error, signal)
      }
    },
  }
}

/**
 * The labels of one answer, checked. A list nested once (`[[{ label, score }]]`, the Hugging Face Inference
 * API's answer for one input) is read as its one inner list.
 */
function readLabels(answer: unknown): TextClassification[] {
  const list = Array.isArray(answer) && answer.length === 1 && Array.isArray(answer[0]) ? answer[0] : answer
  if (!Array.isArray(list) || list.length === 0) {
    throw new Error('expected a non-empty list of { label, score }')
  }
  return list.map((entry: unknown, index) => {
    const valid =
      isRecord(entry) &&
      typeof entry.label === 'string' &&
      typeof entry.score === 'number' &&
      entry.score >= 0 &&
      entry.score <= 1
    if (!valid) throw new Error(`answer entry ${index} is not { label, score } with a score from 0 to 1`)
    return { label: entry.label as string, score: entry.score as number }
  })
}

function attackScore(
  labels: readonly TextClassification[],
  attack: Set<string>,
  benign: Set<string>,
): number {
  let score = 0
  let known = false
  for (const entry of labels) {
    const name = entry.label.toUpperCase()
    if (attack.has(name)) {
      score += entry.score
      known = true
    } else if (benign.has(name)) {
      known = true
    }
  }
  if (!known) {
    const names = labels.map((entry) => entry.label).join(', ')
    throw new Error(`none of the labels answered (${names.slice(0, 200)}) is a known attack or benign label`)
  }
  return Math.min(score, 1)
}
