import { z } from 'zod'
import { GatewayError } from '../errors.js'
import { parseJsonBody, stringifyClientJson } from '../json.js'
import { withFields } from '../objects.js'
import { locateUpstream, withoutBasePath } from '../providers/registry.js'
import { addRequestSecret } from '../secrets.js'
import {
  MAX_STREAM_HOLD_MS,
  readCacheSettings,
  readTargetPolicy,
  STREAM_COMMITS,
  type TargetPolicy,
} from '../settings.js'
import type { UpstreamTarget } from '../target.js'
import type { GatewayContext } from '../types.js'
import { buildUpstreamHeaders, credentialsOf } from '../upstream/headers.js'
import { splitQuery } from '../url.js'
import { compatTarget } from './compat.js'
import { dynamicTargets, routeNameOf } from './dynamic.js'
import { nativeTarget } from './native.js'

/** More steps than any sane fallback chain; each step can cost a paid provider call. */
export const MAX_UNIVERSAL_STEPS = 10

// What can go on a request line and in a header value. A step's endpoint and headers come from the body,
// where nothing like Node's HTTP parser has checked them; left to the HTTP client, they fail as if the
// provider were unreachable (502, counted against its breaker for every caller of that key and model).
const REQUEST_TARGET = /^[\x21-\x7e]+$/
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/

const stepSchema = z.object({
  provider: z.string().min(1, 'must name a provider'),
  endpoint: z
    .string()
    .min(1, 'must name an endpoint')
    .regex(REQUEST_TARGET, 'must be a URL path: printable ASCII, anything else percent-encoded'),
  headers: z
    .record(
      z.string(),
      z.string().regex(FIELD_VALUE, 'must be a header value: no line breaks or control characters'),
    )
    .optional(),
  query: z
    .unknown()
    .refine((value) => value !== undefined, "'query' (the provider's request body) is required"),
  config: z
    .strictObject({
      requestTimeout: z.number().int().min(1).max(2_147_483_647).optional(),
      maxAttempts: z.number().int().min(1).max(5).optional(),
      retryDelay: z.number().int().min(0).max(5000).optional(),
      backoff: z.enum(['constant', 'linear', 'exponential']).optional(),
      firstTokenTimeout: z.number().int().min(1).max(2_147_483_647).optional(),
      streamCommit: z.enum(STREAM_COMMITS).optional(),
      streamHold: z.number().int().min(0).max(MAX_STREAM_HOLD_MS).optional(),
    })
    .optional(),
})

type UniversalStep = z.infer<typeof stepSchema>

/**
 * `POST /`: a JSON array of steps (a single object is accepted), tried in order by `forward`. Each step's
 * headers override the request's, which override the gateway's options; its `config` overrides both.
 */
export async function universalTargets(ctx: GatewayContext, json: unknown): Promise<UpstreamTarget[]> {
  const steps = Array.isArray(json) ? json : [json]
  if (steps.length === 0) throw new GatewayError('INVALID_UNIVERSAL_REQUEST', 'the step list is empty')
  if (steps.length > MAX_UNIVERSAL_STEPS) {
    throw new GatewayError(
      'INVALID_UNIVERSAL_REQUEST',
      `at most ${MAX_UNIVERSAL_STEPS} steps, got ${steps.length}`,
    )
  }
  const parsed = steps.map(parseStep)
  // Steps may carry caching headers; caching is decided once for the chain, by the first step's.
  const firstHeaders = parsed[0]!.headers
  const { settings } = ctx.state
  if (firstHeaders !== undefined && settings !== undefined) {
    ctx.state.settings = withFields(settings, {
      cache: readCacheSettings(lowerCaseKeys(firstHeaders), settings.cache),
    })
  }
  const targets: UpstreamTarget[] = []
  let overLimit: GatewayError | undefined
  for (const [index, step] of parsed.entries()) {
    try {
      targets.push(...(await stepTargets(ctx, step, index)))
    } catch (error) {
      // A step's route over a limit with no fallback of its own ends that route, not the request: the
      // next step is its fallback, as after a model that failed. With none left, the 429 is the answer.
      if (!(error instanceof GatewayError) || error.key !== 'SPEND_LIMITED') throw error
      overLimit ??= error
    }
  }
  if (targets.length === 0 && overLimit !== undefined) throw overLimit
  // A step's own key is in the request body, which is logged: it is masked there (and in answers) like a
  // stored key, whatever its shape, rather than only when it looks like a vendor's key.
  for (const target of targets) {
    for (const { values } of credentialsOf(target.headers, target.path, target.provider)) {
      for (const value of values) addRequestSecret(ctx, value)
    }
  }
  return targets
}

