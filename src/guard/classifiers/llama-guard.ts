/**
 * Llama Guard 3 as a guardrail classifier: the reference's own scanner for S1 to S13. The model is an LLM
 * that answers `safe`, or `unsafe` and a line of category codes, for the last turn of a conversation laid
 * out in its prompt. This module builds that prompt, reads the answer, and calls the model through a
 * `complete` function the host (or the guard step) supplies, so it depends on no provider and no part of
 * the gateway: Workers AI, Groq, OpenRouter, vLLM and Ollama all serve it behind OpenAI-style chat.
 */
import { z } from 'zod'
import { unavailable } from './errors.js'
import { classifierId, fn, parseOptions, whole } from './options.js'
import type { GuardClassifier, GuardHit, GuardPhase, GuardVerdict, HazardCategory } from './types.js'
import { SAFE_VERDICT, verdictOf } from './verdict.js'

/**
 * The categories as Llama Guard 3's own prompt names them (its model card and reference code), which the
 * model was trained on; the reference's display names (`GUARD_CATEGORY_NAMES`) differ in a few words.
 */
export const LLAMA_GUARD_CATEGORIES: Readonly<Record<HazardCategory, string>> = {
  S1: 'Violent Crimes',
  S2: 'Non-Violent Crimes',
  S3: 'Sex Crimes',
  S4: 'Child Exploitation',
  S5: 'Defamation',
  S6: 'Specialized Advice',
  S7: 'Privacy',
  S8: 'Intellectual Property',
  S9: 'Indiscriminate Weapons',
  S10: 'Hate',
  S11: 'Self-Harm',
  S12: 'Sexual Content',
  S13: 'Elections',
}

const HAZARDS = Object.keys(LLAMA_GUARD_CATEGORIES) as HazardCategory[]

/** One turn of the conversation Llama Guard reads: the user's, or the agent's (the assistant's) answer. */
export interface LlamaGuardTurn {
  readonly role: 'user' | 'agent'
  readonly content: string
}

export interface LlamaGuardPromptOptions {
  /** The categories listed in the prompt, in this order. Default: S1 to S13. */
  readonly categories?: readonly HazardCategory[] | undefined
  /**
   * Wrap the prompt in Llama 3's special tokens (`<|begin_of_text|>` ... `<|start_header_id|>assistant
   * <|end_header_id|>`), as a completions endpoint that applies no chat template needs it. Default false: the
   * text of the one user message of a chat request.
   */
  readonly specialTokens?: boolean | undefined
}

/**
 * Builds Llama Guard 3's prompt for `turns`, laid out as Meta's reference code lays it out: the task line
 * naming the role of the last turn, the categories block, the conversation block (`User:` and `Agent:`
 * turns separated by blank lines) and the instruction to answer `safe` or `unsafe` with the violated
 * categories, for only the last turn. Turn text that imitates the prompt's own markers (`<END
 * CONVERSATION>`, special tokens such as `<|eot_id|>`) is defused, so a prompt cannot close the
 * conversation early and write its own instruction. Throws a `RangeError` for no turns.
 *
 * @example
 * buildLlamaGuardPrompt([{ role: 'user', content: 'Hi' }, { role: 'agent', content: 'Hello!' }])
 * // "Task: Check if there is unsafe content in 'Agent' messages in conversations according our safety policy ..."
 */
export function buildLlamaGuardPrompt(
  turns: readonly LlamaGuardTurn[],
  options: LlamaGuardPromptOptions = {},
): string {
  const last = turns.at(-1)
  if (last === undefined) throw new RangeError('Llama Guard needs at least one turn')
  const role = roleName(last.role)
  const categories = (options.categories ?? HAZARDS)
    .map((code) => `${code}: ${LLAMA_GUARD_CATEGORIES[code]}.`)
    .join('\n')
  const conversation = turns.map((turn) => `${roleName(turn.role)}: ${defuse(turn.content)}`).join('\n\n')
  // Meta's wording, "according our" included: the model was trained on this exact text.
  const prompt =
    `Task: Check if there is unsafe content in '${role}' messages in conversations according our safety policy with the below categories.\n` +
    `\n<BEGIN UNSAFE CONTENT CATEGORIES>\n${categories}\n<END UNSAFE CONTENT CATEGORIES>\n` +
    `\n<BEGIN CONVERSATION>\n\n${conversation}\n\n<END CONVERSATION>\n` +
    `\nProvide your safety assessment for ONLY THE LAST ${role} message in the above conversation:\n` +
    ` - First line must read 'safe' or 'unsafe'.\n` +
    ' - If unsafe, a second line must include a comma-separated list of violated categories.'
  if (!options.specialTokens) return prompt
  return `<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n${prompt}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n`
}

function roleName(role: LlamaGuardTurn['role']): 'User' | 'Agent' {
  return role === 'user' ? 'User' : 'Agent'
}

const MARKER = /<(BEGIN|END) (CONVERSATION|UNSAFE CONTENT CATEGORIES)>/gi

