/**
 * The `guardrails` and `dlp` options: what they accept, and what they compile to once, when the gateway is
 * made. Actions are written as the reference writes them (`FLAG`, `BLOCK`) or in lower case.
 */
import { RE2JS } from 're2js'
import { z } from 'zod'
import { GatewayOptionsError } from '../errors.js'
import { isRecord } from '../json.js'
import {
  createLlamaGuardClassifier,
  createPromptGuardClassifier,
  createRuleClassifier,
  GUARD_CATEGORIES,
  type GuardCategory,
  type GuardClassifier,
  type GuardPhase,
  type GuardRule,
  type LlamaGuardComplete,
  type PromptGuardClassify,
  withChunking,
  withDeadline,
} from './classifiers/index.js'
import { type CompiledDlpProfiles, compileDlpProfiles, type DlpMask, type DlpProfile } from './dlp/index.js'

const lower = (value: unknown) => (typeof value === 'string' ? value.toLowerCase() : value)
const guardAction = z.preprocess(lower, z.enum(['ignore', 'flag', 'block']))
const categoryActions = z.partialRecord(z.enum(GUARD_CATEGORIES), guardAction)

/** A classifier the host made itself: anything with `id` and `classify`. */
const customClassifier = z.custom<GuardClassifier>(
  (value) => isRecord(value) && typeof value.id === 'string' && typeof value.classify === 'function',
  'expected a GuardClassifier ({ id, classify })',
)

const classifierSpec = z.union([
  customClassifier,
  z.strictObject({
    type: z.literal('llama-guard'),
    /** A `/compat` model, `provider/model`: `workers-ai/@cf/meta/llama-guard-3-8b`, `groq/llama-guard-4-12b`. */
    model: z.string().regex(/^[^/]+\/.+/, 'expected provider/model'),
    promptFormat: z.enum(['raw', 'chat']).optional(),
  }),
  z.strictObject({
    type: z.literal('prompt-guard'),
    /** The provider and path of a text-classification endpoint (Hugging Face's inference API shape). */
    provider: z.string().min(1),
    path: z.string().startsWith('/'),
    threshold: z.number().min(0).max(1).optional(),
  }),
  z.strictObject({
    type: z.literal('rules'),
    rules: z.array(
      z.strictObject({
        category: z.enum(GUARD_CATEGORIES),
        keywords: z.array(z.string().min(1)).optional(),
        patterns: z.array(z.string().min(1)).optional(),
      }),
    ),
  }),
])

/**
 * Guardrails: each category's action for prompts (`prompt`) and answers (`answer`, or the reference's
 * `response`), and the classifiers that find categories. Every classifier classifies each guarded text;
 * their verdicts are merged, the highest score of a category winning.
 */
export const guardrailsOption = z
  .strictObject({
    classifiers: z.array(classifierSpec).min(1),
    prompt: categoryActions.default({}),
    answer: categoryActions.optional(),
    response: categoryActions.optional(),
    /** Each classification's own clock: past it the classifier counts as unavailable. Default 5000 ms. */
    timeoutMs: z.number().int().positive().default(5000),
    /** Longest text per classifier call; longer text is classified in overlapping chunks. Default 4000. */
    maxChars: z.number().int().min(256).default(4000),
    /**
     * A classifier that is down or too slow, in a phase where some category would block: `refuse` answers 503
     * (code 2132), as the reference does; `pass` lets the request go on, flagged in its record.
     */
    whenUnavailable: z.enum(['refuse', 'pass']).default('refuse'),
    /** What a verdict of "unsafe" without a category the gateway knows does. Default `flag`. */
    unknownUnsafe: guardAction.default('flag'),
    /**
     * Classify the prompt while the provider is already being asked (the answer is held until the verdict;
     * a block cancels the call), saving the classifier's time on every allowed request. Default false.
     */
    parallel: z.boolean().default(false),
    /** A streamed answer is classified every this many characters, and held until it is. Default 1000. */
    streamChunkChars: z.number().int().min(64).default(1000),
  })
  .transform(({ answer, response, ...rest }) => ({ ...rest, answer: answer ?? response ?? {} }))

