import { LRUCache } from 'lru-cache'
import { createSecretCipher, type MasterKey, type SecretCipher } from './crypto.js'
import { assertSlugs, KeyStoreError, type MaskedKey, type SecretStore, type StoredSecret } from './types.js'

export interface KeyRingOptions {
  /** Where the encrypted records live. */
  store: SecretStore
  /** The key new and rotated records are encrypted under. */
  masterKey: MasterKey
  /** Older master keys still accepted for reading, until `rotate()` has moved every record off them. */
  previousMasterKeys?: readonly MasterKey[]
  /**
   * How long a decrypted key is reused before the store is asked again. Writes through this key ring
   * invalidate it at once; writes through another instance show up within this time. Concurrent lookups
   * of a key not in the cache share one read of the store. 0 disables the cache, and that sharing.
   * Default 60,000.
   */
  cacheTtlMs?: number
  /** Most decrypted keys held in the cache. Default 1,000. */
  cacheMax?: number
  /**
   * The clock, in milliseconds since the epoch: it stamps `createdAt`/`updatedAt` and ages cached keys.
   * Default `Date.now`. A test sets it to move time on at once, rather than waiting for it to pass.
   */
  now?: () => number
}

/**
 * Provider keys encrypted at rest: the one place plaintext and ciphertext meet.
 *
 * @example
 * const keys = createKeyRing({ store, masterKey: process.env.GATEWAY_MASTER_KEY! })
 * await keys.putSecret('openai', 'default', 'sk-...')
 * const apiKey = await keys.getSecret('openai', 'default')
 */
export interface KeyRing {
  /** The decrypted key, or undefined when none is stored under (provider, alias). */
  getSecret(provider: string, alias: string): Promise<string | undefined>
  /** Stores or replaces a key, less spaces or tabs around it (HTTP drops them); answers its masked form. */
  putSecret(provider: string, alias: string, secret: string): Promise<MaskedKey>
  /** True when a key was removed. */
  deleteSecret(provider: string, alias: string): Promise<boolean>
  /** Stored keys without their secrets, ordered by provider then alias. */
  listKeys(provider?: string): Promise<MaskedKey[]>
  /** A provider's aliases, sorted; for "configured aliases" in error messages. */
  aliases(provider: string): Promise<string[]>
  /**
   * Re-encrypts every record not under the current master key. Every such record is decrypted before any
   * is written, so a missing previous key fails the whole call and changes nothing. A record rewritten
   * between that read and the write back is left as the newer write has it: writes through this key ring
   * wait for each other; one through another instance in the moment between the last read and the write
   * back can still be undone, so rotate where no other instance writes keys.
   */
  rotate(): Promise<{ rotated: number }>
}

/** Longest secret accepted, in UTF-8 bytes: far above any provider's key, small enough for a header. */
export const MAX_SECRET_BYTES = 8 * 1024
// What an HTTP field value may hold (RFC 9110 §5.5), as undici checks it before sending: a key with any
// other character (a control character, a typographic quote pasted from a document) could never be sent.
const HEADER_UNSAFE = /[^\t\x20-\x7e\x80-\xff]/
// HTTP drops whitespace around a field value: a key pasted with some is stored as it will arrive.
const SURROUNDING_SPACE = /^[\t ]+|[\t ]+$/g
const HINT_MIN_LENGTH = 16

/**
 * Builds a key ring over a secret store. Master keys are checked here, so a bad key fails at startup
 * rather than on the first request.
 *
 * @example
 * const keys = createKeyRing({
 *   store: createPostgresSecretStore(pool),
 *   masterKey: process.env.MASTER_KEY!,
 *   previousMasterKeys: [process.env.OLD_MASTER_KEY!],
 * })
 * await keys.rotate()
 */
