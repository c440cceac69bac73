/**
 * Settings: how the admin is set up, and the gateway's options as the host chose to show them (masked on
 * the server: keys, tokens, passwords and connection strings never reach the browser).
 */
import { Fragment } from 'preact'
import { api } from '../api.js'
import { ErrorNote, Note, PageHeader } from '../components.js'
import { config } from '../config.js'
import { formatTime } from '../format.js'
import { useLoad } from '../hooks.js'

interface SettingsAnswer {
  admin: { authentication: string; dashboard: boolean; sessionTtl: number | null; serves: string[] }
  settings: unknown
}

/** Seconds as hours, or as minutes when they make no whole number of hours. */
function duration(seconds: number): string {
  return seconds % 3600 === 0 ? `${seconds / 3600} hours` : `${Math.round(seconds / 60)} minutes`
}

function Value({ value }: { value: unknown }) {
  if (value === null) return <code class="muted">null</code>
  if (Array.isArray(value)) {
    if (value.length === 0) return <code class="muted">[]</code>
    if (value.every((item) => typeof item !== 'object' || item === null)) {
      return <code>{value.map(String).join(', ')}</code>
    }
    return (
      <ol class="tree">
        {value.map((item, index) => (
          <li key={index}>
            <Value value={item} />
          </li>
        ))}
      </ol>
    )
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
    if (entries.length === 0) return <code class="muted">{'{}'}</code>
    return (
      <dl class="tree">
        {entries.map(([key, entry]) => (
          <Fragment key={key}>
            <dt>{key}</dt>
            <dd>
              <Value value={entry} />
            </dd>
          </Fragment>
        ))}
      </dl>
    )
  }
  return <code>{String(value)}</code>
}

export function SettingsPage() {
  const loaded = useLoad(() => api<SettingsAnswer>('settings'), [])
  const data = loaded.data
  return (
    <section>
      <PageHeader title="Settings" />
      <ErrorNote error={loaded.error} />
      {data === undefined ? (
        <p aria-busy={loaded.loading}>Loading…</p>
      ) : (
        <>
          <article>
            <header>Admin</header>
            <dl class="facts">
              <dt>Authentication</dt>
              <dd>{data.admin.authentication}</dd>
              <dt>Serves</dt>
              <dd>{data.admin.serves.join(', ') || 'nothing but settings'}</dd>
              <dt>Sessions last</dt>
              <dd>{data.admin.sessionTtl === null ? '— (no login)' : duration(data.admin.sessionTtl)}</dd>
              {config.sessionExpiresAt === null ? null : (
                <>
                  <dt>Signed in until</dt>
                  <dd>{formatTime(config.sessionExpiresAt)}</dd>
                </>
              )}
            </dl>
          </article>
          <article class="settings" data-settings>
            <header>Gateway</header>
            {data.settings === null ? (
              <Note>
                This admin was given no settings to show: pass{' '}
                <code>settings: () =&gt; parseOptions(options)</code> to <code>createAdmin</code>.
              </Note>
            ) : (
              <Value value={data.settings} />
            )}
          </article>
        </>
      )}
    </section>
  )
}
