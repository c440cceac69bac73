import { Readable } from 'node:stream'
import type { z } from 'zod'
import type { GatewayServices } from '../context.js'
import { GatewayError, toGatewayError } from '../errors.js'
import {
  GuardClassifierUnavailable,
  type GuardPhase,
  type GuardVerdict,
  type LlamaGuardComplete,
  type PromptGuardClassify,
  type TextClassification,
} from '../guard/classifiers/index.js'
import {
  type CompiledDlp,
  type CompiledGuardrails,
  compileDlp,
  compileGuardrails,
  dlpOption,
  guardrailsOption,
} from '../guard/config.js'
import type { DlpMask } from '../guard/dlp/index.js'
import { DlpCollector, type DlpResult, dlpHeader, scanJson, strongestAction } from '../guard/dlp-json.js'
import {
  framingOf,
  guardStream,
  NDJSON_FRAMING,
  ndjsonTerminalEvent,
  type StreamGuard,
} from '../guard/stream.js'
import { parseJsonBody, stringifyClientJson, stringifyProviderJson } from '../json.js'
import type { LogGuard, LogGuardHit } from '../logs/types.js'
import { withFields } from '../objects.js'
import { parseWith } from '../options.js'
import { dialectOf } from '../providers/dialects/index.js'
import { OLLAMA_TEXT } from '../providers/dialects/text.js'
import type { UpstreamTarget } from '../target.js'
import type { GatewayContext, GatewayRequest, GatewayResponse, Step } from '../types.js'
import { readAll } from '../upstream/body.js'

export interface GuardOptions {
  readonly guardrails?: z.input<typeof guardrailsOption> | undefined
  readonly dlp?: z.input<typeof dlpOption> | undefined
}

/** Most bytes of a guard model's answer read back. */
const MAX_CLASSIFIER_ANSWER_BYTES = 1024 * 1024

/**
 * Guardrails and DLP, the `guard` step: the prompt before the call (its categories and DLP findings flag,
 * block with 424/2016 or 400/2029, or are redacted in every target's body), the answer after it (2017,
 * 2030), a streamed answer as it flows (see `guardStream`). Findings are kept in `ctx.state.guard` for the
 * log record and, for DLP, in the `cf-aig-dlp` header; the matched text never is.
 *
 * Model classifiers (`llama-guard`, `prompt-guard`) call their provider through the gateway's own forward
 * path, with its keys, timeouts and retries. A classifier that fails or passes `timeoutMs` answers 503
 * (2132) where a block rule applies in that phase, unless `whenUnavailable: 'pass'`.
 *
 * @example
 * guard({ dlp: { policies: [{ id: 'no-cards', profiles: ['financial'], action: 'redact' }] } })
 */