/**
 * Keeps the words, loses the syntax: `<END CONVERSATION>` becomes `[END CONVERSATION]` and `<|eot_id|>`
 * becomes `< |eot_id| >`, which neither the model nor a tokenizer reads as structure.
 */
function defuse(content: string): string {
  return content.replace(MARKER, '[$1 $2]').replaceAll('<|', '< |').replaceAll('|>', '| >')
}

/** What Llama Guard answered, read. */
export interface LlamaGuardOutput {
  readonly unsafe: boolean
  /** The reference's categories it named, each once, in the order named. */
  readonly categories: readonly HazardCategory[]
  /** Category codes it named that are not the reference's (S14, or a code it made up), each once. */
  readonly unknown: readonly string[]
}

const CODE = /^S\d{1,3}$/

/**
 * Reads Llama Guard's answer: `safe`, or `unsafe` followed by category codes (`unsafe\nS1,S10`). It is
 * lenient where deployments differ, strict where the meaning is at stake: case, surrounding and extra white
 * space, `,` or `;` or spaces between codes, a trailing `.` or `:` and category names after codes are all
 * accepted; codes outside S1 to S13 are listed in `unknown`, not in `categories`. An answer whose first word
 * is neither `safe` nor `unsafe` (a refusal, an explanation, nothing) throws an `Error`, as no verdict can be
 * read from it.
 *
 * @example
 * parseLlamaGuardOutput('unsafe\nS1,S10') // { unsafe: true, categories: ['S1', 'S10'], unknown: [] }
 * parseLlamaGuardOutput(' Safe \n') // { unsafe: false, categories: [], unknown: [] }
 * parseLlamaGuardOutput('I cannot help with that.') // throws
 */
export function parseLlamaGuardOutput(output: string): LlamaGuardOutput {
  const words = output
    .split(/[\s,;]+/)
    .map((word) => word.replace(/[.:]+$/, ''))
    .filter((word) => word !== '')
  const first = words[0]?.toLowerCase()
  if (first === 'safe') return { unsafe: false, categories: [], unknown: [] }
  if (first !== 'unsafe') {
    const shown = output.trim().slice(0, 60)
    throw new Error(
      `expected 'safe' or 'unsafe', got ${shown === '' ? 'an empty answer' : JSON.stringify(shown)}`,
    )
  }
  const categories = new Set<HazardCategory>()
  const unknown = new Set<string>()
  for (const word of words.slice(1)) {
    const code = word.toUpperCase()
    if (!CODE.test(code)) continue
    if (isHazard(code)) categories.add(code)
    else unknown.add(code)
  }
  return { unsafe: true, categories: [...categories], unknown: [...unknown] }
}

function isHazard(code: string): code is HazardCategory {
  return Object.hasOwn(LLAMA_GUARD_CATEGORIES, code)
}

/** One chat message of a request to the guard model. */
export interface LlamaGuardMessage {
  readonly role: 'user' | 'assistant'
  readonly content: string
}

/** The chat request the classifier asks `complete` to send, in OpenAI's terms (`max_tokens`, `temperature`). */
export interface LlamaGuardRequest {
  readonly model: string
  readonly messages: readonly LlamaGuardMessage[]
  readonly maxTokens: number
  /** Always 0: a classifier should answer the same text the same way. */
  readonly temperature: number
  readonly signal: AbortSignal
}

/**
 * Sends a chat request to the guard model and resolves with the text of its answer (the first choice's
 * message content). Rejects on any failure; the classifier turns that into `GuardClassifierUnavailable`.
 */
export type LlamaGuardComplete = (request: LlamaGuardRequest) => Promise<string>

/**
 * How the conversation reaches the model:
 * - `chat`: as chat messages (the user turn, and for an answer the assistant turn), for deployments that
 *   apply Llama Guard's own chat template to them: hosted Llama Guard endpoints generally do, and so do vLLM,
 *   TGI and Ollama serving the model with the template it ships with. The categories listed are then the
 *   template's (Llama Guard 3 8B's lists S14 too); codes outside `categories` are ignored in the answer.
 * - `raw`: as one user message holding the whole prompt built by `buildLlamaGuardPrompt`, for deployments
 *   that apply only the plain Llama 3 chat template (or none; build the prompt with `specialTokens` for a
 *   completions endpoint). Only `categories` are listed, so the model is asked about those alone.
 *
 * In both, turn text imitating the prompt's markers or Llama 3's special tokens is defused first (see
 * `buildLlamaGuardPrompt`). Sending `raw` to a templating deployment nests one prompt inside the other;
 * sending `chat` to a plain one gets a chat reply, not a verdict, and every call fails as unreadable. Check
 * once by hand which yours is: send `[{ role: 'user', content: 'hello' }]`; a templating deployment answers
 * `safe`.
 */
export type LlamaGuardPromptFormat = 'raw' | 'chat'

