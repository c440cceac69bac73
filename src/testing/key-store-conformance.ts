import { randomBytes } from 'node:crypto'
import { beforeEach, describe, expect, it } from 'vitest'
import type { SecretStore, StoredSecret } from '../keys/types.js'

/**
 * Registers a vitest suite every {@link SecretStore} must pass. `makeStore` is called before each test and
 * must answer an empty store (a fresh prefix, schema or table); cleaning up afterwards is the caller's job.
 *
 * @example
 * import { secretStoreConformance } from 'ai-gateway-middleware/testing/conformance'
 * secretStoreConformance('my store', () => createMyStore({ prefix: `test-${randomUUID()}:` }))
 */
export function secretStoreConformance(
  name: string,
  makeStore: () => SecretStore | Promise<SecretStore>,
): void {
  describe(`${name}: SecretStore conformance`, () => {
    let store: SecretStore

    beforeEach(async () => {
      store = await makeStore()
    })

    it('answers undefined for a key it does not hold', async () => {
      expect(await store.get('openai', 'default')).toBeUndefined()
      expect(await store.list()).toEqual([])
      expect(await store.list('openai')).toEqual([])
    })

    it('returns a stored record exactly as it was put', async () => {
      const stored = record('openai', 'default')
      await store.put(stored)
      expect(await store.get('openai', 'default')).toEqual(stored)
    })

    it('replaces every field when the same (provider, alias) is put again', async () => {
      await store.put(record('openai', 'default'))
      const replacement = record('openai', 'default', {
        keyId: 'ffffffff',
        hint: '…',
        createdAt: 1_600_000_000_001,
      })
      await store.put(replacement)
      expect(await store.get('openai', 'default')).toEqual(replacement)
      expect(await store.list()).toEqual([replacement])
    })

    it('keeps providers and aliases apart', async () => {
      const records = [
        record('openai', 'default'),
        record('openai', 'backup'),
        record('anthropic', 'default'),
      ]
      for (const r of records) await store.put(r)
      expect(await store.get('openai', 'default')).toEqual(records[0])
      expect(await store.get('openai', 'backup')).toEqual(records[1])
      expect(await store.get('anthropic', 'default')).toEqual(records[2])
      expect(await store.get('anthropic', 'backup')).toBeUndefined()
    })

    it('deletes one record, answering true once and then false', async () => {
      const kept = record('openai', 'backup')
      await store.put(record('openai', 'default'))
      await store.put(kept)
      expect(await store.delete('openai', 'default')).toBe(true)
      expect(await store.delete('openai', 'default')).toBe(false)
      expect(await store.delete('groq', 'default')).toBe(false)
      expect(await store.get('openai', 'default')).toBeUndefined()
      expect(await store.get('openai', 'backup')).toEqual(kept)
    })

    it('lists by provider, then alias, in code-unit order', async () => {
      const aliases = ['ab', 'a_b', 'a1', 'a-b', 'z', '0']
      for (const alias of aliases) await store.put(record('openai', alias))
      await store.put(record('anthropic', 'default'))
      await store.put(record('xai', 'default'))
      const openai = (await store.list('openai')).map((r) => r.alias)
      expect(openai).toEqual(['0', 'a-b', 'a1', 'a_b', 'ab', 'z'])
      const all = (await store.list()).map((r) => `${r.provider}/${r.alias}`)
      expect(all).toEqual(['anthropic/default', ...openai.map((a) => `openai/${a}`), 'xai/default'])
      expect(await store.list('mistral')).toEqual([])
    })

    it('stops listing a provider once its last alias is deleted', async () => {
      await store.put(record('openai', 'default'))
      await store.put(record('xai', 'default'))
      await store.delete('openai', 'default')
      expect((await store.list()).map((r) => r.provider)).toEqual(['xai'])
      expect(await store.list('openai')).toEqual([])
    })

    it('round-trips long ciphertexts and non-ASCII hints', async () => {
      const long = record('openai', 'long', {
        ciphertext: randomBytes(12 * 1024).toString('base64'),
        hint: 'ключ…日本語😀',
      })
      await store.put(long)
      expect(await store.get('openai', 'long')).toEqual(long)
    })

    it('loses none of many concurrent puts', async () => {
      const records = Array.from({ length: 25 }, (_, i) => record(i % 2 ? 'openai' : 'anthropic', `k${i}`))
      await Promise.all(records.map((r) => store.put(r)))
      expect(await store.list()).toHaveLength(records.length)
      for (const r of records) expect(await store.get(r.provider, r.alias)).toEqual(r)
    })
  })
}

function record(provider: string, alias: string, overrides: Partial<StoredSecret> = {}): StoredSecret {
  return {
    provider,
    alias,
    ciphertext: randomBytes(60).toString('base64'),
    keyId: '0a1b2c3d',
    hint: 'sk-…wxyz',
    // Millisecond precision on purpose: a store must not round it away.
    createdAt: 1_700_000_000_123,
    updatedAt: 1_700_000_456_789,
    ...overrides,
  }
}