export function guard(options: GuardOptions): Step {
  // A step serves the gateway it is in; the classifiers' calls go through that gateway, known at its first request.
  let services: GatewayServices | undefined
  const own = (request: GatewayRequest) => {
    if (services === undefined)
      throw new GatewayError('INTERNAL', 'the guard step has not served a request yet')
    return services.call(request)
  }
  const guardrails =
    options.guardrails === undefined
      ? undefined
      : compileGuardrails(parseWith(guardrailsOption, options.guardrails, 'guardrails'), {
          complete: completeThrough(own),
          classify: (provider, path) => classifyThrough(own, provider, path),
        })
  const dlp = options.dlp === undefined ? undefined : compileDlp(parseWith(dlpOption, options.dlp, 'dlp'))

  return async function guard(ctx, next) {
    services ??= ctx.gateway
    const targets = ctx.state.targets
    if (targets === undefined || targets.length === 0) return next()
    const record: GuardRecord = { dlp: [], hits: { prompt: [], answer: [] }, unavailable: [], blocked: false }

    const keep = () => {
      ctx.state.guard = logGuard(record)
      const header = dlpHeader(record.dlp)
      if (header !== undefined) ctx.responseHeaders['cf-aig-dlp'] = header
    }
    try {
      if (dlp?.request !== undefined) {
        try {
          ctx.state.targets = scanRequest(dlp, targets, record.dlp, await requestJson(ctx))
        } finally {
          // Blocked or not, the log keeps a masked copy.
          if ((record.dlp[0]?.hits.length ?? 0) > 0)
            ctx.state.loggedRequestBody = await maskedForLog(ctx, dlp)
        }
      }
      const first = ctx.state.targets![0]!
      const promptText = promptOf(first)
      let verdict: Promise<GatewayError | undefined> | undefined
      if (guardrails?.guards.prompt && promptText !== '') {
        verdict = judge(guardrails, 'prompt', promptText, undefined, ctx.request.signal, record)
        if (!guardrails.parallel) {
          const blocked = await verdict
          if (blocked !== undefined) throw blocked
          verdict = undefined
        } else {
          // Awaited once the call answered; a failure before then must not count as unhandled.
          verdict.catch(() => {})
        }
      }
      await next().finally(async () => {
        // In parallel, the answer waits for the prompt's verdict, and never goes out when it blocks.
        const blocked = await verdict
        if (blocked === undefined) return
        discard(ctx.response)
        throw blocked
      })
      await guardAnswer(ctx, { guardrails, dlp, promptText, record, keep })
    } finally {
      keep()
    }
  }
}

/** What the step saw of one request, for its log record and header. */
interface GuardRecord {
  readonly dlp: DlpResult[]
  readonly hits: { prompt: LogGuardHit[]; answer: LogGuardHit[] }
  readonly unavailable: GuardPhase[]
  /** A guardrail category blocked the request or its answer. */
  blocked: boolean
}

/** DLP on what goes to the provider: each target's body (the first one's findings are recorded). */
function scanRequest(
  dlp: CompiledDlp,
  targets: readonly UpstreamTarget[],
  results: DlpResult[],
  request: { body: Buffer | undefined; json: unknown },
): UpstreamTarget[] {
  const check = dlp.request!
  const scanned = new Map<Buffer, Buffer>()
  const out = targets.map((target, index) => {
    const { body } = target
    if (body === undefined) return target
    let next = scanned.get(body)
    if (next === undefined) {
      const collector = new DlpCollector(check, 'REQUEST')
      // A passthrough target sends the caller's own bytes, already parsed once.
      const json = body === request.body ? request.json : parseJsonBody(body)
      if (json === undefined) return target
      const redacted = scanJson(collector, json, dlp.mask)
      if (index === 0) results.push(collector.result())
      if (collector.blocks) {
        throw new GatewayError('DLP_REQUEST_BLOCKED', describeDlp(collector.result()))
      }
      // A universal request's steps were written as JSON once already: only a body sent as it came can be
      // nested too deeply to write.
      next = redacted === json ? body : Buffer.from(stringifyClientJson(redacted, 'INVALID_REQUEST_BODY'))
      scanned.set(body, next)
    }
    if (next === body) return target
    const headers = { ...target.headers }
    if (headers['content-length'] !== undefined) headers['content-length'] = String(next.length)
    return withFields(target, { body: next, headers })
  })
  return out
}

/** The caller's body and its JSON, read once for every step that needs them. */
async function requestJson(ctx: GatewayContext): Promise<{ body: Buffer | undefined; json: unknown }> {
  const json = await ctx.readJson()
  return { body: ctx.bodyIfRead(), json }
}

/**
 * The caller's own body (before any translation) with every DLP finding masked, whatever its action: the
 * log must not keep what DLP exists to keep out of other hands.
 */