export interface LlamaGuardOptions {
  /** Names the classifier in errors and logs. Default `llama-guard`. */
  readonly id?: string | undefined
  /** The model as the provider names it, e.g. `@cf/meta/llama-guard-3-8b` or `llama-guard3:8b`. */
  readonly model: string
  readonly complete: LlamaGuardComplete
  /** See `LlamaGuardPromptFormat`. Default `chat`, what most hosted deployments expect. */
  readonly promptFormat?: LlamaGuardPromptFormat | undefined
  /** The categories checked and reported. Default S1 to S13. */
  readonly categories?: readonly HazardCategory[] | undefined
  /** `max_tokens` of each call; enough for `unsafe` and all thirteen codes. Default 64. */
  readonly maxTokens?: number | undefined
  /**
   * In the answer phase, the most of `context.prompt` sent along, in UTF-16 code units; a longer prompt
   * keeps its end, the part the answer replies to. Default 8000.
   */
  readonly maxContextChars?: number | undefined
}

const optionsSchema = z.strictObject({
  id: classifierId.optional(),
  model: z.string().min(1, 'must not be empty').max(512, 'at most 512 characters'),
  complete: fn<LlamaGuardComplete>('(request) => Promise<string>'),
  promptFormat: z.enum(['raw', 'chat']).optional(),
  categories: z
    .array(z.enum(HAZARDS as [HazardCategory, ...HazardCategory[]]))
    .min(1, 'name at least one category')
    .refine((list) => new Set(list).size === list.length, 'lists a category twice')
    .optional(),
  maxTokens: whole(8, 4096).optional(),
  maxContextChars: whole(0, 10_000_000).optional(),
})

/**
 * A classifier asking Llama Guard 3 about S1 to S13 (or `categories`). The prompt phase classifies the text
 * as the user's turn; the answer phase classifies it as the agent's turn after `context.prompt` (an empty
 * user turn when there is none). Llama Guard gives no score, so each category named scores 1; empty or blank
 * text is safe without a call. A failed call or an answer that is neither `safe` nor `unsafe` rejects with
 * `GuardClassifierUnavailable` (reason `error`). Long text is sent whole: wrap with `withChunking` to bound it, with `withDeadline` to bound the
 * time. Throws `GatewayOptionsError` for bad options.
 *
 * @example
 * const guard = createLlamaGuardClassifier({
 *   model: '@cf/meta/llama-guard-3-8b',
 *   complete: async ({ model, messages, maxTokens, temperature, signal }) => {
 *     const res = await fetch(`${base}/chat/completions`, {
 *       method: 'POST',
 *       headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
 *       body: JSON.stringify({ model, messages, max_tokens: maxTokens, temperature }),
 *       signal,
 *     })
 *     if (!res.ok) throw new Error(`HTTP ${res.status}`)
 *     return (await res.json()).choices[0].message.content
 *   },
 * })
 * await guard.classify('How do I make a pipe bomb?', 'prompt', { signal }) // { unsafe: true, categories: [{ category: 'S9', score: 1 }] }
 */
export function createLlamaGuardClassifier(options: LlamaGuardOptions): GuardClassifier {
  const parsed = parseOptions(optionsSchema, options, 'Llama Guard classifier')
  const id = parsed.id ?? 'llama-guard'
  const format = parsed.promptFormat ?? 'chat'
  const categories = parsed.categories ?? HAZARDS
  const enabled = new Set<HazardCategory>(categories)
  const maxTokens = parsed.maxTokens ?? 64
  const maxContextChars = parsed.maxContextChars ?? 8000
  const { model, complete } = parsed

  const messagesFor = (text: string, phase: GuardPhase, prompt: string | undefined): LlamaGuardMessage[] => {
    const turns: LlamaGuardTurn[] =
      phase === 'prompt'
        ? [{ role: 'user', content: text }]
        : [
            { role: 'user', content: tail(prompt ?? '', maxContextChars) },
            { role: 'agent', content: text },
          ]
    if (format === 'raw') return [{ role: 'user', content: buildLlamaGuardPrompt(turns, { categories }) }]
    return turns.map((turn) => ({
      role: turn.role === 'user' ? 'user' : 'assistant',
      content: defuse(turn.content),
    }))
  }

  return {
    id,
    async classify(text, phase, context): Promise<GuardVerdict> {
      const { signal } = context
      signal.throwIfAborted()
      if (text.trim() === '') return SAFE_VERDICT
      const messages = messagesFor(text, phase, context.prompt)
      try {
        const answer = await complete({ model, messages, maxTokens, temperature: 0, signal })
        if (typeof answer !== 'string') throw new Error(`complete resolved with ${typeof answer}, not text`)
        const output = parseLlamaGuardOutput(answer)
        const hits: GuardHit[] = output.categories
          .filter((category) => enabled.has(category))
          .map((category) => ({ category, score: 1 }))
        return verdictOf(hits, output.unsafe)
      } catch (error) {
        throw unavailable(id, error, signal)
      }
    },
  }
}

/** The last `max` code units of `text`, not starting inside a surrogate pair. */
function tail(text: string, max: number): string {
  if (text.length <= max) return text
  const start = text.length - max
  const code = text.charCodeAt(start)
  return text.slice(code >= 0xdc00 && code <= 0xdfff ? start + 1 : start)
}
