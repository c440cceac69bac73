import { createHash, randomBytes } from 'node:crypto'
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { createSecretCipher, masterKeyId, parseMasterKey, readKeyId } from '../../src/keys/crypto.js'
import { createKeyRing, type KeyRing, MAX_SECRET_BYTES, maskSecret } from '../../src/keys/key-ring.js'
import { createMemorySecretStore } from '../../src/keys/memory-store.js'
import { KeyStoreError, type SecretStore, type StoredSecret } from '../../src/keys/types.js'

const KEY_A = Buffer.alloc(32, 0xa1)
const KEY_B = Buffer.alloc(32, 0xb2)
const CANARY = 'sk-canary-7f3e9a1c5b2d4e6f8a0b'

function rejectsWith(reason: string) {
  return expect.objectContaining({ name: 'KeyStoreError', reason })
}

function captureError(fn: () => unknown): unknown {
  try {
    fn()
  } catch (error) {
    return error
  }
  return undefined
}

/** A memory store that also counts reads and keeps every record it was given. */
function recordingStore() {
  const inner = createMemorySecretStore()
  const written: StoredSecret[] = []
  let gets = 0
  const store: SecretStore = {
    get: (provider, alias) => {
      gets++
      return inner.get(provider, alias)
    },
    put: (record) => {
      written.push(record)
      return inner.put(record)
    },
    delete: (provider, alias) => inner.delete(provider, alias),
    list: (provider) => inner.list(provider),
  }
  return { store, written, gets: () => gets }
}

describe('parseMasterKey()', () => {
  const bytes = randomBytes(32)

  it.each([
    ['a Buffer', bytes],
    ['a Uint8Array', new Uint8Array(bytes)],
    ['64 hex digits', bytes.toString('hex')],
    ['upper-case hex', bytes.toString('hex').toUpperCase()],
    ['base64', bytes.toString('base64')],
    ['base64 without padding', bytes.toString('base64').replace(/=$/, '')],
    ['base64url', bytes.toString('base64url')],
    ['hex with a trailing newline', `${bytes.toString('hex')}\n`],
  ])('accepts %s', (_, input) => {
    expect(parseMasterKey(input)).toEqual(bytes)
  })

  it.each([
    ['31 bytes', randomBytes(31)],
    ['33 bytes', randomBytes(33)],
    ['63 hex digits', bytes.toString('hex').slice(1)],
    ['base64 of 24 bytes', randomBytes(24).toString('base64')],
    ['base64 of 48 bytes', randomBytes(48).toString('base64')],
    ['a passphrase', 'correct horse battery staple'],
    ['base64 with a stray character', `${bytes.toString('base64').slice(0, 42)}!=`],
    ['an empty string', ''],
    ['a number', 42 as unknown as string],
  ])('refuses %s with invalid-master-key', (_, input) => {
    expect(() => parseMasterKey(input)).toThrow(rejectsWith('invalid-master-key'))
  })

  it('never repeats the rejected key in its message', () => {
    const almost = `${bytes.toString('hex')}zz`
    const error = captureError(() => parseMasterKey(almost))
    expect(error).toBeInstanceOf(KeyStoreError)
    expect((error as Error).message).not.toContain(almost.slice(0, 16))
  })
})

