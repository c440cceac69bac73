/**
 * Dynamic routes: each route's versions, which one is live, deploying a version (an older one rolls
 * back), and saving a new version or a new route from its JSON definition. The admin validates what is
 * saved and names the element that is wrong.
 */
import { useState } from 'preact/hooks'
import type { RouteDeployment, RouteVersion } from '../../../src/dynamic/types.js'
import { api } from '../api.js'
import { Badge, Code, ErrorNote, Note, PageHeader } from '../components.js'
import { formatTime } from '../format.js'
import { useLoad } from '../hooks.js'
import { href } from '../router.js'

interface ListedRoute {
  readonly name: string
  readonly latestVersion: number
  readonly deployedVersion: number | null
  readonly updatedAt: number
}

const routePath = (name: string, ...rest: string[]) =>
  ['routes', name, ...rest].map(encodeURIComponent).join('/')

export function RoutesPage({ name }: { name: string | undefined }) {
  const routes = useLoad(() => api<{ routes: ListedRoute[] }>('routes').then((answer) => answer.routes), [])
  return (
    <section>
      <PageHeader title="Dynamic routes" />
      <ErrorNote error={routes.error} />
      <div class="overflow-auto">
        <table class="striped routes" aria-busy={routes.loading && routes.data === undefined}>
          <thead>
            <tr>
              <th scope="col">Route</th>
              <th scope="col" class="num">
                Latest version
              </th>
              <th scope="col" class="num">
                Deployed
              </th>
              <th scope="col">Updated</th>
            </tr>
          </thead>
          <tbody>
            {(routes.data ?? []).map((route) => (
              <tr
                key={route.name}
                data-route={route.name}
                aria-current={route.name === name ? 'true' : undefined}
              >
                <td>
                  <a href={href('routes', route.name)}>{route.name}</a>
                </td>
                <td class="num">v{route.latestVersion}</td>
                <td class="num">{route.deployedVersion === null ? '—' : `v${route.deployedVersion}`}</td>
                <td>{formatTime(route.updatedAt)}</td>
              </tr>
            ))}
            {routes.data?.length === 0 ? (
              <tr>
                <td colSpan={4}>No routes yet.</td>
              </tr>
            ) : null}
          </tbody>
        </table>
      </div>
      {name === undefined ? (
        <NewRoute onSaved={() => void routes.reload()} />
      ) : (
        <RouteVersions key={name} name={name} onChanged={() => void routes.reload()} />
      )}
    </section>
  )
}

