import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createSecretKey,
  type KeyObject,
  randomBytes,
} from 'node:crypto'
import { KeyStoreError } from './types.js'

/** A 32-byte master key: raw bytes, 64 hex digits, or base64 / base64url of 32 bytes. */
export type MasterKey = Uint8Array | string

/**
 * Encrypts and decrypts provider keys under one master key (AES-256-GCM).
 *
 * @example
 * const cipher = createSecretCipher(process.env.GATEWAY_MASTER_KEY!)
 * const sealed = cipher.encrypt('sk-live-123', 'openai', 'default')
 * cipher.decrypt(sealed, 'openai', 'default') // 'sk-live-123'
 */
export interface SecretCipher {
  /** 8 hex digits: the start of the SHA-256 of the master key. Stored beside every ciphertext. */
  readonly keyId: string
  encrypt(plaintext: string, provider: string, alias: string): string
  /** Throws `KeyStoreError` (`decrypt-failed`) on altered data or another (provider, alias). */
  decrypt(ciphertext: string, provider: string, alias: string): string
}

// Layout: version (1) | key id (4) | IV (12) | tag (16) | encrypted bytes. The version byte leaves room for
// a future format; the key id lets a reader pick the right master key before trying to decrypt.
const VERSION = 1
const KEY_ID_BYTES = 4
const HEADER_BYTES = 1 + KEY_ID_BYTES
const IV_BYTES = 12
const TAG_BYTES = 16
const MASTER_KEY_BYTES = 32
const HEX_KEY = /^[0-9a-f]{64}$/i
const BASE64_KEY = /^[A-Za-z0-9+/_-]{43}=?$/

/**
 * Reads a master key, throwing `KeyStoreError` (`invalid-master-key`) for anything but 32 bytes. The message
 * never repeats the input, which may be a real key with a typo.
 *
 * @example
 * parseMasterKey(randomBytes(32).toString('hex')).length // 32
 */
export function parseMasterKey(input: MasterKey): Buffer {
  if (input instanceof Uint8Array) {
    if (input.length === MASTER_KEY_BYTES) return Buffer.from(input)
    throw invalidMasterKey(`got ${input.length} bytes`)
  }
  if (typeof input !== 'string') throw invalidMasterKey(`got ${typeof input}`)
  // Keys read from files or environment variables often carry a trailing newline.
  const text = input.trim()
  if (HEX_KEY.test(text)) return Buffer.from(text, 'hex')
  if (BASE64_KEY.test(text)) {
    const bytes = Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64')
    // Node's base64 decoder skips characters it does not know; only an exact round trip is a real key.
    if (bytes.length === MASTER_KEY_BYTES && sameBase64(bytes, text)) return bytes
  }
  throw invalidMasterKey(`got a string of ${text.length} characters that is neither 64 hex digits nor base64`)
}

function sameBase64(bytes: Buffer, text: string): boolean {
  const unpadded = text.replace(/=+$/, '')
  return bytes.toString('base64').replace(/=+$/, '') === unpadded || bytes.toString('base64url') === unpadded
}

function invalidMasterKey(detail: string): KeyStoreError {
  return new KeyStoreError(
    'invalid-master-key',
    `master key must be 32 bytes: a Buffer, 64 hex digits or base64 (${detail})`,
  )
}

/**
 * The id stored with ciphertexts encrypted under `key`: the first 8 hex digits of its SHA-256, so an
 * operator can tell which key a record needs without the key being revealed.
 *
 * @example
 * masterKeyId(Buffer.alloc(32)) // '66687aad'
 */
export function masterKeyId(key: MasterKey): string {
  return createHash('sha256')
    .update(parseMasterKey(key))
    .digest('hex')
    .slice(0, KEY_ID_BYTES * 2)
}

/**
 * The master key id written inside a ciphertext, or undefined when it is not in this format.
 *
 * @example
 * readKeyId(cipher.encrypt('sk-1', 'openai', 'default')) === cipher.keyId // true
 */
export function readKeyId(ciphertext: string): string | undefined {
  const bytes = Buffer.from(ciphertext, 'base64')
  if (bytes.length < HEADER_BYTES + IV_BYTES + TAG_BYTES || bytes[0] !== VERSION) return undefined
  return bytes.subarray(1, HEADER_BYTES).toString('hex')
}

/**
 * A cipher for one master key; the key is validated here, at construction, and kept as a `KeyObject` so
 * it never shows up when the cipher is logged or inspected.
 *
 * @example
 * const cipher = createSecretCipher(Buffer.alloc(32, 7))
 * cipher.decrypt(cipher.encrypt('sk-1', 'openai', 'default'), 'openai', 'default') // 'sk-1'
 */
export function createSecretCipher(masterKey: MasterKey): SecretCipher {
  const bytes = parseMasterKey(masterKey)
  const key: KeyObject = createSecretKey(bytes)
  const keyIdBytes = createHash('sha256').update(bytes).digest().subarray(0, KEY_ID_BYTES)
  bytes.fill(0)
  const header = Buffer.concat([Buffer.from([VERSION]), keyIdBytes])
  const keyId = keyIdBytes.toString('hex')

  function encrypt(plaintext: string, provider: string, alias: string): string {
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', key, iv)
    cipher.setAAD(associatedData(header, provider, alias))
    const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
    return Buffer.concat([header, iv, cipher.getAuthTag(), data]).toString('base64')
  }

  function decrypt(ciphertext: string, provider: string, alias: string): string {
    const bytes = Buffer.from(ciphertext, 'base64')
    if (
      bytes.length < HEADER_BYTES + IV_BYTES + TAG_BYTES ||
      !bytes.subarray(0, HEADER_BYTES).equals(header)
    ) {
      throw decryptFailed(provider, alias, 'it is not a ciphertext of this master key')
    }
    const iv = bytes.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES)
    const tag = bytes.subarray(HEADER_BYTES + IV_BYTES, HEADER_BYTES + IV_BYTES + TAG_BYTES)
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES })
      decipher.setAAD(associatedData(header, provider, alias))
      decipher.setAuthTag(tag)
      const data = bytes.subarray(HEADER_BYTES + IV_BYTES + TAG_BYTES)
      return Buffer.concat([decipher.update(data), decipher.final()]).toString('utf8')
    } catch (cause) {
      throw decryptFailed(provider, alias, 'it was altered or belongs to another provider or alias', cause)
    }
  }

  return { keyId, encrypt, decrypt }
}

// Binding the header, provider and alias into the tag means a row copied to another alias, or relabelled
// with another key id, fails authentication instead of handing out the wrong provider's key.
function associatedData(header: Buffer, provider: string, alias: string): Buffer {
  return Buffer.concat([header, Buffer.from(`${provider}\0${alias}`, 'utf8')])
}

function decryptFailed(provider: string, alias: string, why: string, cause?: unknown): KeyStoreError {
  return new KeyStoreError('decrypt-failed', `stored key ${provider}/${alias} cannot be decrypted: ${why}`, {
    cause,
  })
}