async function maskedForLog(ctx: GatewayContext, dlp: CompiledDlp): Promise<Buffer | undefined> {
  const json = await ctx.readJson()
  if (json === undefined) return undefined
  const masked = scanJson(new DlpCollector(dlp.request!, 'REQUEST'), json, dlp.mask, { maskAll: true })
  try {
    return Buffer.from(stringifyClientJson(masked, 'INVALID_REQUEST_BODY'))
  } catch (error) {
    // Too deeply nested to write (and refused for it): the log keeps no body rather than the caller's own.
    if (error instanceof GatewayError) return Buffer.alloc(0)
    throw error
  }
}

function describeDlp(result: DlpResult): string {
  const entries = [...new Set(result.hits.map((hit) => `${hit.profileId}/${hit.entryId}`))]
  return `found ${entries.join(', ')}`
}

/** The caller's words, as the first target's provider reads them. */
function promptOf(target: UpstreamTarget): string {
  if (target.body === undefined) return ''
  return dialectOf(target.provider.spec.dialect).text.prompt(parseJsonBody(target.body))
}

/** Guards the answer once the provider answered: a whole body now, a stream as it flows. */
async function guardAnswer(
  ctx: GatewayContext,
  setup: {
    guardrails: CompiledGuardrails | undefined
    dlp: CompiledDlp | undefined
    promptText: string
    record: GuardRecord
    /** Puts what the record holds into the request's state and headers again (a stream's late findings). */
    keep: () => void
  },
): Promise<void> {
  const { guardrails, dlp, promptText, record, keep } = setup
  const response = ctx.response
  const guardsAnswer = guardrails?.guards.answer === true
  if (response === undefined || response.status >= 400 || (!guardsAnswer && dlp?.response === undefined))
    return
  const target = ctx.state.target ?? ctx.state.targets?.[0]
  const dialect = dialectOf(target?.clientDialect ?? 'openai')
  const classify = guardsAnswer
    ? (text: string) => judge(guardrails!, 'answer', text, promptText, ctx.request.signal, record)
    : undefined
  const collector = dlp?.response === undefined ? undefined : new DlpCollector(dlp.response, 'RESPONSE')
  if (collector !== undefined) record.dlp.push(collector.result())
  const logEdits = collector === undefined ? undefined : logEditsOf(ctx)
  const refresh = () => {
    if (collector !== undefined) record.dlp[record.dlp.length - 1] = collector.result()
  }
  const framing = framingOf(response.headers['content-type'], response.body instanceof Readable)
  if (framing !== undefined) {
    // JSON lines are Ollama's own API, whatever dialect the provider is addressed in.
    const lines = framing === NDJSON_FRAMING
    const source =
      response.body instanceof Readable
        ? response.body
        : Readable.from([await bytesOf(response)], { objectMode: false })
    const guarded = guardStream(source, response.outcome, {
      framing,
      text: lines ? OLLAMA_TEXT : dialect.text,
      terminalEvent: lines ? ndjsonTerminalEvent : (error) => dialect.terminalEvent(error),
      dlp: collector && { collector, mask: dlp!.mask, holdBackChars: dlp!.holdBackChars },
      classify: classify && (async (text) => (await classify(text)) ?? undefined),
      chunkChars: guardrails?.streamChunkChars ?? Number.POSITIVE_INFINITY,
      maxEventBytes: ctx.gateway.options.maxEventBytes,
      logEdits,
      onSettled: () => {
        refresh()
        keep()
      },
    })
    const { 'content-length': _length, ...headers } = response.headers
    ctx.response = withFields(response, { headers, body: guarded.body, outcome: guarded.outcome })
    return
  }
  const bytes = await bytesOf(response)
  const json = parseJsonBody(bytes)
  if (json === undefined) {
    ctx.response = withFields(response, { body: bytes, outcome: undefined })
    return
  }
  let body: unknown = json
  if (collector !== undefined) {
    body = scanJson(collector, json, dlp!.mask)
    refresh()
    if (collector.blocks) throw new GatewayError('DLP_RESPONSE_BLOCKED', describeDlp(collector.result()))
  }
  // Ollama's own API (a custom provider, in OpenAI's dialect) answers in its own shape: read as Ollama's.
  const answer = dialect.text.answer(json) || OLLAMA_TEXT.answer(json)
  if (classify !== undefined && answer !== '') {
    const blocked = await classify(answer)
    if (blocked !== undefined) throw blocked
  }
  const out = body === json ? bytes : Buffer.from(stringifyProviderJson(body))
  if (logEdits !== undefined && collector!.flags > 0) {
    logEdits.add({ at: 0, original: out, replacement: answerMaskedForLog(json, collector!, dlp!.mask) })
  }
  const headers = { ...response.headers }
  if (headers['content-length'] !== undefined || out !== bytes) headers['content-length'] = String(out.length)
  ctx.response = withFields(response, { headers, body: out, outcome: undefined })
}