function RouteVersions({ name, onChanged }: { name: string; onChanged: () => void }) {
  const loaded = useLoad(async () => {
    const [versions, deployment] = await Promise.all([
      api<{ versions: RouteVersion[] }>(routePath(name, 'versions')),
      api<{ deployment: RouteDeployment | null }>(routePath(name, 'deployments')),
    ])
    return { versions: versions.versions, deployed: deployment.deployment?.version ?? null }
  }, [name])
  const [shown, setShown] = useState<number | undefined>()
  const [message, setMessage] = useState<string | undefined>()
  const [error, setError] = useState<Error | undefined>()
  const deployed = loaded.data?.deployed ?? null

  const deploy = async (version: number) => {
    setError(undefined)
    setMessage(undefined)
    try {
      await api(routePath(name, 'deployments'), { method: 'POST', body: { version } })
      setMessage(
        deployed !== null && version < deployed ? `Rolled back to v${version}.` : `Deployed v${version}.`,
      )
      await loaded.reload()
      onChanged()
    } catch (failure) {
      setError(failure as Error)
    }
  }
  const latest = loaded.data?.versions[0]
  return (
    <article class="route" data-route-detail={name}>
      <header>
        <h2>{name}</h2>
      </header>
      <ErrorNote error={error ?? loaded.error} />
      {message === undefined ? null : <Note kind="ok">{message}</Note>}
      <table class="striped versions">
        <thead>
          <tr>
            <th scope="col">Version</th>
            <th scope="col">Saved</th>
            <th scope="col">Status</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {(loaded.data?.versions ?? []).map((version) => (
            <tr key={version.version} data-version={version.version}>
              <td>v{version.version}</td>
              <td>{formatTime(version.createdAt)}</td>
              <td>{version.version === deployed ? <Badge kind="ok">deployed</Badge> : null}</td>
              <td class="inline">
                {version.version === deployed ? null : (
                  <button type="button" class="secondary" onClick={() => void deploy(version.version)}>
                    {deployed !== null && version.version < deployed ? 'Roll back' : 'Deploy'}
                  </button>
                )}
                <button
                  type="button"
                  class="secondary outline"
                  onClick={() => setShown(shown === version.version ? undefined : version.version)}
                >
                  {shown === version.version ? 'Hide' : 'View'}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {shown === undefined ? null : (
        <Code
          label={`Version ${shown}`}
          text={JSON.stringify(
            loaded.data?.versions.find((version) => version.version === shown)?.definition,
            null,
            2,
          )}
        />
      )}
      {latest === undefined ? null : (
        <DefinitionEditor
          key={latest.version}
          title="Save a new version"
          initial={JSON.stringify({ elements: latest.definition.elements }, null, 2)}
          onSave={async (definition, andDeploy) => {
            const saved = await api<{ version: RouteVersion }>(
              `${routePath(name, 'versions')}${andDeploy ? '?deploy=true' : ''}`,
              { method: 'POST', body: definition },
            )
            await loaded.reload()
            onChanged()
            return `Saved v${saved.version.version}${andDeploy ? ' and deployed it' : ''}.`
          }}
        />
      )}
    </article>
  )
}

const EXAMPLE_ROUTE = {
  name: 'my-route',
  elements: [
    { id: 'start', type: 'start', outputs: { next: { elementId: 'model' } } },
    {
      id: 'model',
      type: 'model',
      properties: { provider: 'openai', model: 'gpt-4o-mini' },
      outputs: { success: { elementId: 'end' } },
    },
    { id: 'end', type: 'end', outputs: {} },
  ],
}

function NewRoute({ onSaved }: { onSaved: () => void }) {
  return (
    <DefinitionEditor
      title="New route"
      initial={JSON.stringify(EXAMPLE_ROUTE, null, 2)}
      onSave={async (definition, andDeploy) => {
        const saved = await api<{ version: RouteVersion }>(`routes${andDeploy ? '?deploy=true' : ''}`, {
          method: 'POST',
          body: definition,
        })
        onSaved()
        return `Saved ${saved.version.name} v${saved.version.version}${andDeploy ? ' and deployed it' : ''}.`
      }}
    />
  )
}

function DefinitionEditor({
  title,
  initial,
  onSave,
}: {
  title: string
  initial: string
  onSave: (definition: unknown, deploy: boolean) => Promise<string>
}) {
  const [text, setText] = useState(initial)
  const [message, setMessage] = useState<string | undefined>()
  const [error, setError] = useState<Error | undefined>()
  const save = async (deploy: boolean) => {
    setError(undefined)
    setMessage(undefined)
    try {
      setMessage(await onSave(JSON.parse(text), deploy))
    } catch (failure) {
      setError(
        failure instanceof SyntaxError ? new Error(`Not valid JSON: ${failure.message}`) : (failure as Error),
      )
    }
  }
  return (
    <details class="editor">
      <summary>{title}</summary>
      <textarea
        name="definition"
        rows={14}
        spellcheck={false}
        value={text}
        onInput={(event) => setText(event.currentTarget.value)}
      />
      <div class="actions">
        <button type="button" onClick={() => void save(false)}>
          Save
        </button>
        <button type="button" class="secondary" onClick={() => void save(true)}>
          Save and deploy
        </button>
      </div>
      <ErrorNote error={error} />
      {message === undefined ? null : <Note kind="ok">{message}</Note>}
    </details>
  )
}
