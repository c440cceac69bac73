import { performance } from 'node:perf_hooks'
import { Readable } from 'node:stream'
import { clientGone } from './client-close.js'
import type { Usage } from './cost/cost.js'
import { GatewayError, toGatewayError } from './errors.js'
import { isObserved, notify, reportError } from './events.js'
import {
  captureLogRecord,
  type LogQueue,
  type RecordSettings,
  type RequestEnd,
  type RequestFigures,
  requestFigures,
} from './logs/recorder.js'
import type { MetricsRecorder } from './metrics/recorder.js'
import { tapBody } from './response-tap.js'
import type { Telemetry } from './telemetry.js'
import type { GatewayContext, GatewayResponse } from './types.js'
import { isEventStream } from './upstream/headers.js'

/** What happens once a response is over: the `request:end` event, the log record, the span, the metrics. */
export interface RequestEndServices {
  readonly logs: LogQueue | undefined
  readonly recordSettings: RecordSettings
  readonly telemetry: Telemetry | undefined
  readonly metrics?: MetricsRecorder | undefined
}

/**
 * Watches the response to its end (delivered, failed, or abandoned by the client), then emits
 * `request:end`, queues the log record, ends the span and counts the request in the metrics. Nothing here
 * delays the response: the body is only watched on its way out, and the record waits for the provider's
 * usage after the client has it all.
 */
export function trackEnd(ctx: GatewayContext, response: GatewayResponse, services: RequestEndServices): void {
  const logged = services.logs !== undefined && ctx.state.settings?.collectLog !== false
  const observed = isObserved(ctx.gateway.events, 'request:end')
  const { metrics } = services
  if (!logged && !observed && services.telemetry === undefined && metrics === undefined) return
  const { recordSettings } = services
  const keepBody =
    logged &&
    recordSettings.payloads &&
    ctx.state.settings?.collectLogPayload !== false &&
    ctx.state.withholdLogBodies !== true
  tapBody(response, keepBody ? recordSettings.maxPayloadBytes : 0, (tapped) => {
    const isStream = response.body instanceof Readable
    const failure =
      tapped.error !== undefined
        ? toGatewayError(tapped.error)
        : isStream && !tapped.complete
          ? new GatewayError('UPSTREAM_INTERRUPTED', 'the stream did not finish')
          : undefined
    // A client that left, or stopped reading until the gateway gave up on it, aborted the request.
    const aborted = clientGone(ctx.request) || failure?.key === 'CLIENT_CLOSED'
    const endedAt = Date.now()
    const durationMs = performance.now() - ctx.startedAt
    if (observed) {
      notify(ctx.gateway.events, 'request:end', {
        id: ctx.id,
        status: aborted ? 499 : response.status,
        provider: ctx.metrics.provider,
        durationMs,
        // A WebSocket session's bytes are its frames', each way.
        bytesIn: ctx.state.websocket?.bytesIn ?? ctx.metrics.bytesIn,
        bytesOut: ctx.state.websocket?.bytesOut ?? tapped.size,
        outcome: aborted ? 'aborted' : failure ? 'error' : 'completed',
        cacheStatus: ctx.state.cacheStatus,
        error: failure && !aborted ? { code: failure.code, message: failure.message } : undefined,
      })
    }
    if (!logged && services.telemetry === undefined && metrics === undefined) return
    const finish = (usage: Usage | undefined) => {
      // Whatever goes wrong with a record, a tracer or the metrics is the gateway's bug to report, never a
      // reason for the host to crash: this runs after the response, where nothing else would catch it.
      try {
        const end: RequestEnd = {
          endedAt,
          durationMs,
          status: response.status,
          aborted,
          failed: failure !== undefined,
          failureCode: aborted ? undefined : failure?.code,
          responseBytes: tapped.bytes,
          responseSize: tapped.size,
          stream: isEventStream(response.headers['content-type']),
          usage,
        }
        // Worked out now only when the metrics need them; a record built later works them out itself.
        let figures: RequestFigures | undefined
        if (metrics !== undefined) {
          figures = requestFigures(ctx, usage, recordSettings.prices)
          try {
            metrics.observe(ctx, end, figures)
          } catch (error) {
            reportError(ctx.gateway.events, error)
          }
        }
        if (logged || services.telemetry !== undefined) writeRecord(end, figures)
      } catch (error) {
        reportError(ctx.gateway.events, error)
      }
    }
    const writeRecord = (end: RequestEnd, figures: RequestFigures | undefined) => {
      const captured = captureLogRecord(ctx, end, recordSettings, figures)
      if (services.telemetry === undefined) {
        // Only the log needs the record: its bodies are made with its batch, off this tick, or when read.
        services.logs!.push(captured)
        return
      }
      const record = captured.build()
      if (logged) services.logs!.push(record)
      services.telemetry.end(ctx, record)
    }
    const usage = ctx.state.usage
    if (usage === undefined) finish(undefined)
    else usage.then(finish, () => finish(undefined))
  })
}