const dlpAction = z.preprocess(lower, z.enum(['flag', 'block', 'redact']))
const dlpCheck = z.preprocess(lower, z.enum(['request', 'response']))

/**
 * DLP: `profiles` of your own (built-in ones are named by id: `financial`, `pii`, `government_ids`,
 * `credentials`, `secrets`), and `policies`, each applying some profiles to requests and/or answers with
 * one action: `flag`, `block` (400, 2029 or 2030) or `redact` (mask in place and go on).
 */
export const dlpOption = z.strictObject({
  profiles: z.array(z.custom<DlpProfile>((value) => isRecord(value), 'expected a DLP profile')).default([]),
  policies: z
    .array(
      z.strictObject({
        id: z.string().min(1).max(128),
        enabled: z.boolean().default(true),
        profiles: z.array(z.string().min(1)).min(1),
        check: z.array(dlpCheck).min(1).default(['request', 'response']),
        action: dlpAction,
      }),
    )
    .min(1),
  /** How findings are masked: `label` (`[REDACTED:email]`) or `{ fill: '*' }`, keeping the text's length. */
  mask: z.union([z.literal('label'), z.strictObject({ fill: z.string().length(1) })]).default('label'),
  /** Characters of a streamed answer held back so a finding split over events is caught. Default 256. */
  holdBackChars: z.number().int().positive().optional(),
  /** Most characters scanned of one string (a prompt, an answer); the rest is not scanned. Default 1 Mi. */
  maxScanChars: z.number().int().positive().optional(),
})

export type GuardrailsOption = z.input<typeof guardrailsOption>
export type DlpOption = z.input<typeof dlpOption>
export type GuardAction = 'ignore' | 'flag' | 'block'
export type DlpAction = 'flag' | 'block' | 'redact'

/** Sends a request through the gateway's own forward path (`GatewayServices.call`), as classifiers need. */
export interface OwnCalls {
  readonly complete: LlamaGuardComplete
  readonly classify: (provider: string, path: string) => PromptGuardClassify
}

export interface CompiledGuardrails {
  readonly classifier: GuardClassifier
  readonly actions: Readonly<Record<GuardPhase, Readonly<Partial<Record<GuardCategory, GuardAction>>>>>
  readonly unknownUnsafe: GuardAction
  readonly whenUnavailable: 'refuse' | 'pass'
  readonly parallel: boolean
  readonly streamChunkChars: number
  /** Whether a phase is guarded at all (some category not ignored). */
  readonly guards: Readonly<Record<GuardPhase, boolean>>
  /** Whether some category of a phase blocks, so an unavailable classifier refuses under `refuse`. */
  readonly blocks: Readonly<Record<GuardPhase, boolean>>
}

/** RE2 semantics for rule patterns: linear time, whatever the pattern and the text. */
const compileRe2 = (source: string) => {
  const pattern = RE2JS.compile(source)
  return { test: (text: string) => pattern.matcher(text).find() }
}

export function compileGuardrails(
  option: z.output<typeof guardrailsOption>,
  calls: OwnCalls,
): CompiledGuardrails {
  const classifiers = option.classifiers.map((spec, index) => {
    const made = makeClassifier(spec, index, calls)
    // Rules run in linear time on the whole text, with nothing to wait for: no chunks, no clock to keep.
    if ('type' in spec && spec.type === 'rules') return made
    return withDeadline(withChunking(made, { maxChars: option.maxChars }), option.timeoutMs)
  })
  const actions = { prompt: option.prompt, answer: option.answer }
  const some = (phase: GuardPhase, test: (action: GuardAction) => boolean) =>
    Object.values(actions[phase]).some((action) => action !== undefined && test(action)) ||
    test(option.unknownUnsafe)
  return {
    classifier: combine(classifiers),
    actions,
    unknownUnsafe: option.unknownUnsafe,
    whenUnavailable: option.whenUnavailable,
    parallel: option.parallel,
    streamChunkChars: option.streamChunkChars,
    guards: {
      prompt: Object.values(option.prompt).some((a) => a !== 'ignore'),
      answer: Object.values(option.answer).some((a) => a !== 'ignore'),
    },
    blocks: { prompt: some('prompt', (a) => a === 'block'), answer: some('answer', (a) => a === 'block') },
  }
}