/**
 * Where the guard hands the edits that mask, in the logged answer, findings DLP only flagged (the client
 * gets them as they are); `undefined` when the request's record keeps no body.
 */
function logEditsOf(ctx: GatewayContext): StreamGuard['logEdits'] {
  const { logs } = ctx.gateway.options
  const settings = ctx.state.settings
  if (
    logs === false ||
    !logs.payloads ||
    settings?.collectLog === false ||
    settings?.collectLogPayload === false
  )
    return undefined
  return {
    maxBytes: logs.maxPayloadBytes,
    add: (edit) => {
      ctx.state.loggedResponseEdits ??= []
      ctx.state.loggedResponseEdits.push(edit)
    },
  }
}

/** An answer's JSON with every finding masked, as its log keeps it; no body when it cannot be written. */
function answerMaskedForLog(json: unknown, collector: DlpCollector, mask: DlpMask): Buffer {
  const masked = scanJson(new DlpCollector(collector.check, collector.name), json, mask, { maskAll: true })
  try {
    return Buffer.from(stringifyProviderJson(masked))
  } catch (error) {
    if (error instanceof GatewayError) return Buffer.alloc(0)
    throw error
  }
}

/** A response's body whole; a stream is read up to `maxBytes`, past which it is stopped (502, 2121). */
async function bytesOf(response: GatewayResponse, maxBytes?: number): Promise<Buffer> {
  const { body } = response
  if (body === null) return Buffer.alloc(0)
  if (body instanceof Readable) return readAll(body, maxBytes)
  return typeof body === 'string'
    ? Buffer.from(body)
    : Buffer.from(body.buffer, body.byteOffset, body.byteLength)
}

/** Stops a response nobody will read, so its upstream call is cancelled. */
function discard(response: GatewayResponse | undefined): void {
  if (response?.body instanceof Readable) response.body.destroy()
}

/**
 * Classifies a phase's text and decides: the error that blocks it, or `undefined`. Hits of categories not
 * ignored are recorded; an unavailable classifier refuses (2132) where the phase has a block rule and the
 * gateway refuses then, and is recorded otherwise.
 */
async function judge(
  guardrails: CompiledGuardrails,
  phase: GuardPhase,
  text: string,
  prompt: string | undefined,
  signal: AbortSignal,
  record: GuardRecord,
): Promise<GatewayError | undefined> {
  let verdict: GuardVerdict
  try {
    verdict = await guardrails.classifier.classify(text, phase, { signal, prompt })
  } catch (error) {
    if (!(error instanceof GuardClassifierUnavailable)) throw toGatewayError(error)
    if (!record.unavailable.includes(phase)) record.unavailable.push(phase)
    if (guardrails.blocks[phase] && guardrails.whenUnavailable === 'refuse') {
      return new GatewayError('GUARDRAIL_UNAVAILABLE', `${error.classifier}: ${error.reason}`)
    }
    return undefined
  }
  const actions = guardrails.actions[phase]
  const blocked: string[] = []
  const id = guardrails.classifier.id
  const note = (category: string, score: number, action: string | undefined) => {
    if (action === undefined || action === 'ignore') return
    record.hits[phase].push({ category, score, classifier: id })
    if (action === 'block') blocked.push(category)
  }
  for (const hit of verdict.categories) note(hit.category, hit.score, actions[hit.category])
  if (verdict.unsafe && verdict.categories.length === 0) note('unsafe', 1, guardrails.unknownUnsafe)
  if (blocked.length === 0) return undefined
  record.blocked = true
  return new GatewayError(
    phase === 'prompt' ? 'PROMPT_BLOCKED' : 'ANSWER_BLOCKED',
    `categories ${blocked.join(', ')}`,
  )
}

