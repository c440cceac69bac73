/**
 * Guardrail classifiers: the reference's categories (S1 to S13, P1), Llama Guard, Prompt Guard and rule
 * classifiers, and wrappers that bound their time (`withDeadline`) and the text of each call
 * (`withChunking`). No gateway wiring: the guard step builds on these.
 */
export {
  type ChunkOptions,
  MAX_CONCURRENCY,
  MIN_CHUNK_CHARS,
  mapBounded,
  splitText,
  withChunking,
} from './chunk.js'
export { withDeadline } from './deadline.js'
export { GuardClassifierUnavailable, type GuardClassifierUnavailableReason } from './errors.js'
export { createKeywordMatcher, type KeywordEntry, type KeywordMatcher } from './keywords.js'
export {
  buildLlamaGuardPrompt,
  createLlamaGuardClassifier,
  LLAMA_GUARD_CATEGORIES,
  type LlamaGuardComplete,
  type LlamaGuardMessage,
  type LlamaGuardOptions,
  type LlamaGuardOutput,
  type LlamaGuardPromptFormat,
  type LlamaGuardPromptOptions,
  type LlamaGuardRequest,
  type LlamaGuardTurn,
  parseLlamaGuardOutput,
} from './llama-guard.js'
export {
  createPromptGuardClassifier,
  PROMPT_GUARD_ATTACK_LABELS,
  PROMPT_GUARD_BENIGN_LABELS,
  type PromptGuardClassify,
  type PromptGuardOptions,
  type TextClassification,
} from './prompt-guard.js'
export {
  type CompiledPattern,
  type CompilePattern,
  createRuleClassifier,
  type GuardRule,
  MAX_RULES,
  type RuleClassifierOptions,
} from './rules.js'
export {
  type ClassifyContext,
  GUARD_CATEGORIES,
  GUARD_CATEGORY_NAMES,
  type GuardCategory,
  type GuardClassifier,
  type GuardHit,
  type GuardPhase,
  type GuardVerdict,
  type HazardCategory,
  isGuardCategory,
} from './types.js'
export { mergeVerdicts, SAFE_VERDICT, verdictOf } from './verdict.js'
