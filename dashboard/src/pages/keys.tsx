/**
 * Stored provider keys, masked as the API returns them (`sk-…wxyz`): add one, rotate one (store a new
 * secret under the same alias; requests pick it up at once), delete one.
 */
import { useState } from 'preact/hooks'
import { api } from '../api.js'
import { ErrorNote, Note, PageHeader } from '../components.js'
import { config } from '../config.js'
import { formatTime } from '../format.js'
import { useLoad } from '../hooks.js'

/** A stored key as `GET /keys` lists it: never the secret, a hint of it. */
interface MaskedKey {
  readonly provider: string
  readonly alias: string
  readonly hint: string
  readonly updatedAt: number
}

const keyPath = (provider: string, alias: string) =>
  `keys/${encodeURIComponent(provider)}/${encodeURIComponent(alias)}`

export function KeysPage() {
  const keys = useLoad(() => api<{ keys: MaskedKey[] }>('keys').then((answer) => answer.keys), [])
  const [message, setMessage] = useState<string | undefined>()
  const [error, setError] = useState<Error | undefined>()

  const run = async (action: () => Promise<string>) => {
    setError(undefined)
    setMessage(undefined)
    try {
      setMessage(await action())
      await keys.reload()
    } catch (failure) {
      setError(failure as Error)
    }
  }
  const store = (provider: string, alias: string, secret: string) =>
    run(async () => {
      const key = await api<MaskedKey>(keyPath(provider, alias), { method: 'PUT', body: { secret } })
      return `Stored ${key.provider}/${key.alias} (${key.hint}).`
    })

  return (
    <section>
      <PageHeader title="Provider keys" />
      <p class="muted">
        Keys are encrypted at rest and never shown again: only a hint of their first and last characters. A
        request picks a key with <code>cf-aig-byok-alias</code> (<code>default</code> when it names none).
      </p>
      <ErrorNote error={error ?? keys.error} />
      {message === undefined ? null : <Note kind="ok">{message}</Note>}
      <div class="overflow-auto">
        <table class="striped keys" aria-busy={keys.loading && keys.data === undefined}>
          <thead>
            <tr>
              <th scope="col">Provider</th>
              <th scope="col">Alias</th>
              <th scope="col">Key</th>
              <th scope="col">Updated</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {(keys.data ?? []).map((key) => (
              <KeyRow
                key={`${key.provider}/${key.alias}`}
                entry={key}
                onRotate={(secret) => store(key.provider, key.alias, secret)}
                onDelete={() =>
                  run(async () => {
                    await api(keyPath(key.provider, key.alias), { method: 'DELETE' })
                    return `Deleted ${key.provider}/${key.alias}.`
                  })
                }
              />
            ))}
            {keys.data?.length === 0 ? (
              <tr>
                <td colSpan={5}>No stored keys yet.</td>
              </tr>
            ) : null}
          </tbody>
        </table>
      </div>
      <AddKey onAdd={store} />
    </section>
  )
}

function KeyRow({
  entry,
  onRotate,
  onDelete,
}: {
  entry: MaskedKey
  onRotate: (secret: string) => Promise<void>
  onDelete: () => Promise<void>
}) {
  const [mode, setMode] = useState<'idle' | 'rotate' | 'delete'>('idle')
  const [secret, setSecret] = useState('')
  const name = `${entry.provider}/${entry.alias}`
  return (
    <tr data-key={name}>
      <td>{entry.provider}</td>
      <td>{entry.alias}</td>
      <td>
        <code class="hint">{entry.hint}</code>
      </td>
      <td>{formatTime(entry.updatedAt)}</td>
      <td>
        {mode === 'rotate' ? (
          <form
            class="inline"
            onSubmit={(event) => {
              event.preventDefault()
              void onRotate(secret).then(() => setMode('idle'))
            }}
          >
            <input
              type="password"
              name="newSecret"
              aria-label={`New key for ${name}`}
              autocomplete="off"
              required
              value={secret}
              onInput={(event) => setSecret(event.currentTarget.value)}
            />
            <button type="submit">Save</button>
            <button type="button" class="secondary outline" onClick={() => setMode('idle')}>
              Cancel
            </button>
          </form>
        ) : mode === 'delete' ? (
          <span class="inline">
            <button type="button" class="danger" onClick={() => void onDelete()}>
              Confirm delete
            </button>
            <button type="button" class="secondary outline" onClick={() => setMode('idle')}>
              Cancel
            </button>
          </span>
        ) : (
          <span class="inline">
            <button type="button" class="secondary" onClick={() => setMode('rotate')}>
              Rotate
            </button>
            <button type="button" class="secondary outline" onClick={() => setMode('delete')}>
              Delete
            </button>
          </span>
        )}
      </td>
    </tr>
  )
}

function AddKey({ onAdd }: { onAdd: (provider: string, alias: string, secret: string) => Promise<void> }) {
  const [provider, setProvider] = useState('')
  const [alias, setAlias] = useState('default')
  const [secret, setSecret] = useState('')
  return (
    <form
      class="add-key"
      onSubmit={(event) => {
        event.preventDefault()
        void onAdd(provider.trim(), alias.trim(), secret).then(() => setSecret(''))
      }}
    >
      <h2>Add a key</h2>
      <div class="grid">
        <label>
          Provider
          <input
            name="provider"
            list="providers"
            required
            value={provider}
            onInput={(event) => setProvider(event.currentTarget.value)}
          />
          <datalist id="providers">
            {config.providers.map((id) => (
              <option key={id} value={id} />
            ))}
          </datalist>
        </label>
        <label>
          Alias
          <input
            name="alias"
            required
            pattern="[a-z0-9][a-z0-9-]*"
            value={alias}
            onInput={(event) => setAlias(event.currentTarget.value)}
          />
        </label>
        <label>
          Key
          <input
            name="secret"
            type="password"
            autocomplete="off"
            required
            value={secret}
            onInput={(event) => setSecret(event.currentTarget.value)}
          />
        </label>
      </div>
      <button type="submit">Store key</button>
    </form>
  )
}
