import type { Attributes, Tracer } from '@opentelemetry/api'
import type { LogRecord } from './logs/types.js'
import { isHighSurrogate } from './surrogates.js'
import type { GatewayContext } from './types.js'

type OtelApi = typeof import('@opentelemetry/api')

/**
 * One span per request, made once the request is over (so a request pays nothing for it while it runs),
 * with the GenAI semantic-convention attributes and the reference's extras: model, provider, tokens,
 * cost, and the request's metadata (as `ai_gateway.metadata.<key>`). Its parent is the context active when
 * the request arrived, or the trace named by `cf-aig-otel-trace-id` / `cf-aig-otel-parent-span-id`.
 */
export interface Telemetry {
  /** Captures the parent context at arrival. */
  begin(ctx: GatewayContext): void
  end(ctx: GatewayContext, record: LogRecord): void
}

export function createTelemetry(option: boolean | { tracer: object }): Telemetry | undefined {
  if (option === false) return undefined
  // An optional peer: loaded only when telemetry is on, and only once.
  let api: OtelApi | undefined
  const loading = import('@opentelemetry/api').then(
    (loaded) => {
      // Named exports carry the enums; a CommonJS interop namespace may hold them under `default` only.
      api = 'TraceFlags' in loaded ? loaded : (loaded as { default: OtelApi }).default
    },
    () => {
      throw new TypeError('telemetry needs the @opentelemetry/api package: npm install @opentelemetry/api')
    },
  )
  loading.catch(() => {})
  const tracerOf = (loaded: OtelApi): Tracer =>
    option === true ? loaded.trace.getTracer('ai-gateway-middleware') : (option.tracer as Tracer)
  return {
    begin(ctx) {
      if (api !== undefined) ctx.state.traceContext = api.context.active()
    },
    end(ctx, record) {
      if (api === undefined) return
      const traceParent = ctx.state.settings?.traceParent
      let parent = ctx.state.traceContext ?? api.context.active()
      if (traceParent !== undefined) {
        parent = api.trace.setSpanContext(parent, {
          traceId: traceParent.traceId,
          spanId: traceParent.spanId,
          traceFlags: api.TraceFlags.SAMPLED,
          isRemote: true,
        })
      }
      const startTime = record.createdAt
      const span = tracerOf(api).startSpan(
        spanName(ctx, record),
        { kind: api.SpanKind.CLIENT, startTime, attributes: spanAttributes(ctx, record) },
        parent,
      )
      if (!record.success) span.setStatus({ code: api.SpanStatusCode.ERROR, message: record.outcome })
      span.end(startTime + record.durationMs)
    },
  }
}

function spanName(ctx: GatewayContext, record: LogRecord): string {
  const operation = operationOf(ctx)
  const model = modelOf(record)
  return model === null ? operation : `${operation} ${model}`
}

// Longer than any model's name (a dynamic route refuses one past 256 characters). The model is what the
// client wrote: a span keeps this much of it, so that a made-up name of megabytes, in its name and an
// attribute, is not held in every exporter's queue and sent in every batch.
const MAX_MODEL_CHARS = 256

/** The request's model as spans carry it: cut, and marked so, past `MAX_MODEL_CHARS`. */
function modelOf(record: LogRecord): string | null {
  const { model } = record
  if (model === null || model.length <= MAX_MODEL_CHARS) return model
  // Never between the two halves of a surrogate pair: a lone half is not text an exporter can encode.
  const end = isHighSurrogate(model.charCodeAt(MAX_MODEL_CHARS - 1)) ? MAX_MODEL_CHARS - 1 : MAX_MODEL_CHARS
  return `${model.slice(0, end)}…`
}

/**
 * The GenAI operation a request was, by its path: `chat`, `embeddings`, or `request` for anything else. The
 * span's name and the metrics' `gen_ai.operation.name`.
 *
 * @example
 * operationOf(ctx) // 'chat' for /openai/chat/completions
 */
export function operationOf(ctx: GatewayContext): string {
  const path = ctx.state.target?.path ?? ctx.request.path
  if (path.includes('embed')) return 'embeddings'
  if (path.includes('chat') || path.includes('messages') || path.includes('generateContent')) return 'chat'
  return 'request'
}

const METADATA_ATTRIBUTE = 'ai_gateway.metadata.'

function spanAttributes(ctx: GatewayContext, record: LogRecord): Attributes {
  const attributes: Attributes = {
    'gen_ai.operation.name': operationOf(ctx),
    'http.response.status_code': record.statusCode,
    'ai_gateway.log_id': record.id,
    'ai_gateway.outcome': record.outcome,
    'ai_gateway.cached': record.cached,
  }
  const set = (name: string, value: string | number | boolean | null) => {
    if (value !== null) attributes[name] = value
  }
  set('gen_ai.provider.name', record.provider)
  set('gen_ai.model.provider', record.provider)
  set('gen_ai.request.model', modelOf(record))
  set('gen_ai.usage.input_tokens', record.tokensIn)
  set('gen_ai.usage.output_tokens', record.tokensOut)
  set('gen_ai.usage.cost', record.cost)
  set('error.type', record.errorCode === null ? null : String(record.errorCode))
  // The client names its metadata: each key goes under a namespace of its own, as OpenTelemetry puts keys
  // its callers name (`http.request.header.<key>`), so that none passes for an attribute the gateway or a
  // semantic convention owns (`error.type`, `server.address`, `ai_gateway.outcome`).
  for (const [key, value] of Object.entries(record.metadata))
    attributes[`${METADATA_ATTRIBUTE}${key}`] = value
  return attributes
}