export function createKeyRing(options: KeyRingOptions): KeyRing {
  const { store } = options
  if (!isSecretStore(store)) {
    throw new KeyStoreError('invalid-options', 'store must have get, put, delete and list methods')
  }
  const current = createSecretCipher(options.masterKey)
  const ciphers = knownCiphers(current, options.previousMasterKeys ?? [])
  const now = clockOf(options.now)
  const cache = createCache(options.cacheTtlMs ?? 60_000, options.cacheMax ?? 1000, now)
  // Bumped by every write, so a read that raced a write does not cache what it read.
  let generation = 0
  // The write in progress for each (provider, alias), so the next one waits for it: rotate() reads a record
  // and writes it back, and a put or delete landing between the two would otherwise be undone (an old,
  // maybe leaked, key written back over the new one, or a deleted key brought back).
  const writing = new Map<string, Promise<unknown>>()

  function oneWriteAtATime<T>(provider: string, alias: string, write: () => Promise<T>): Promise<T> {
    const key = cacheKey(provider, alias)
    const result = (writing.get(key) ?? Promise.resolve()).then(write)
    const done = result.then(
      () => {},
      () => {},
    )
    writing.set(key, done)
    void done.then(() => {
      if (writing.get(key) === done) writing.delete(key)
    })
    return result
  }

  // Reads of the store in progress, by cache key, when there is a cache: concurrent misses of one key share
  // a read. On a cold cache (a restart under load) every request would otherwise send its own query, and a
  // burst of them queues in the store's pool past the lookup bound, each refused 503.
  const reading = new Map<string, Promise<string | undefined>>()

  function invalidate(provider: string, alias: string): void {
    generation++
    const key = cacheKey(provider, alias)
    cache?.delete(key)
    // A read begun before this write is left to its callers; calls from now on start their own.
    reading.delete(key)
  }

  function decrypt(record: StoredSecret, provider: string, alias: string): string {
    const cipher = ciphers.get(record.keyId)
    if (cipher === undefined) {
      throw new KeyStoreError(
        'unknown-master-key',
        `stored key ${provider}/${alias} is encrypted under master key ${record.keyId}, which this key ring ` +
          `does not hold (known: ${[...ciphers.keys()].join(', ')}); pass it in previousMasterKeys`,
      )
    }
    return cipher.decrypt(record.ciphertext, provider, alias)
  }

  async function getSecret(provider: string, alias: string): Promise<string | undefined> {
    assertSlugs(provider, alias)
    if (cache === undefined) return readSecret(provider, alias)
    const key = cacheKey(provider, alias)
    const cached = cache.get(key)
    if (cached !== undefined) return cached
    let read = reading.get(key)
    if (read === undefined) {
      const started = readSecret(provider, alias)
      const forget = () => {
        if (reading.get(key) === started) reading.delete(key)
      }
      started.then(forget, forget)
      reading.set(key, started)
      read = started
    }
    return read
  }

  async function readSecret(provider: string, alias: string): Promise<string | undefined> {
    const startedAt = generation
    const record = await store.get(provider, alias)
    if (record === undefined) return undefined
    const secret = decrypt(record, provider, alias)
    if (generation === startedAt) cache?.set(cacheKey(provider, alias), secret)
    return secret
  }

  async function putSecret(provider: string, alias: string, given: string): Promise<MaskedKey> {
    assertSlugs(provider, alias)
    const secret = typeof given === 'string' ? given.replace(SURROUNDING_SPACE, '') : given
    assertSecret(secret)
    return oneWriteAtATime(provider, alias, () => writeSecret(provider, alias, secret))
  }

  async function writeSecret(provider: string, alias: string, secret: string): Promise<MaskedKey> {
    const existing = await store.get(provider, alias)
    const at = now()
    const record: StoredSecret = {
      provider,
      alias,
      ciphertext: current.encrypt(secret, provider, alias),
      keyId: current.keyId,
      hint: maskSecret(secret),
      createdAt: existing?.createdAt ?? at,
      updatedAt: at,
    }
    invalidate(provider, alias)
    await store.put(record)
    invalidate(provider, alias)
    return toMasked(record)
  }

  async function deleteSecret(provider: string, alias: string): Promise<boolean> {
    assertSlugs(provider, alias)
    return oneWriteAtATime(provider, alias, async () => {
      invalidate(provider, alias)
      const deleted = await store.delete(provider, alias)
      invalidate(provider, alias)
      return deleted
    })
  }

  async function listKeys(provider?: string): Promise<MaskedKey[]> {
    if (provider !== undefined) assertSlugs(provider)
    const records = await store.list(provider)
    return records.map(toMasked)
  }

  async function aliases(provider: string): Promise<string[]> {
    assertSlugs(provider)
    const records = await store.list(provider)
    return records.map((record) => record.alias).sort()
  }

  async function rotate(): Promise<{ rotated: number }> {
    const stale = (await store.list()).filter((record) => record.keyId !== current.keyId)
    const plain = stale.map((record) => ({ record, secret: decrypt(record, record.provider, record.alias) }))
    let rotated = 0
    for (const { record, secret } of plain) {
      if (await oneWriteAtATime(record.provider, record.alias, () => rewrite(record, secret))) rotated++
    }
    return { rotated }
  }

  // Re-read just before the write, after any write through this key ring to the record has finished; one
  // through another instance can still land between the re-read and the write.
  async function rewrite(record: StoredSecret, secret: string): Promise<boolean> {
    const latest = await store.get(record.provider, record.alias)
    if (latest === undefined || latest.ciphertext !== record.ciphertext) return false
    const ciphertext = current.encrypt(secret, record.provider, record.alias)
    // The secret itself is unchanged, so updatedAt keeps saying when it was last set.
    await store.put({ ...record, ciphertext, keyId: current.keyId })
    invalidate(record.provider, record.alias)
    return true
  }

  return { getSecret, putSecret, deleteSecret, listKeys, aliases, rotate }
}