function logGuard(record: GuardRecord): LogGuard | undefined {
  const guard: { dlp?: LogGuard['dlp']; guardrails?: LogGuard['guardrails'] } = {}
  const results = record.dlp.filter((result) => result.hits.length > 0 || result.truncated)
  if (results.length > 0) {
    guard.dlp = {
      action: strongestAction(results),
      findings: results.flatMap((result) => result.hits).slice(0, 100),
      ...(results.some((result) => result.truncated) ? { truncated: true } : {}),
    }
  }
  const { prompt, answer } = record.hits
  if (prompt.length > 0 || answer.length > 0 || record.unavailable.length > 0) {
    const all = [...prompt, ...answer]
    guard.guardrails = {
      action: record.blocked ? 'BLOCK' : all.length === 0 ? 'UNAVAILABLE' : 'FLAG',
      ...(prompt.length > 0 ? { prompt } : {}),
      ...(answer.length > 0 ? { answer } : {}),
      ...(record.unavailable.length > 0 ? { unavailable: record.unavailable } : {}),
    }
  }
  return guard.dlp === undefined && guard.guardrails === undefined ? undefined : guard
}

/** A guard model's chat completion through the gateway's `/compat` surface. */
function completeThrough(own: (request: GatewayRequest) => Promise<GatewayResponse>): LlamaGuardComplete {
  return async ({ model, messages, maxTokens, temperature, signal }) => {
    const json = await callJson(
      own,
      '/compat/chat/completions',
      { model, messages, max_tokens: maxTokens, temperature, stream: false },
      signal,
    )
    const choice = Array.isArray((json as { choices?: unknown }).choices)
      ? (json as { choices: { message?: { content?: unknown } }[] }).choices[0]
      : undefined
    const content = choice?.message?.content
    if (typeof content !== 'string') throw new Error('the guard model answered without text')
    return content
  }
}

/** A text-classification call (Hugging Face's inference API shape) through the gateway's passthrough. */
function classifyThrough(
  own: (request: GatewayRequest) => Promise<GatewayResponse>,
  provider: string,
  path: string,
): PromptGuardClassify {
  return async (text, signal) => {
    const json = await callJson(own, `/${provider}${path}`, { inputs: text }, signal)
    const list = Array.isArray(json) && Array.isArray(json[0]) ? json[0] : json
    if (!Array.isArray(list)) throw new Error('the classifier answered without labels')
    return list as TextClassification[]
  }
}

async function callJson(
  own: (request: GatewayRequest) => Promise<GatewayResponse>,
  path: string,
  body: unknown,
  signal: AbortSignal,
): Promise<unknown> {
  const response = await own({
    method: 'POST',
    path,
    search: '',
    headers: { 'content-type': 'application/json' },
    signal,
    body: JSON.stringify(body),
  })
  const bytes = await bytesOf(response, MAX_CLASSIFIER_ANSWER_BYTES)
  if (bytes.length > MAX_CLASSIFIER_ANSWER_BYTES) throw new Error('the classifier answered too much')
  if (response.status >= 400) throw new Error(`the classifier's provider answered ${response.status}`)
  const json = parseJsonBody(bytes)
  if (json === undefined) throw new Error('the classifier answered something that is not JSON')
  return json
}
