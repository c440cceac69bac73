import { ERRORS } from '../errors.js'
import { outcomeOf, type RequestEnd, type RequestFigures } from '../logs/recorder.js'
import type { LogGuard } from '../logs/types.js'
import type { GatewayContext } from '../types.js'
import type { MetricsBook, RequestSeries } from './book.js'
import { NONE } from './labels.js'

/**
 * What the `record` step tells the metrics once a request is over (the gateway's `metrics` option): the
 * request is counted where its figures already are, next to its log record, so nothing is worked out twice.
 */
export interface MetricsRecorder {
  observe(ctx: GatewayContext, end: RequestEnd, figures: RequestFigures): void
}

/** What else records each request, given the series it was counted in: the OpenTelemetry histograms. */
export interface RequestSink {
  record(series: RequestSeries, ctx: GatewayContext, end: RequestEnd, figures: RequestFigures): void
}

// The refusals of limits: rate limits (2003), spend limits (2041) and policies' spending caps (2131).
const LIMIT_CODES: ReadonlySet<number> = new Set([
  ERRORS.RATE_LIMITED.code,
  ERRORS.SPEND_LIMITED.code,
  ERRORS.POLICY_SPEND_LIMITED.code,
])
const ACTIONS: Readonly<Record<string, string>> = {
  FLAG: 'flag',
  REDACT: 'redact',
  BLOCK: 'block',
  UNAVAILABLE: 'unavailable',
}

/**
 * Counts each request in `book`: its series (requests, latency, tokens, cost), its gateway error and limit
 * refusal, its guard verdicts. A request that has been counted before with the same labels allocates
 * nothing here but the series key.
 *
 * @example
 * record({ logs, metrics: createRecorder(book) })
 */
export function createRecorder(book: MetricsBook, sink?: RequestSink): MetricsRecorder {
  // One label list per error code, made at its first use, rather than one per refused request.
  const codes = new Map<number, readonly string[]>()
  const codeLabels = (code: number) => {
    let labels = codes.get(code)
    if (labels === undefined) {
      labels = [String(code)]
      codes.set(code, labels)
    }
    return labels
  }
  return {
    observe(ctx, end, figures) {
      const { state } = ctx
      const target = state.target ?? state.targets?.[0]
      const outcome = outcomeOf(ctx, end)
      // Only a request that went through may give a label a new value: see `BoundedValues`.
      const admit = outcome === 'success' || outcome === 'cache_hit'
      const series = book.seriesOf(
        ctx.surface.kind,
        ctx.metrics.provider ?? target?.provider.spec.id,
        target?.model,
        end.aborted ? 499 : end.status,
        state.cacheStatus === 'HIT' ? 'hit' : state.cacheStatus === 'MISS' ? 'miss' : 'none',
        outcome,
        state.metadata,
        admit,
      )
      series.requests++
      series.duration.observe(end.durationMs / 1000)
      const { firstByteMs, firstTokenMs } = ctx.metrics
      if (firstByteMs !== undefined) series.firstByte.observe(firstByteMs / 1000)
      if (firstTokenMs !== undefined) series.firstToken.observe(firstTokenMs / 1000)
      if (figures.tokensIn !== null) series.tokensIn += figures.tokensIn
      if (figures.tokensOut !== null) series.tokensOut += figures.tokensOut
      if (figures.cost !== null) series.cost += figures.cost
      // A stream that failed once its answer was under way (cut, stalled, blocked by DLP) has no error in
      // the state, only in how it ended: counted by the code its log record carries too.
      const code = state.error?.code ?? end.failureCode
      if (code !== undefined) {
        const labels = codeLabels(code)
        book.errors.add(labels)
        if (LIMIT_CODES.has(code)) book.limited.add(labels)
      }
      if (state.guard !== undefined) countGuard(book, state.guard)
      sink?.record(series, ctx, end, figures)
    },
  }
}

/**
 * One verdict per kind a request was judged by: DLP by its strongest action (`flag`, `redact`, `block`),
 * guardrails by theirs (`flag`, `block`, `unavailable`), each with the phase it concerned: the `prompt`
 * (DLP's request check), the `answer` (its response check) or `both`.
 */
function countGuard(book: MetricsBook, guard: LogGuard): void {
  const { dlp, guardrails } = guard
  if (dlp !== undefined) {
    const prompt = dlp.findings.some((finding) => finding.check === 'REQUEST')
    const answer = dlp.findings.some((finding) => finding.check === 'RESPONSE')
    book.guard.add(['dlp', phaseOf(prompt, answer), ACTIONS[dlp.action]!])
  }
  if (guardrails !== undefined) {
    const { unavailable } = guardrails
    const prompt = guardrails.prompt !== undefined || unavailable?.includes('prompt') === true
    const answer = guardrails.answer !== undefined || unavailable?.includes('answer') === true
    book.guard.add(['guardrail', phaseOf(prompt, answer), ACTIONS[guardrails.action]!])
  }
}

function phaseOf(prompt: boolean, answer: boolean): string {
  return prompt && answer ? 'both' : answer ? 'answer' : prompt ? 'prompt' : NONE
}