function knownCiphers(current: SecretCipher, previous: readonly MasterKey[]): Map<string, SecretCipher> {
  if (!Array.isArray(previous)) {
    throw new KeyStoreError('invalid-options', 'previousMasterKeys must be an array of master keys')
  }
  const ciphers = new Map([[current.keyId, current]])
  for (const key of previous) {
    const cipher = createSecretCipher(key)
    if (!ciphers.has(cipher.keyId)) ciphers.set(cipher.keyId, cipher)
  }
  return ciphers
}

function clockOf(now: unknown): () => number {
  // Looked up at each call, so a test that fakes Date after this key ring was made still moves its clock.
  if (now === undefined) return () => Date.now()
  if (typeof now !== 'function') {
    throw new KeyStoreError('invalid-options', `now must be a function, got ${typeof now}`)
  }
  return now as () => number
}

function createCache(ttlMs: number, max: number, now: () => number): LRUCache<string, string> | undefined {
  if (!Number.isInteger(ttlMs) || ttlMs < 0) {
    throw new KeyStoreError('invalid-options', `cacheTtlMs must be a non-negative integer, got ${ttlMs}`)
  }
  if (!Number.isInteger(max) || max < 1) {
    throw new KeyStoreError('invalid-options', `cacheMax must be a positive integer, got ${max}`)
  }
  if (ttlMs === 0) return undefined
  // The clock is read at every lookup (ttlResolution 0), so one that was moved on is seen at once.
  return new LRUCache<string, string>({ max, ttl: ttlMs, ttlResolution: 0, perf: { now } })
}

function cacheKey(provider: string, alias: string): string {
  return `${provider}/${alias}`
}

function isSecretStore(store: unknown): store is SecretStore {
  const candidate = store as Partial<Record<keyof SecretStore, unknown>> | null
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.get === 'function' &&
    typeof candidate.put === 'function' &&
    typeof candidate.delete === 'function' &&
    typeof candidate.list === 'function'
  )
}

function assertSecret(secret: unknown): asserts secret is string {
  if (typeof secret !== 'string' || secret.length === 0) {
    throw new KeyStoreError('invalid-secret', 'secret must be a non-empty string')
  }
  // Stored keys are sent upstream in a header: refused here, a key that cannot go there would be accepted
  // and then fail every request that uses it, as a provider error (502). CR and LF would forge a header.
  if (HEADER_UNSAFE.test(secret)) {
    throw new KeyStoreError(
      'invalid-secret',
      'secret must hold only characters a header value can carry (no CR, LF, NUL, other control characters or characters beyond U+00FF)',
    )
  }
  const bytes = Buffer.byteLength(secret, 'utf8')
  if (bytes > MAX_SECRET_BYTES) {
    throw new KeyStoreError('invalid-secret', `secret is ${bytes} bytes; the limit is ${MAX_SECRET_BYTES}`)
  }
}

/**
 * The masked form listings show: the first 3 and last 4 characters of keys of 16 characters or more,
 * otherwise only an ellipsis, so a short key is never mostly revealed.
 *
 * @example
 * maskSecret('sk-proj-abcdefghijwxyz') // 'sk-…wxyz'
 * maskSecret('short') // '…'
 */
export function maskSecret(secret: string): string {
  const chars = Array.from(secret)
  if (chars.length < HINT_MIN_LENGTH) return '…'
  return `${chars.slice(0, 3).join('')}…${chars.slice(-4).join('')}`
}

function toMasked(record: StoredSecret): MaskedKey {
  const { provider, alias, hint, keyId, createdAt, updatedAt } = record
  return { provider, alias, hint, keyId, createdAt, updatedAt }
}
