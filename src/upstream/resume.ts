import type { Readable } from 'node:stream'
import { GatewayError } from '../errors.js'
import { isRecord, parseJson } from '../json.js'
import { withFields } from '../objects.js'
import { terminalEvent } from '../providers/dialects/terminal.js'
import type { UpstreamTarget } from '../target.js'
import type { GatewayResponse } from '../types.js'
import type { BodyEnd } from './body.js'
import { SSEParser } from './sse.js'
import { readsFrom, wrappedBody } from './wrapped-body.js'

/**
 * How a fallback goes on with an answer whose stream failed after part of it reached the client:
 * - `prefill`: the target was given the part as the start of its own answer (an assistant prefill) and
 *   continues it; everything it says is new.
 * - `replay`: the target answered the original request anew; its answer must begin with the part the
 *   client has (a deterministic model's does), and only what follows that part is sent.
 */
export type ResumeMode = 'prefill' | 'replay'

/** A fallback's answer that goes on where a failed stream stopped: OpenAI chat chunks, as the client reads. */
export interface Continuation {
  readonly response: GatewayResponse
  readonly mode: ResumeMode
}

/**
 * Asks the targets left to go on with `partial`, the answer text the client has; `undefined` when the
 * failure is not one to move on from or none of them answered.
 */
export type ContinueAfter = (partial: string, failure: GatewayError) => Promise<Continuation | undefined>

const DONE = 'data: [DONE]\n\n'

/**
 * An OpenAI chat stream that survives a failure after its commit. Events pass as they come, while the
 * answer's text is kept; when the stream fails (a cut, a stall, an in-band error), its terminal error
 * event is held back and `continueAfter` asks the next target to go on from that text. The continuation's
 * chunks are sent on as the same completion (its id, no second role chunk); when no target can go on, or
 * a replayed answer turns out different from what was sent, the held error ends the stream: a failed
 * answer never looks complete, and never turns into two answers run together.
 *
 * Only single-choice text answers resume: one that began a tool call ends with its error as before.
 */
export function resumable(
  first: GatewayResponse,
  continueAfter: ContinueAfter,
): GatewayResponse & { body: Readable } {
  let settled: BodyEnd | undefined
  let current = first
  const body: Readable = wrappedBody(
    relay(first, continueAfter, {
      settle: (end) => {
        settled ??= end
      },
      switchTo: (response) => {
        current = response
        readsFrom(body, response.body as Readable)
      },
    }),
    first.body as Readable,
  )
  return {
    status: first.status,
    headers: first.headers,
    body,
    outcome: () => settled ?? current.outcome?.(),
  }
}

interface Relay {
  settle(end: BodyEnd): void
  switchTo(response: GatewayResponse): void
}

async function* relay(
  first: GatewayResponse,
  continueAfter: ContinueAfter,
  control: Relay,
): AsyncGenerator<string> {
  const answer = new AnswerSoFar()
  let stage: { response: GatewayResponse; mode: ResumeMode | undefined } = {
    response: first,
    mode: undefined,
  }
  for (;;) {
    const read = readStage(stage.response, stage.mode, answer)
    let step = await read.next()
    while (!step.done) {
      yield step.value
      step = await read.next()
    }
    const end = step.value
    if (end.complete) {
      control.settle({ complete: true })
      yield DONE
      return
    }
    const next = answer.resumable ? await continueAfter(answer.text, end.error) : undefined
    if (next === undefined) {
      control.settle({ complete: false, error: end.error })
      yield end.heldError ?? terminalEvent('openai', end.error) ?? ''
      return
    }
    control.switchTo(next.response)
    stage = { response: next.response, mode: next.mode }
  }
}

type StageEnd =
  | { readonly complete: true }
  | { readonly complete: false; readonly error: GatewayError; readonly heldError: string | undefined }

/**
 * Relays one stage's events: the first answer's as they are, a continuation's re-framed as part of the
 * same completion. Returns how the stage ended, with its terminal error event held back. An event whose
 * data is not JSON is a failure like a cut: it is never sent, and the answer is resumed before it.
 */