describe('createSecretCipher()', () => {
  const cipher = createSecretCipher(KEY_A)

  it('identifies a master key by the start of its SHA-256', () => {
    const expected = createHash('sha256').update(KEY_A).digest('hex').slice(0, 8)
    expect(cipher.keyId).toBe(expected)
    expect(masterKeyId(KEY_A.toString('hex'))).toBe(expected)
    expect(readKeyId(cipher.encrypt('x', 'openai', 'default'))).toBe(expected)
  })

  it('uses a fresh IV for every encryption', () => {
    const first = cipher.encrypt(CANARY, 'openai', 'default')
    const second = cipher.encrypt(CANARY, 'openai', 'default')
    expect(first).not.toBe(second)
    expect(cipher.decrypt(first, 'openai', 'default')).toBe(CANARY)
    expect(cipher.decrypt(second, 'openai', 'default')).toBe(CANARY)
  })

  it('round-trips non-ASCII and 8 KiB secrets', () => {
    for (const secret of ['κλειδί-😀', 'x'.repeat(MAX_SECRET_BYTES)]) {
      expect(cipher.decrypt(cipher.encrypt(secret, 'groq', 'k'), 'groq', 'k')).toBe(secret)
    }
  })

  it('fails to decrypt under another provider or alias, or after any byte changes', () => {
    const sealed = cipher.encrypt(CANARY, 'openai', 'default')
    expect(() => cipher.decrypt(sealed, 'openai', 'backup')).toThrow(rejectsWith('decrypt-failed'))
    expect(() => cipher.decrypt(sealed, 'anthropic', 'default')).toThrow(rejectsWith('decrypt-failed'))
    const bytes = Buffer.from(sealed, 'base64')
    for (const index of [0, 2, 7, 20, bytes.length - 1]) {
      const tampered = Buffer.from(bytes)
      tampered[index]! ^= 0x01
      expect(() => cipher.decrypt(tampered.toString('base64'), 'openai', 'default')).toThrow(
        rejectsWith('decrypt-failed'),
      )
    }
    expect(() => cipher.decrypt(bytes.subarray(0, 20).toString('base64'), 'openai', 'default')).toThrow(
      rejectsWith('decrypt-failed'),
    )
  })

  it('does not show the master key when inspected', () => {
    expect(JSON.stringify(cipher)).not.toContain(KEY_A.toString('hex'))
    expect(inspect(cipher, { depth: 5 })).not.toContain('a1a1a1')
  })
})

