import {
  extractStreamUsage,
  extractUsage,
  totalInputTokens,
  type Usage,
  type UsageDialect,
} from './cost/cost.js'
import { parseJson } from './json.js'
import type { Dialect } from './providers/types.js'
import { tapBody } from './response-tap.js'
import type { GatewayResponse } from './types.js'
import type { UpstreamTarget } from './upstream/call.js'

/** Largest provider answer read back for the usage it reports. */
const MAX_USAGE_BODY_BYTES = 32 * 1024 * 1024

declare module './types.js' {
  interface GatewayState {
    /** The usage the provider's answer reports, once it has been read to its end; set by `forward`. */
    usage?: Promise<Usage | undefined>
  }
}

/**
 * Reads the usage a provider's answer reports, from the provider's own bytes as they pass (before any
 * translation), so translated streams are counted even when the client asked for no usage. Resolves
 * `undefined` when the answer carries none or was cut short.
 */
export function watchUsage(target: UpstreamTarget, response: GatewayResponse): Promise<Usage | undefined> {
  const dialect = usageDialect(target.provider.spec.dialect)
  const stream = response.headers['content-type']?.startsWith('text/event-stream') === true
  return new Promise((resolve) => {
    tapBody(response, MAX_USAGE_BODY_BYTES, ({ bytes }) => {
      if (bytes === undefined) return resolve(undefined)
      const text = bytes.toString('utf8')
      resolve(stream ? extractStreamUsage(dialect, text) : extractUsage(dialect, parseJson(text)))
    })
  })
}

/** Every token the provider counted, prompt cache included, once: what a token limit charges. */
export function totalTokens(usage: Usage): number {
  return totalInputTokens(usage) + usage.outputTokens
}

function usageDialect(dialect: Dialect): UsageDialect {
  if (dialect === 'anthropic') return 'anthropic'
  if (dialect === 'gemini') return 'google'
  return 'openai'
}