async function* readStage(
  response: GatewayResponse,
  mode: ResumeMode | undefined,
  answer: AnswerSoFar,
): AsyncGenerator<string, StageEnd> {
  const source = response.body as Readable
  const parser = new SSEParser()
  const continuing = mode === undefined ? undefined : new Continuing(answer, mode)
  let heldError: string | undefined
  let finished = false
  // Why the stage was given up while its events still came: a broken event, a replay that differs.
  let givenUp: GatewayError | undefined
  const onEvents = (events: { data: string }[]): string => {
    let out = ''
    for (const { data } of events) {
      if (data === '[DONE]') {
        finished = true
        continue
      }
      const chunk = parseJson(data)
      if (chunk === undefined) {
        givenUp = new GatewayError('INVALID_PROVIDER_RESPONSE', "an event's data is not JSON")
        return out
      }
      if (isRecord(chunk) && chunk.error !== undefined && chunk.choices === undefined) {
        heldError = `data: ${data}\n\n`
        continue
      }
      if (continuing === undefined) {
        answer.read(chunk)
        out += `data: ${data}\n\n`
        continue
      }
      out += continuing.reframe(chunk)
      if (continuing.mismatch) {
        givenUp = replayMismatch()
        return out
      }
    }
    return out
  }
  for await (const bytes of source) {
    const out = onEvents(parser.push(bytes as Buffer))
    if (out !== '') yield out
    // Leaving the loop destroys the source, which cancels its upstream call.
    if (givenUp !== undefined) return { complete: false, error: givenUp, heldError: undefined }
  }
  const out = onEvents(parser.end())
  if (out !== '') yield out
  if (givenUp !== undefined) return { complete: false, error: givenUp, heldError: undefined }
  if (finished && heldError === undefined) return { complete: true }
  const failure = response.outcome?.()
  const error =
    failure !== undefined && !failure.complete
      ? failure.error
      : new GatewayError('UPSTREAM_INTERRUPTED', 'the stream ended before its last event')
  return { complete: false, error, heldError }
}

function replayMismatch(): GatewayError {
  return new GatewayError(
    'UPSTREAM_INTERRUPTED',
    "the fallback's answer did not begin with the part of the answer already sent",
  )
}

/** The answer's text as the client has it, and whether it can still be resumed. */
class AnswerSoFar {
  text = ''
  /** The first stream's completion id: a continuation's chunks carry it too. */
  id: unknown
  resumable = true

  read(chunk: unknown): void {
    if (!isRecord(chunk)) return
    this.id ??= chunk.id
    const { choices } = chunk
    if (!Array.isArray(choices)) return
    for (const choice of choices) {
      if (!isRecord(choice)) continue
      // Several choices, a tool call or a refusal cannot be carried on by a prefill.
      if (choice.index !== undefined && choice.index !== 0) this.resumable = false
      // A finished answer (only its usage chunk is missing, say) has nothing left to carry on: a
      // continuation would repeat its finish, or run on past it.
      if (choice.finish_reason !== undefined && choice.finish_reason !== null) this.resumable = false
      const delta = choice.delta
      if (!isRecord(delta)) continue
      if (delta.tool_calls !== undefined || delta.function_call !== undefined) this.resumable = false
      if (isRefusal(delta)) this.resumable = false
      if (typeof delta.content === 'string') this.text += delta.content
    }
  }
}

// Where OpenAI-compatible providers put a delta's reasoning: DeepSeek's `reasoning_content`, OpenRouter's
// and Groq's `reasoning` (with OpenRouter's structured `reasoning_details`).
const REASONING_FIELDS = ['reasoning_content', 'reasoning', 'reasoning_details'] as const

/** Whether a delta carries refusal text: an answer of its own, never one to run on after another. */
function isRefusal(delta: Record<string, unknown>): boolean {
  return typeof delta.refusal === 'string' && delta.refusal !== ''
}