describe('createKeyRing()', () => {
  it('refuses a bad master key or options at construction', () => {
    const store = createMemorySecretStore()
    expect(() => createKeyRing({ store, masterKey: 'not-a-key' })).toThrow(rejectsWith('invalid-master-key'))
    expect(() => createKeyRing({ store, masterKey: KEY_A, previousMasterKeys: ['short'] })).toThrow(
      rejectsWith('invalid-master-key'),
    )
    expect(() => createKeyRing({ store, masterKey: KEY_A, cacheTtlMs: -1 })).toThrow(
      rejectsWith('invalid-options'),
    )
    expect(() => createKeyRing({ store, masterKey: KEY_A, now: 1 as unknown as () => number })).toThrow(
      rejectsWith('invalid-options'),
    )
    expect(() => createKeyRing({ store: {} as SecretStore, masterKey: KEY_A })).toThrow(
      rejectsWith('invalid-options'),
    )
  })

  it('round-trips a secret and answers undefined for an alias it does not hold', async () => {
    const keys = createKeyRing({ store: createMemorySecretStore(), masterKey: KEY_A })
    await keys.putSecret('openai', 'default', CANARY)
    expect(await keys.getSecret('openai', 'default')).toBe(CANARY)
    expect(await keys.getSecret('openai', 'backup')).toBeUndefined()
    expect(await keys.getSecret('anthropic', 'default')).toBeUndefined()
  })

  it('gives the store nothing but ciphertext', async () => {
    const { store, written } = recordingStore()
    const keys = createKeyRing({ store, masterKey: KEY_A, previousMasterKeys: [KEY_B] })
    await keys.putSecret('openai', 'default', CANARY)
    await keys.putSecret('openai', 'default', `${CANARY}-2`)
    await keys.rotate()
    const held = JSON.stringify([written, await store.list()])
    const secret = CANARY.slice(3, -4) // the part the hint leaves out
    for (const form of [
      secret,
      Buffer.from(CANARY).toString('base64').slice(4, -4),
      Buffer.from(CANARY).toString('base64url').slice(4, -4),
      Buffer.from(CANARY).toString('hex'),
    ]) {
      expect(held).not.toContain(form)
    }
    expect(written.every((record) => !Object.values(record).includes(CANARY))).toBe(true)
  })

  it('refuses a record whose ciphertext was tampered with or copied to another alias', async () => {
    const store = createMemorySecretStore()
    const keys = createKeyRing({ store, masterKey: KEY_A, cacheTtlMs: 0 })
    await keys.putSecret('openai', 'default', CANARY)
    const original = (await store.get('openai', 'default'))!

    await store.put({ ...original, alias: 'stolen' })
    await expect(keys.getSecret('openai', 'stolen')).rejects.toThrow(rejectsWith('decrypt-failed'))
    await store.put({ ...original, provider: 'groq' })
    await expect(keys.getSecret('groq', 'default')).rejects.toThrow(rejectsWith('decrypt-failed'))

    const bytes = Buffer.from(original.ciphertext, 'base64')
    bytes[bytes.length - 3]! ^= 0x80
    await store.put({ ...original, ciphertext: bytes.toString('base64') })
    await expect(keys.getSecret('openai', 'default')).rejects.toThrow(rejectsWith('decrypt-failed'))
  })

  it('rotates every record to the current master key and keeps them readable', async () => {
    const store = createMemorySecretStore()
    const underA = createKeyRing({ store, masterKey: KEY_A })
    const secrets = {
      'openai/default': 'sk-a-0001',
      'openai/backup': CANARY,
      'anthropic/default': 'sk-ant-3',
    }
    for (const [path, secret] of Object.entries(secrets)) {
      const [provider, alias] = path.split('/') as [string, string]
      await underA.putSecret(provider, alias, secret)
    }
    const before = await store.list()

    const underB = createKeyRing({ store, masterKey: KEY_B, previousMasterKeys: [KEY_A] })
    await underB.putSecret('groq', 'default', 'gsk-already-under-b')
    expect(await underB.rotate()).toEqual({ rotated: 3 })

    const after = await store.list()
    expect(after.map((r) => r.keyId)).toEqual(Array(4).fill(masterKeyId(KEY_B)))
    for (const record of before) {
      const rotated = after.find((r) => r.provider === record.provider && r.alias === record.alias)!
      expect(rotated).toMatchObject({
        createdAt: record.createdAt,
        updatedAt: record.updatedAt,
        hint: record.hint,
      })
      expect(rotated.ciphertext).not.toBe(record.ciphertext)
    }
    const onlyB = createKeyRing({ store, masterKey: KEY_B })
    for (const [path, secret] of Object.entries(secrets)) {
      const [provider, alias] = path.split('/') as [string, string]
      expect(await onlyB.getSecret(provider, alias)).toBe(secret)
    }
    expect(await underB.rotate()).toEqual({ rotated: 0 })
  })

  it.each([
    [
      'replaced',
      (keys: KeyRing) => keys.putSecret('openai', 'default', 'sk-new-after-a-leak-0002'),
      'sk-new-after-a-leak-0002',
    ],
    ['deleted', (keys: KeyRing) => keys.deleteSecret('openai', 'default'), undefined],
  ])('does not undo a key %s while rotate() re-reads it', async (_, write, expected) => {
    const memory = createMemorySecretStore()
    await createKeyRing({ store: memory, masterKey: KEY_A }).putSecret('openai', 'default', 'sk-old-0001')
    // The store answers rotate()'s re-read of the record only when the test says so: the round trip in
    // which a write through the same key ring could land.
    let reReadHeld: () => void = () => {}
    const reRead = new Promise<void>((resolve) => {
      reReadHeld = resolve
    })
    let release: () => void = () => {}
    let gets = 0
    const store: SecretStore = {
      ...memory,
      get: async (provider, alias) => {
        const record = await memory.get(provider, alias)
        if (++gets === 1) {
          reReadHeld()
          await new Promise<void>((resolve) => {
            release = resolve
          })
        }
        return record
      },
    }
    const keys = createKeyRing({ store, masterKey: KEY_B, previousMasterKeys: [KEY_A], cacheTtlMs: 0 })
    const rotating = keys.rotate()
    await reRead
    const writing = write(keys)
    // The memory store does no I/O: once this turn comes, every step the write could take has been taken.
    await new Promise((resolve) => setImmediate(resolve))
    release()
    await Promise.all([rotating, writing])
    expect(await keys.getSecret('openai', 'default')).toBe(expected)
  })

  it('names the missing master key when it cannot read a record, and rotates nothing', async () => {
    const store = createMemorySecretStore()
    await createKeyRing({ store, masterKey: KEY_A }).putSecret('openai', 'default', CANARY)
    await createKeyRing({ store, masterKey: KEY_B }).putSecret('openai', 'other', 'sk-other-key')
    const withoutA = createKeyRing({ store, masterKey: KEY_B })
    const missing = masterKeyId(KEY_A)

    await expect(withoutA.getSecret('openai', 'default')).rejects.toThrow(
      expect.objectContaining({ reason: 'unknown-master-key', message: expect.stringContaining(missing) }),
    )
    const before = await store.list()
    await expect(withoutA.rotate()).rejects.toThrow(rejectsWith('unknown-master-key'))
    expect(await store.list()).toEqual(before)
  })

  it('lists masked keys, never secrets', async () => {
    const keys = createKeyRing({ store: createMemorySecretStore(), masterKey: KEY_A })
    const masked = await keys.putSecret('openai', 'default', 'sk-proj-abcdefghijklmnopwxyz')
    await keys.putSecret('openai', 'ci', 'short-key')
    await keys.putSecret('anthropic', 'default', CANARY)

    expect(masked).toEqual({
      provider: 'openai',
      alias: 'default',
      hint: 'sk-…wxyz',
      keyId: masterKeyId(KEY_A),
      createdAt: expect.any(Number),
      updatedAt: expect.any(Number),
    })
    const all = await keys.listKeys()
    expect(all.map((k) => [k.provider, k.alias, k.hint])).toEqual([
      ['anthropic', 'default', `sk-…${CANARY.slice(-4)}`],
      ['openai', 'ci', '…'],
      ['openai', 'default', 'sk-…wxyz'],
    ])
    for (const key of all) expect(Object.keys(key).sort()).toEqual(Object.keys(masked).sort())
    expect(JSON.stringify(all)).not.toContain(CANARY)
    expect(await keys.listKeys('openai')).toHaveLength(2)
    expect(await keys.aliases('openai')).toEqual(['ci', 'default'])
    expect(await keys.aliases('groq')).toEqual([])
  })

  it('keeps createdAt and moves updatedAt when a secret is replaced', async () => {
    // The key ring stamps records with its clock: the test sets it rather than waiting for it to move.
    let clock = Date.UTC(2026, 0, 5, 12, 0, 0)
    const keys = createKeyRing({ store: createMemorySecretStore(), masterKey: KEY_A, now: () => clock })
    const first = await keys.putSecret('openai', 'default', 'sk-first')
    expect(first).toMatchObject({ createdAt: clock, updatedAt: clock })
    clock += 1000
    const second = await keys.putSecret('openai', 'default', 'sk-second')
    expect(second.createdAt).toBe(first.createdAt)
    expect(second.updatedAt).toBe(first.updatedAt + 1000)
    expect(await keys.getSecret('openai', 'default')).toBe('sk-second')
  })

  it('deletes keys', async () => {
    const keys = createKeyRing({ store: createMemorySecretStore(), masterKey: KEY_A })
    await keys.putSecret('openai', 'default', CANARY)
    expect(await keys.getSecret('openai', 'default')).toBe(CANARY)
    expect(await keys.deleteSecret('openai', 'default')).toBe(true)
    expect(await keys.deleteSecret('openai', 'default')).toBe(false)
    expect(await keys.getSecret('openai', 'default')).toBeUndefined()
  })

  it.each([
    ['an upper-case alias', 'openai', 'Prod'],
    ['an empty alias', 'openai', ''],
    ['an alias starting with a dash', 'openai', '-x'],
    ['a 65-character alias', 'openai', `a${'b'.repeat(64)}`],
    ['a path in the alias', 'openai', '../default'],
    ['a colon in the provider', 'open:ai', 'default'],
    ['an empty provider', '', 'default'],
  ])('refuses %s', async (_, provider, alias) => {
    const keys = createKeyRing({ store: createMemorySecretStore(), masterKey: KEY_A })
    const reason = provider === 'openai' ? 'invalid-alias' : 'invalid-provider'
    await expect(keys.getSecret(provider, alias)).rejects.toThrow(rejectsWith(reason))
    await expect(keys.putSecret(provider, alias, CANARY)).rejects.toThrow(rejectsWith(reason))
    await expect(keys.deleteSecret(provider, alias)).rejects.toThrow(rejectsWith(reason))
  })

  it("accepts the longest provider id, a custom provider's (custom- and 64 characters)", async () => {
    const keys = createKeyRing({ store: createMemorySecretStore(), masterKey: KEY_A })
    const provider = `custom-${'x'.repeat(64)}`
    expect(await keys.getSecret(provider, 'default')).toBeUndefined()
    await keys.putSecret(provider, 'default', CANARY)
    expect(await keys.getSecret(provider, 'default')).toBe(CANARY)
    await expect(keys.getSecret(`${provider}x`, 'default')).rejects.toThrow(rejectsWith('invalid-provider'))
  })

  it('stores a key pasted with spaces or tabs around it as HTTP will send it, without them', async () => {
    const keys = createKeyRing({ store: createMemorySecretStore(), masterKey: KEY_A })
    const masked = await keys.putSecret('openai', 'default', ` \t${CANARY}\t `)
    expect(await keys.getSecret('openai', 'default')).toBe(CANARY)
    expect(masked.hint).toBe(maskSecret(CANARY))
  })

  it('accepts spaces, tabs and Latin-1 letters inside a secret, which a header value can carry', async () => {
    const keys = createKeyRing({ store: createMemorySecretStore(), masterKey: KEY_A })
    await keys.putSecret('custom-x', 'default', 'Basic clé\tà part')
    expect(await keys.getSecret('custom-x', 'default')).toBe('Basic clé\tà part')
  })

  it('accepts the longest alias and an 8 KiB secret', async () => {
    const keys = createKeyRing({ store: createMemorySecretStore(), masterKey: KEY_A })
    const alias = `a${'b'.repeat(63)}`
    await keys.putSecret('openai', alias, 'k'.repeat(MAX_SECRET_BYTES))
    expect(await keys.getSecret('openai', alias)).toHaveLength(MAX_SECRET_BYTES)
  })

  it.each([
    ['an empty secret', ''],
    ['a line feed', 'sk-abc\nx-injected: 1'],
    ['a carriage return', 'sk-abc\r'],
    ['a NUL', 'sk-\0abc'],
    // Characters no header value can carry: accepted, the key would fail every request as a provider error.
    ['another control character', 'sk-abc\x01def'],
    ['a DEL', 'sk-abc\x7fdef'],
    ['a typographic quote pasted with it', 'sk-abc\u2019'],
    ['a character beyond U+00FF', 'sk-abc€def'],
    ['only spaces and tabs', ' \t '],
    ['more than 8 KiB', 'k'.repeat(MAX_SECRET_BYTES + 1)],
    ['more than 8 KiB of UTF-8', 'é'.repeat(MAX_SECRET_BYTES / 2 + 1)],
  ])('refuses a secret with %s', async (_, secret) => {
    const keys = createKeyRing({ store: createMemorySecretStore(), masterKey: KEY_A })
    await expect(keys.putSecret('openai', 'default', secret)).rejects.toThrow(rejectsWith('invalid-secret'))
  })

  describe('cache', () => {
    it('serves repeated reads from memory and drops entries on put and delete', async () => {
      const { store, gets } = recordingStore()
      const keys = createKeyRing({ store, masterKey: KEY_A })
      await keys.putSecret('openai', 'default', 'sk-one')
      const afterPut = gets()
      expect(await keys.getSecret('openai', 'default')).toBe('sk-one')
      expect(await keys.getSecret('openai', 'default')).toBe('sk-one')
      expect(gets()).toBe(afterPut + 1)

      await keys.putSecret('openai', 'default', 'sk-two')
      expect(await keys.getSecret('openai', 'default')).toBe('sk-two')
      await keys.deleteSecret('openai', 'default')
      expect(await keys.getSecret('openai', 'default')).toBeUndefined()
    })

    it('asks the store again once the TTL has passed, and every time when disabled', async () => {
      const cached = recordingStore()
      // The cache ages keys by the key ring's clock, which the test moves on instead of waiting.
      let clock = Date.UTC(2026, 0, 5, 12, 0, 0)
      const keys = createKeyRing({ store: cached.store, masterKey: KEY_A, cacheTtlMs: 20, now: () => clock })
      await keys.putSecret('openai', 'default', 'sk-one')
      await keys.getSecret('openai', 'default')
      const before = cached.gets()
      clock += 19
      await keys.getSecret('openai', 'default')
      expect(cached.gets(), 'read from the cache within its TTL').toBe(before)
      clock += 2
      await keys.getSecret('openai', 'default')
      expect(cached.gets(), 'asked the store again past its TTL').toBe(before + 1)
      await keys.getSecret('openai', 'default')
      expect(cached.gets(), 'cached again').toBe(before + 1)

      const uncached = recordingStore()
      const direct = createKeyRing({ store: uncached.store, masterKey: KEY_A, cacheTtlMs: 0 })
      await direct.putSecret('openai', 'default', 'sk-one')
      const start = uncached.gets()
      for (let i = 0; i < 3; i++) await direct.getSecret('openai', 'default')
      expect(uncached.gets()).toBe(start + 3)
    })

    it('shares one read of the store among concurrent lookups of a key not in the cache', async () => {
      const { store, gets } = recordingStore()
      await createKeyRing({ store, masterKey: KEY_A }).putSecret('openai', 'default', 'sk-one')
      const keys = createKeyRing({ store, masterKey: KEY_A })
      const before = gets()
      const burst = await Promise.all(Array.from({ length: 50 }, () => keys.getSecret('openai', 'default')))
      expect(burst).toEqual(Array(50).fill('sk-one'))
      expect(gets()).toBe(before + 1)

      // A failed read fails the lookups that shared it, and is not remembered.
      let failing = true
      const flaky = createKeyRing({
        store: {
          ...store,
          get: (provider, alias) =>
            failing
              ? Promise.reject(new KeyStoreError('store-unavailable', 'down'))
              : store.get(provider, alias),
        },
        masterKey: KEY_A,
      })
      const failed = await Promise.allSettled([1, 2, 3].map(() => flaky.getSecret('openai', 'default')))
      expect(failed.map((result) => result.status)).toEqual(['rejected', 'rejected', 'rejected'])
      failing = false
      expect(await flaky.getSecret('openai', 'default')).toBe('sk-one')
    })

    it('does not cache a value read while a write was in flight', async () => {
      const inner = createMemorySecretStore()
      let release: () => void = () => {}
      let holdNextGet = false
      const store: SecretStore = {
        ...inner,
        async get(provider, alias) {
          const record = await inner.get(provider, alias)
          if (holdNextGet) {
            holdNextGet = false
            await new Promise<void>((resolve) => {
              release = resolve
            })
          }
          return record
        },
      }
      const keys = createKeyRing({ store, masterKey: KEY_A })
      await keys.putSecret('openai', 'default', 'sk-old')
      holdNextGet = true
      const slowRead = keys.getSecret('openai', 'default')
      await keys.putSecret('openai', 'default', 'sk-new')
      release()
      expect(await slowRead).toBe('sk-old')
      expect(await keys.getSecret('openai', 'default')).toBe('sk-new')
    })
  })
})

