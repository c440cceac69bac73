import type { Dispatcher } from 'undici'
import { z } from 'zod'
import { PROVIDERS } from './providers/catalog.js'
import { isValidBaseURL } from './providers/registry.js'
import type { Step } from './types.js'

const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/
// No CR, LF or NUL: a value copied into a request line must not be able to start a new header.
const HEADER_VALUE = /^[^\r\n\0]*$/
const KNOWN_PROVIDERS = PROVIDERS.map((p) => p.id)

const headerName = z.string().regex(HEADER_NAME, 'expected a lower-case HTTP header name')
const headerValue = z.string().regex(HEADER_VALUE, 'expected a header value without CR, LF or NUL')
const baseURL = z
  .string()
  .refine(isValidBaseURL, 'expected an http(s) URL without query, fragment or credentials')
const positiveMs = z.number().int().positive()

const providerConfig = z.strictObject({
  apiKey: headerValue.min(1).optional(),
  baseURL: baseURL.optional(),
  params: z.record(z.string(), z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/)).optional(),
  headers: z.record(headerName, headerValue).optional(),
})

const customProviderConfig = providerConfig.extend({
  baseURL,
  auth: z
    .strictObject({
      header: headerName,
      scheme: z
        .string()
        .regex(/^[A-Za-z-]*$/)
        .optional(),
    })
    .optional(),
})

const timeouts = z.strictObject({
  connectMs: positiveMs.default(10_000),
  firstByteMs: positiveMs.default(300_000),
  idleMs: positiveMs.default(120_000),
  totalMs: positiveMs.default(600_000),
})

const retries = z.strictObject({
  maxAttempts: z.number().int().min(1).max(5).default(1),
  delayMs: z.number().int().min(0).max(5000).default(200),
  backoff: z.enum(['constant', 'linear', 'exponential']).default('exponential'),
  statuses: z.array(z.number().int().min(100).max(599)).default([408, 429, 500, 502, 503, 504]),
  maxRetryAfterMs: z.number().int().min(0).default(10_000),
  maxWaitMs: z.number().int().min(0).default(30_000),
})
const RETRY_DEFAULTS = {
  maxAttempts: 1,
  delayMs: 200,
  backoff: 'exponential',
  statuses: [408, 429, 500, 502, 503, 504],
  maxRetryAfterMs: 10_000,
  maxWaitMs: 30_000,
} as const

const stepsOption = z.custom<Step[] | ((builtIn: Step[]) => Step[])>(
  (value) =>
    typeof value === 'function' ||
    (Array.isArray(value) && value.every((step) => typeof step === 'function')),
  'expected an array of step functions, or a function (builtInSteps) => steps',
)

const dispatcherOption = z.custom<Dispatcher>(
  (value) =>
    typeof value === 'object' && value !== null && typeof (value as Dispatcher).request === 'function',
  'expected an undici Dispatcher (Agent, Pool, ProxyAgent, ...)',
)

export const gatewayOptionsSchema = z.strictObject({
  /** Gateway name matched by Cloudflare's long URL form `/v1/{account}/{name}/...`. Default `'default'`. */
  name: z.string().regex(SLUG, 'expected a slug (a-z, 0-9, -)').default('default'),
  /** Settings per known provider: a stored key, a base URL override, template params, static headers. */
  providers: z
    .record(z.string(), providerConfig)
    .superRefine((record, ctx) => {
      for (const key of Object.keys(record)) {
        if (!KNOWN_PROVIDERS.includes(key)) {
          ctx.addIssue({
            code: 'custom',
            path: [key],
            message: `unknown provider '${key}' (known: ${KNOWN_PROVIDERS.join(', ')}; use customProviders for others)`,
          })
        }
      }
    })
    .default({}),
  /** Your own upstreams, addressed as `custom-{slug}`. */
  customProviders: z
    .record(z.string().regex(SLUG, 'expected a slug (a-z, 0-9, -)'), customProviderConfig)
    .default({}),
  /** Upstream clocks in milliseconds. */
  timeouts: timeouts.default({ connectMs: 10_000, firstByteMs: 300_000, idleMs: 120_000, totalMs: 600_000 }),
  /**
   * Retries per target: attempts (1 to 5; `cf-aig-max-attempts` overrides), base delay and backoff
   * (`cf-aig-retry-delay`, `cf-aig-backoff`), which provider statuses are retried, the longest
   * `Retry-After` honoured (longer: no retry, go to the next target) and the most time spent waiting.
   */
  retries: retries.default({ ...RETRY_DEFAULTS, statuses: [...RETRY_DEFAULTS.statuses] }),
  /** Largest request body read, in bytes; larger requests get 413. Default 10 MiB. */
  maxBodyBytes: z
    .number()
    .int()
    .positive()
    .default(10 * 1024 * 1024),
  /** Extra request headers allowed through to every provider. */
  forwardHeaders: z.array(headerName).default([]),
  /** Host steps: an array runs before the built-in steps; a function gets the built-ins and returns the list. */
  steps: stepsOption.optional(),
  /** The undici dispatcher for upstream calls. Default: an Agent built from `timeouts.connectMs`. */
  dispatcher: dispatcherOption.optional(),
})

/** What `createGateway()` accepts. */
export type GatewayOptions = z.input<typeof gatewayOptionsSchema>
/** Options after validation, with every default filled in. */
export type ResolvedOptions = z.output<typeof gatewayOptionsSchema>

/** A misconfiguration found at construction. */
export class GatewayOptionsError extends TypeError {
  readonly code = 'GW_ERR_INVALID_OPTIONS'
}

/**
 * Validates options once, at construction, and names every wrong option with what was expected.
 *
 * @example
 * parseOptions({ timeouts: { firstByteMs: -1 } })
 * // GatewayOptionsError: Invalid gateway options:
 * //   - timeouts.firstByteMs: Too small: expected number to be >0
 */
export function parseOptions(options: unknown): ResolvedOptions {
  const result = gatewayOptionsSchema.safeParse(options ?? {})
  if (result.success) return result.data
  const lines = result.error.issues.map(
    (issue) => `  - ${issue.path.join('.') || '(options)'}: ${issue.message}`,
  )
  throw new GatewayOptionsError(`Invalid gateway options:\n${lines.join('\n')}`)
}
