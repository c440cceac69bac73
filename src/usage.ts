import { extractStreamUsage, extractUsage, type Usage } from './cost/cost.js'
import { parseJson } from './json.js'
import type { Dialect } from './providers/types.js'
import type { GatewayContext, GatewayResponse } from './types.js'

type UsageDialect = 'openai' | 'anthropic' | 'google'

/**
 * The usage an answer reports, read from the bytes the client received: the provider's own shape on
 * passthrough, OpenAI's on the compat surface. `undefined` when the answer carries none.
 */
export function responseUsage(
  ctx: GatewayContext,
  response: GatewayResponse,
  bytes: Buffer,
): Usage | undefined {
  const target = ctx.state.target ?? ctx.state.targets?.[0]
  if (target === undefined) return undefined
  const dialect = usageDialect(target.clientDialect)
  const text = bytes.toString('utf8')
  if (response.headers['content-type']?.startsWith('text/event-stream'))
    return extractStreamUsage(dialect, text)
  return extractUsage(dialect, parseJson(text))
}

/** Input plus output tokens, for token limits. */
export function responseTokens(
  ctx: GatewayContext,
  response: GatewayResponse,
  bytes: Buffer,
): number | undefined {
  const usage = responseUsage(ctx, response, bytes)
  if (usage === undefined) return undefined
  const cache = usage.inputIncludesCache ? 0 : (usage.cacheReadTokens ?? 0) + (usage.cacheWriteTokens ?? 0)
  return usage.inputTokens + usage.outputTokens + cache
}

function usageDialect(dialect: Dialect): UsageDialect {
  if (dialect === 'anthropic') return 'anthropic'
  if (dialect === 'gemini') return 'google'
  return 'openai'
}