function parseStep(raw: unknown, index: number): UniversalStep {
  const parsed = stepSchema.safeParse(raw)
  if (parsed.success) return parsed.data
  const issue = parsed.error.issues[0]
  const where = issue?.path.length ? `.${issue.path.join('.')}` : ''
  throw new GatewayError('INVALID_UNIVERSAL_REQUEST', `step ${index}${where}: ${issue?.message ?? 'invalid'}`)
}

/** A step's target; a compat step naming a dynamic route gives the models the route chose, in order. */
async function stepTargets(
  ctx: GatewayContext,
  step: UniversalStep,
  index: number,
): Promise<UpstreamTarget[]> {
  const stepHeaders = lowerCaseKeys(step.headers ?? {})
  const headers = withFields(ctx.request.headers, stepHeaders)
  const policy = withConfig(readTargetPolicy(stepHeaders, ctx.state.settings?.target ?? {}), step.config)
  const endpoint = step.endpoint.startsWith('/') ? step.endpoint : `/${step.endpoint}`
  if (step.provider === 'compat') {
    const input = { operation: endpoint, json: step.query, headers, policy, step: index }
    const routeName = routeNameOf(step.query)
    if (routeName === undefined) return [compatTarget(ctx, input)]
    return dynamicTargets(ctx, input, step.query as Record<string, unknown>, routeName)
  }
  const provider = ctx.gateway.providers.get(step.provider)
  if (provider === undefined) {
    throw new GatewayError('INVALID_PROVIDER', `step ${index}: '${step.provider}' is not a known provider`)
  }
  const { path, search } = splitQuery(endpoint)
  const location = locateUpstream(provider, withoutBasePath(provider, path), search, ctx.surface.account)
  const upstreamHeaders = buildUpstreamHeaders(headers, provider)
  upstreamHeaders['content-type'] ??= 'application/json'
  delete upstreamHeaders['content-encoding']
  const query =
    typeof step.query === 'string' ? step.query : stringifyClientJson(step.query, 'INVALID_UNIVERSAL_REQUEST')
  const body = Buffer.from(query)
  const draft = {
    provider,
    origin: location.origin,
    path: location.path,
    method: 'POST',
    headers: upstreamHeaders,
    body,
    step: index,
    policy,
    clientDialect: provider.spec.dialect,
  }
  return [nativeTarget(ctx, draft, typeof step.query === 'string' ? parseJsonBody(body) : step.query)]
}

function withConfig(policy: TargetPolicy, config: UniversalStep['config']): TargetPolicy {
  if (config === undefined) return policy
  const merged = { ...policy }
  if (config.requestTimeout !== undefined) merged.requestTimeoutMs = config.requestTimeout
  if (config.maxAttempts !== undefined) merged.maxAttempts = config.maxAttempts
  if (config.retryDelay !== undefined) merged.retryDelayMs = config.retryDelay
  if (config.backoff !== undefined) merged.backoff = config.backoff
  if (config.firstTokenTimeout !== undefined) merged.firstTokenTimeoutMs = config.firstTokenTimeout
  if (config.streamCommit !== undefined) merged.streamCommit = config.streamCommit
  if (config.streamHold !== undefined) merged.streamHoldMs = config.streamHold
  return merged
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  const lowered: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) lowered[name.toLowerCase()] = value
  return lowered
}