/** A continuation's chunks made part of the answer the client is reading. */
class Continuing {
  readonly #answer: AnswerSoFar
  readonly #mode: ResumeMode
  // The text the client had when this continuation began, and (replay) how much of it the new answer has
  // matched so far.
  readonly #sent: string
  #matched = 0
  // Prefill: the prefill was sent without its trailing white space (providers refuse it), which the
  // client already has; the continuation's own leading white space is dropped once.
  #trimLeading: boolean
  mismatch = false

  constructor(answer: AnswerSoFar, mode: ResumeMode) {
    this.#answer = answer
    this.#mode = mode
    this.#sent = answer.text
    this.#trimLeading = mode === 'prefill' && answer.text !== answer.text.trimEnd()
  }

  reframe(chunk: unknown): string {
    if (!isRecord(chunk) || this.mismatch) return ''
    const choices = Array.isArray(chunk.choices) ? chunk.choices : []
    const kept: unknown[] = []
    for (const choice of choices) {
      if (!isRecord(choice)) continue
      const delta = isRecord(choice.delta) ? { ...choice.delta } : {}
      delete delta.role
      // The continuation thinks anew about an answer whose start (and the reasoning behind it) the client
      // already has: its reasoning sent on would run two lines of thought together, or into the answer.
      for (const field of REASONING_FIELDS) delete delta[field]
      const finished = choice.finish_reason !== undefined && choice.finish_reason !== null
      if (typeof delta.content === 'string') {
        const content = this.#newText(delta.content)
        if (content === '') delete delta.content
        else delta.content = content
      }
      // A replayed answer that turns to something else (a tool call, its end) before it matched the part
      // already sent is a different answer.
      const turns =
        finished || delta.tool_calls !== undefined || delta.function_call !== undefined || isRefusal(delta)
      if (this.#mode === 'replay' && this.#matched < this.#sent.length && turns) this.mismatch = true
      if (this.mismatch) return ''
      if (Object.keys(delta).length === 0 && !finished) continue
      kept.push(withFields(choice, { delta }))
    }
    const usage = chunk.usage
    if (kept.length === 0 && (usage === undefined || usage === null)) return ''
    const reframed = withFields(chunk, { id: this.#answer.id ?? chunk.id, choices: kept })
    this.#answer.read(reframed)
    return `data: ${JSON.stringify(reframed)}\n\n`
  }

  #newText(content: string): string {
    if (this.#mode === 'prefill') {
      if (!this.#trimLeading) return content
      const trimmed = content.trimStart()
      if (trimmed !== '') this.#trimLeading = false
      return trimmed
    }
    const sent = this.#sent
    if (this.#matched >= sent.length) return content
    const expected = sent.slice(this.#matched, this.#matched + content.length)
    if (!content.startsWith(expected)) {
      this.mismatch = true
      return ''
    }
    this.#matched += expected.length
    return content.slice(expected.length)
  }
}

/**
 * `target` asked to go on with `partial` as the start of its answer, in the way its provider takes a
 * prefill; `undefined` when it takes none, or there is nothing to prefill. Trailing white space is left out:
 * providers refuse a prefill that ends with it.
 */
export function prefilledTarget(target: UpstreamTarget, partial: string): UpstreamTarget | undefined {
  const how = target.provider.prefill
  const text = partial.trimEnd()
  if (how === undefined || text === '' || target.body === undefined) return undefined
  const json = parseJson(target.body.toString('utf8'))
  if (!isRecord(json) || !Array.isArray(json.messages)) return undefined
  const prefill =
    how === 'prefix'
      ? { role: 'assistant', content: text, prefix: true }
      : { role: 'assistant', content: text }
  const { 'content-length': _length, ...headers } = target.headers
  return {
    ...target,
    headers,
    body: Buffer.from(JSON.stringify({ ...json, messages: [...json.messages, prefill] })),
  }
}
