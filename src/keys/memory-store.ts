import { KeyStoreError, type SecretStore, type StoredSecret } from './types.js'

export interface MemorySecretStoreOptions {
  /** Most records held; a put of a new (provider, alias) beyond it fails with `store-full`. Default 10,000. */
  maxKeys?: number
}

/**
 * A {@link SecretStore} in process memory, for tests and single-instance hosts. Records are lost on
 * restart, so pair it with a persistent store in production.
 *
 * @example
 * const keys = createKeyRing({ store: createMemorySecretStore(), masterKey: process.env.MASTER_KEY! })
 */
export function createMemorySecretStore(options: MemorySecretStoreOptions = {}): SecretStore {
  const maxKeys = options.maxKeys ?? 10_000
  if (!Number.isInteger(maxKeys) || maxKeys < 1) {
    throw new KeyStoreError('invalid-options', `maxKeys must be a positive integer, got ${maxKeys}`)
  }
  const records = new Map<string, StoredSecret>()

  return {
    async get(provider, alias) {
      return records.get(mapKey(provider, alias))
    },

    async put(record) {
      const key = mapKey(record.provider, record.alias)
      // Refusing beats evicting: silently dropping a provider key would break requests far from the cause.
      if (!records.has(key) && records.size >= maxKeys) {
        throw new KeyStoreError('store-full', `memory secret store holds its maximum of ${maxKeys} keys`)
      }
      records.set(key, Object.freeze({ ...record }))
    },

    async delete(provider, alias) {
      return records.delete(mapKey(provider, alias))
    },

    async list(provider) {
      const all = [...records.values()]
      const selected = provider === undefined ? all : all.filter((record) => record.provider === provider)
      return selected.sort(byProviderThenAlias)
    },
  }
}

// Slugs never contain a slash, so the joined key is unambiguous.
function mapKey(provider: string, alias: string): string {
  return `${provider}/${alias}`
}

// The order `SecretStore.list` promises: provider, then alias, by code unit (what SQL `COLLATE "C"` gives).
function byProviderThenAlias(a: StoredSecret, b: StoredSecret): number {
  if (a.provider !== b.provider) return a.provider < b.provider ? -1 : 1
  if (a.alias !== b.alias) return a.alias < b.alias ? -1 : 1
  return 0
}
