/**
 * Stored provider keys (BYOK). A {@link SecretStore} only ever holds ciphertext: encryption and decryption
 * happen in the key ring (`createKeyRing`), so a database dump or a Redis snapshot reveals no provider key.
 */

import { KeyStoreError } from '../errors.js'

/**
 * One stored provider key as a backend keeps it. Everything here is safe to log except `ciphertext`, which
 * is safe to store but pointless to show.
 */
export interface StoredSecret {
  /** Provider slug, e.g. `openai`. */
  readonly provider: string
  /** Key name within the provider, e.g. `default`. */
  readonly alias: string
  /** Base64 of version byte, master key id, IV, auth tag and encrypted bytes. */
  readonly ciphertext: string
  /** Id of the master key that encrypted it (8 hex digits), so rotation knows what to re-encrypt. */
  readonly keyId: string
  /** Masked form for listings, e.g. `sk-…wxyz`; only `…` for secrets shorter than 16 characters. */
  readonly hint: string
  /** Milliseconds since the epoch when the alias was first stored. */
  readonly createdAt: number
  /** Milliseconds since the epoch when the secret last changed. */
  readonly updatedAt: number
}

/**
 * Raw storage for encrypted provider keys, keyed by (provider, alias). Implementations store and return
 * records verbatim; they never see a plaintext key. Run `secretStoreConformance` from `./testing` against
 * a custom one.
 *
 * @example
 * const store: SecretStore = createMemorySecretStore()
 * await store.put(record)
 * await store.get('openai', 'default') // the same record
 */
export interface SecretStore {
  get(provider: string, alias: string): Promise<StoredSecret | undefined>
  /** Inserts or replaces the record for its (provider, alias). */
  put(record: StoredSecret): Promise<void>
  /** True when a record was removed. */
  delete(provider: string, alias: string): Promise<boolean>
  /** Every record, or one provider's, ordered by provider then alias. */
  list(provider?: string): Promise<StoredSecret[]>
  /** Releases what the store holds. Optional; key stores always come from the host, which closes them. */
  close?(): Promise<void>
}

/** A stored key as listings show it: never the secret, not even encrypted. */
export interface MaskedKey {
  readonly provider: string
  readonly alias: string
  readonly hint: string
  readonly keyId: string
  readonly createdAt: number
  readonly updatedAt: number
}

/**
 * Why a key operation failed:
 * - `invalid-master-key`: a master key is not 32 bytes (Buffer, 64 hex digits or base64).
 * - `invalid-options`: other key ring or store options are wrong.
 * - `invalid-provider` / `invalid-alias`: not a slug (`^[a-z0-9][a-z0-9_-]{0,63}$`; a provider may have up
 *   to 71 characters, as `custom-` and a custom provider's slug do).
 * - `invalid-secret`: empty (spaces and tabs around it are dropped), longer than 8 KiB, or holding a
 *   character a header value cannot carry (CR, LF, NUL, another control character, one beyond U+00FF).
 * - `unknown-master-key`: the record was encrypted under a master key this key ring does not hold.
 * - `decrypt-failed`: the ciphertext was altered, truncated or moved to another (provider, alias).
 * - `invalid-record`: a backend returned something that is not a stored secret.
 * - `store-full`: the memory store reached its bound.
 * - `store-unavailable`: the backend is not connected or a call to it failed.
 */
export type KeyStoreErrorReason =
  | 'invalid-master-key'
  | 'invalid-options'
  | 'invalid-provider'
  | 'invalid-alias'
  | 'invalid-secret'
  | 'unknown-master-key'
  | 'decrypt-failed'
  | 'invalid-record'
  | 'store-full'
  | 'store-unavailable'

/** The one error type of stored keys, defined with the library's other errors in `src/errors.ts`. */
export { KeyStoreError }

/** Provider slugs and aliases: lower case, safe in Redis keys, SQL values, logs and error messages. */
export const SLUG = /^[a-z0-9][a-z0-9_-]{0,63}$/
// A provider id is longer than an alias may be: a custom provider's is `custom-` and a slug of up to 64.
const PROVIDER_SLUG = /^[a-z0-9][a-z0-9_-]{0,70}$/

/**
 * Checks a provider slug and alias, throwing `invalid-provider` / `invalid-alias`.
 *
 * @example
 * assertSlugs('openai', 'default') // passes
 * assertSlugs('openai', 'Prod Key') // throws KeyStoreError (invalid-alias)
 */
export function assertSlugs(provider: string, alias?: string): void {
  if (typeof provider !== 'string' || !PROVIDER_SLUG.test(provider)) {
    throw new KeyStoreError(
      'invalid-provider',
      `provider must match ${PROVIDER_SLUG}, got ${describe(provider)}`,
    )
  }
  if (alias !== undefined && (typeof alias !== 'string' || !SLUG.test(alias))) {
    throw new KeyStoreError('invalid-alias', `alias must match ${SLUG}, got ${describe(alias)}`)
  }
}

// Aliases arrive in request headers, so an invalid one is quoted back trimmed and JSON-escaped.
function describe(value: unknown): string {
  if (typeof value !== 'string') return typeof value
  return JSON.stringify(value.length > 70 ? `${value.slice(0, 70)}…` : value)
}

/**
 * Checks that a backend's answer has the shape of a {@link StoredSecret}, throwing `invalid-record`.
 *
 * @example
 * const record = assertStoredSecret(JSON.parse(raw), 'redis')
 */
export function assertStoredSecret(value: unknown, source: string): StoredSecret {
  const record = value as Partial<Record<keyof StoredSecret, unknown>> | null
  const valid =
    typeof record === 'object' &&
    record !== null &&
    typeof record.provider === 'string' &&
    typeof record.alias === 'string' &&
    typeof record.ciphertext === 'string' &&
    typeof record.keyId === 'string' &&
    typeof record.hint === 'string' &&
    Number.isFinite(record.createdAt) &&
    Number.isFinite(record.updatedAt)
  if (!valid) throw new KeyStoreError('invalid-record', `${source} returned a malformed stored secret`)
  return {
    provider: record.provider as string,
    alias: record.alias as string,
    ciphertext: record.ciphertext as string,
    keyId: record.keyId as string,
    hint: record.hint as string,
    createdAt: record.createdAt as number,
    updatedAt: record.updatedAt as number,
  }
}