describe('createMemorySecretStore()', () => {
  it('refuses new keys beyond its bound but still replaces existing ones', async () => {
    const keys = createKeyRing({ store: createMemorySecretStore({ maxKeys: 2 }), masterKey: KEY_A })
    await keys.putSecret('openai', 'a', 'sk-a')
    await keys.putSecret('openai', 'b', 'sk-b')
    await expect(keys.putSecret('openai', 'c', 'sk-c')).rejects.toThrow(rejectsWith('store-full'))
    await keys.putSecret('openai', 'a', 'sk-a2')
    expect(await keys.getSecret('openai', 'a')).toBe('sk-a2')
  })

  it('refuses a non-positive bound', () => {
    expect(() => createMemorySecretStore({ maxKeys: 0 })).toThrow(rejectsWith('invalid-options'))
  })
})

describe('maskSecret()', () => {
  it.each([
    ['sk-proj-abcdefghijwxyz', 'sk-…wxyz'],
    ['0123456789abcdef', '012…cdef'],
    ['0123456789abcde', '…'],
    ['x', '…'],
    ['😀😀😀bcdefghijkl😀xyz', '😀😀😀…😀xyz'],
  ])('masks %j as %j', (secret, hint) => {
    expect(maskSecret(secret)).toBe(hint)
  })
})

describe('KeyStoreError', () => {
  it('carries a reason and is an Error', () => {
    const error = new KeyStoreError('store-full', 'full')
    expect(error).toBeInstanceOf(Error)
    expect(error).toMatchObject({ name: 'KeyStoreError', reason: 'store-full', message: 'full' })
  })
})
