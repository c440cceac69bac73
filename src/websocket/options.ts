import { z } from 'zod'

const KiB = 1024
const MiB = 1024 * KiB
const positiveInt = z.number().int().positive()

/**
 * Where a realtime provider takes the key the gateway sends for it: its usual header (`header`, the
 * provider's own scheme), a query parameter, or a subprotocol whose name is the prefix plus the key (the
 * form browsers can send, `openai-insecure-api-key.<key>`).
 */
export const realtimeKeyPlacement = z.union([
  z.literal('header'),
  z.strictObject({ query: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected a query parameter name') }),
  z.strictObject({
    protocol: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/, 'expected a subprotocol prefix'),
  }),
])

/** How one provider's realtime endpoint is reached, beyond its HTTP base URL. */
export const realtimeProviderOptions = z.strictObject({
  /**
   * The path below the provider's base URL that a connection naming no path goes to (`/openai?model=…`
   * reaches `/realtime`). Default: the catalog's for OpenAI and Gemini Live, else none.
   */
  path: z
    .string()
    .regex(/^\/[^?#\s]*$/, 'expected a path starting with /')
    .optional(),
  /** Where the stored key goes: see `realtimeKeyPlacement`. Default `header`. */
  key: realtimeKeyPlacement.optional(),
})

/**
 * The `websockets` gateway option: what a WebSocket may hold. `false` refuses every upgrade (`upgrade()`
 * answers `false`, leaving the socket to the host); `true` or an object takes the defaults for the rest.
 */
export const websocketSettings = z.strictObject({
  /** Largest message either side may send, in bytes; a larger one closes that side with 1009. Default 16 MiB. */
  maxPayload: positiveInt.default(16 * MiB),
  /** A connection with no frame either way (and, on the universal socket, nothing in flight) for this long is closed with 4408. Default 5 minutes. */
  idleTimeoutMs: positiveInt.default(5 * 60_000),
  /** The longest a connection may stay open; past it, closed with 4409. Default 1 hour. */
  maxSessionMs: positiveInt.default(60 * 60_000),
  /** Universal requests one socket may have in flight; more are refused with code 2135. Default 16. */
  maxInFlight: positiveInt.default(16),
  /**
   * Bytes queued towards a slow reader before the other side is paused (a provider's socket is no longer
   * read, a universal stream no longer pulled); it is resumed once half of it has drained. Default 1 MiB.
   */
  highWaterMark: positiveInt.default(1 * MiB),
  /** Per provider slug: the realtime path and where its key goes (see `realtimeProviderOptions`). */
  providers: z.record(z.string().min(1), realtimeProviderOptions).default({}),
})

/** What the `websockets` gateway option accepts. */
export const websocketOptions = z
  .union([z.boolean(), websocketSettings])
  .default(true)
  .transform((option) => (option === true ? websocketSettings.parse({}) : option))

/** The `websockets` option's settings, as a host writes them. */
export type WebSocketOptions = z.input<typeof websocketSettings>
/** The `websockets` option after validation, every default filled in (`false`: upgrades refused). */
export type ResolvedWebSocketOptions = z.output<typeof websocketSettings>
/** Where a realtime provider takes its key; see `realtimeKeyPlacement`. */
export type RealtimeKeyPlacement = z.output<typeof realtimeKeyPlacement>
