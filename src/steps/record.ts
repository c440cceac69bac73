import { createPriceTable, type PriceOverrides } from '../cost/pricing.js'
import { GatewayError } from '../errors.js'
import type { LogQueue } from '../logs/recorder.js'
import type { MetricsRecorder } from '../metrics/recorder.js'
import { trackEnd } from '../request-end.js'
import { answerWithError, finishResponse } from '../respond.js'
import { createTelemetry } from '../telemetry.js'
import type { Step } from '../types.js'

/** What `record()` accepts; everything is optional (with nothing, it still emits `request:end`). */
export interface RecordOptions {
  /** The log queue records go to: the gateway's own (`logs` option). Default: no log records. */
  logs?: LogQueue | undefined
  /** OpenTelemetry, as the gateway's `telemetry` option: `true` or `{ tracer }`. Default off. */
  telemetry?: boolean | { tracer: object } | undefined
  /** Keep request and response bodies in records. Default false. */
  payloads?: boolean | undefined
  /** Bodies larger than this are not kept. Default 0 (none). */
  maxPayloadBytes?: number | undefined
  /** Price overrides for the cost in records, as the gateway's `prices` option. */
  prices?: PriceOverrides | undefined
  /** Secrets scrubbed from records wherever they turn up (the gateway passes every configured one). */
  secrets?: readonly string[] | undefined
  /** Where each request is counted once it is over: the gateway's own (`metrics` option). Default none. */
  metrics?: MetricsRecorder | undefined
}

/**
 * The end of a request, as a step: it renders whatever the steps after it threw (the one error path:
 * `renderError`, then the `onError` hook), adds the gateway's `cf-aig-*` headers, and once the response is
 * over emits `request:end`, queues the log record, ends the span and counts the request in the metrics
 * (tokens and cost worked out once for all of them). The gateway places it first, so it sees every step's
 * outcome, errors included; a host may move, wrap or replace it (without it, `handle` still renders
 * errors, but nothing is logged or counted).
 *
 * @example
 * steps: (builtIn) => builtIn.filter((step) => step.name !== 'record') // no logs, no `request:end`
 */
export function record(options: RecordOptions = {}): Step {
  const telemetry = createTelemetry(options.telemetry ?? false)
  const ending = {
    logs: options.logs,
    telemetry,
    metrics: options.metrics,
    recordSettings: {
      payloads: options.payloads ?? false,
      maxPayloadBytes: options.maxPayloadBytes ?? 0,
      prices: createPriceTable(options.prices),
      secrets: [...(options.secrets ?? [])],
    },
  }
  const step: Step = async function record(ctx, next) {
    telemetry?.begin(ctx)
    try {
      await next()
      if (ctx.response === undefined) throw new GatewayError('INTERNAL', 'no step answered the request')
    } catch (error) {
      await answerWithError(ctx, error)
    }
    // An id is handed out only when a record will carry it: one that leads nowhere would be a 404 later.
    if (ending.logs !== undefined && ctx.state.settings?.collectLog !== false) {
      ctx.responseHeaders['cf-aig-log-id'] = ctx.id
    }
    trackEnd(ctx, finishResponse(ctx, ctx.response!), ending)
  }
  // Logs, spans and metrics carry the usage answers report: the gateway must ask providers for it.
  if (options.logs !== undefined || telemetry !== undefined || options.metrics !== undefined) {
    step.watchesUsage = true
  }
  return step
}