function makeClassifier(
  spec: z.output<typeof classifierSpec>,
  index: number,
  calls: OwnCalls,
): GuardClassifier {
  if (!('type' in spec)) return spec as GuardClassifier
  try {
    switch (spec.type) {
      case 'llama-guard':
        return createLlamaGuardClassifier({
          model: spec.model,
          complete: calls.complete,
          promptFormat: spec.promptFormat,
        })
      case 'prompt-guard':
        return createPromptGuardClassifier({
          classify: calls.classify(spec.provider, spec.path),
          threshold: spec.threshold,
        })
      case 'rules':
        return createRuleClassifier({ rules: spec.rules as GuardRule[], compilePattern: compileRe2 })
    }
  } catch (error) {
    throw new GatewayOptionsError(`Invalid guardrails: classifiers.${index}: ${(error as Error).message}`)
  }
}

/** Every classifier on the same text at once; their hits merged, the highest score of a category kept. */
function combine(classifiers: readonly GuardClassifier[]): GuardClassifier {
  if (classifiers.length === 1) return classifiers[0]!
  return {
    id: classifiers.map((classifier) => classifier.id).join('+'),
    async classify(text, phase, context) {
      const verdicts = await Promise.all(classifiers.map((c) => c.classify(text, phase, context)))
      const best = new Map<GuardCategory, number>()
      for (const verdict of verdicts) {
        for (const hit of verdict.categories)
          best.set(hit.category, Math.max(best.get(hit.category) ?? 0, hit.score))
      }
      const categories = GUARD_CATEGORIES.flatMap((category) =>
        best.has(category) ? [{ category, score: best.get(category)! }] : [],
      )
      return { unsafe: verdicts.some((verdict) => verdict.unsafe), categories }
    },
  }
}

/** One check's profiles, compiled together, and which policies (with which action) each profile serves. */
export interface DlpCheck {
  readonly compiled: CompiledDlpProfiles
  readonly policiesOf: ReadonlyMap<string, readonly { id: string; action: DlpAction }[]>
}

export interface CompiledDlp {
  readonly request: DlpCheck | undefined
  readonly response: DlpCheck | undefined
  readonly mask: DlpMask
  readonly holdBackChars: number | undefined
}

export function compileDlp(option: z.output<typeof dlpOption>): CompiledDlp {
  const custom = new Map(option.profiles.map((profile) => [profile.id, profile]))
  const check = (which: 'request' | 'response'): DlpCheck | undefined => {
    const policies = option.policies.filter((policy) => policy.enabled && policy.check.includes(which))
    if (policies.length === 0) return undefined
    const policiesOf = new Map<string, { id: string; action: DlpAction }[]>()
    for (const policy of policies) {
      for (const profile of policy.profiles) {
        const list = policiesOf.get(profile) ?? []
        list.push({ id: policy.id, action: policy.action })
        policiesOf.set(profile, list)
      }
    }
    const profiles = [...policiesOf.keys()].map((id) => custom.get(id) ?? id)
    const compiled = compileDlpProfiles(profiles, { maxScanChars: option.maxScanChars })
    return { compiled, policiesOf }
  }
  return {
    request: check('request'),
    response: check('response'),
    mask: option.mask,
    holdBackChars: option.holdBackChars,
  }
}
