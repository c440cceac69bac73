import type { ChatCodec } from './providers/dialects/types.js'
import type { ResolvedProvider } from './providers/registry.js'
import type { Dialect } from './providers/types.js'
import type { RouteTaken } from './routes/dynamic.js'
import type { TargetPolicy } from './settings.js'

/** How a compat request is translated to and from a provider's own API. */
export interface Translation {
  readonly codec: ChatCodec
  readonly operation: 'chat' | 'embeddings'
  /** The model as the client named it after the provider prefix. */
  readonly model: string
  readonly stream: boolean
  readonly includeUsage: boolean
  /** Embeddings asked for as base64 (`encoding_format`), encoded by the gateway when the provider sends floats. */
  readonly base64Embeddings: boolean
}

/**
 * One resolved upstream request, as `route` builds it: where it goes, exactly what is sent (credentials
 * included, once `route` attached them), how it is retried, and how its answer is read back.
 */
export interface UpstreamTarget {
  readonly provider: ResolvedProvider
  readonly origin: string
  readonly path: string
  readonly method: string
  readonly headers: Record<string, string>
  readonly body: Buffer | undefined
  /** The model the request asks for, as the provider names it (the compat model after its prefix). */
  readonly model: string | undefined
  /** Whether the request asks for a streamed answer. */
  readonly stream: boolean
  /** Index of the universal step this target came from (0 otherwise). */
  readonly step: number
  /** Timeouts, retries and the stored key's alias for this target. */
  readonly policy: TargetPolicy
  /** The dialect the client reads, for terminal error events in streams. */
  readonly clientDialect: Dialect
  readonly translation?: Translation | undefined
  /**
   * A stream that carries usage after its finish: `asked` by the client, or asked by the gateway on the
   * client's behalf and `hidden` from the client's stream again.
   */
  readonly streamUsage?: 'asked' | 'hidden' | undefined
  /** For a model of a dynamic route: the route, and how the request was walked to this model. */
  readonly route?: RouteTaken | undefined
}
