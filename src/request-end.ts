import { Readable } from 'node:stream'
import type { Usage } from './cost/cost.js'
import { GatewayError, toGatewayError } from './errors.js'
import { isObserved, notify, reportError } from './events.js'
import { buildLogRecord, type LogQueue, type RecordSettings } from './logs/recorder.js'
import { tapBody } from './response-tap.js'
import type { Telemetry } from './telemetry.js'
import type { GatewayContext, GatewayResponse } from './types.js'

/** What happens once a response is over: the `request:end` event, the log record, the span. */
export interface RequestEndServices {
  readonly logs: LogQueue | undefined
  readonly recordSettings: RecordSettings
  readonly telemetry: Telemetry | undefined
}

/**
 * Watches the response to its end (delivered, failed, or abandoned by the client), then emits
 * `request:end`, queues the log record and ends the span. Nothing here delays the response: the body is
 * only watched on its way out, and the record waits for the provider's usage after the client has it all.
 */
export function trackEnd(ctx: GatewayContext, response: GatewayResponse, services: RequestEndServices): void {
  const logged = services.logs !== undefined && ctx.state.settings?.collectLog !== false
  const observed = isObserved(ctx.gateway.events, 'request:end')
  if (!logged && !observed && services.telemetry === undefined) return
  const { recordSettings } = services
  const keepBody = logged && recordSettings.payloads && ctx.state.settings?.collectLogPayload !== false
  tapBody(response, keepBody ? recordSettings.maxPayloadBytes : 0, (tapped) => {
    const aborted = ctx.request.signal.aborted
    const isStream = response.body instanceof Readable
    const failure =
      tapped.error !== undefined
        ? toGatewayError(tapped.error)
        : isStream && !tapped.complete
          ? new GatewayError('UPSTREAM_INTERRUPTED', 'the stream ended before its last event')
          : undefined
    if (observed) {
      notify(ctx.gateway.events, 'request:end', {
        id: ctx.id,
        status: aborted ? 499 : response.status,
        provider: ctx.metrics.provider,
        durationMs: performance.now() - ctx.startedAt,
        bytesIn: ctx.metrics.bytesIn,
        bytesOut: tapped.size,
        outcome: aborted ? 'aborted' : failure ? 'error' : 'completed',
        cacheStatus: ctx.state.cacheStatus,
        error: failure && !aborted ? { code: failure.code, message: failure.message } : undefined,
      })
    }
    if (!logged && services.telemetry === undefined) return
    const finish = (usage: Usage | undefined) => {
      const record = buildLogRecord(
        ctx,
        {
          status: response.status,
          aborted,
          failed: failure !== undefined,
          responseBytes: tapped.bytes,
          responseSize: tapped.size,
          stream: response.headers['content-type']?.startsWith('text/event-stream') === true,
          usage,
        },
        recordSettings,
      )
      if (logged) services.logs!.push(record)
      try {
        services.telemetry?.end(ctx, record)
      } catch (error) {
        // A tracer that throws is the host's bug to hear about, not the request's.
        reportError(ctx.gateway.events, error)
      }
    }
    const usage = ctx.state.usage
    if (usage === undefined) finish(undefined)
    else usage.then(finish, () => finish(undefined))
  })
}
