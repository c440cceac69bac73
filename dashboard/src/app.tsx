/** The frame around every page: the navigation, the logout, and the page the URL's hash names. */
import { logout } from './api.js'
import { config } from './config.js'
import { AnalyticsPage } from './pages/analytics.js'
import { KeysPage } from './pages/keys.js'
import { LogDetailPage } from './pages/log-detail.js'
import { LogsPage } from './pages/logs.js'
import { RoutesPage } from './pages/routes.js'
import { SettingsPage } from './pages/settings.js'
import { SpendPage } from './pages/spend.js'
import { href, type Route, useRoute } from './router.js'

interface NavItem {
  readonly page: string
  readonly label: string
  readonly shown: boolean
}

const NAV: readonly NavItem[] = [
  { page: 'logs', label: 'Logs', shown: config.logs },
  { page: 'analytics', label: 'Analytics', shown: config.logs },
  { page: 'spend', label: 'Spend', shown: config.logs },
  { page: 'keys', label: 'Keys', shown: config.keys },
  { page: 'routes', label: 'Routes', shown: config.routes },
  { page: 'settings', label: 'Settings', shown: true },
]

function Page({ route }: { route: Route }) {
  const item = NAV.find((candidate) => candidate.page === route.page)
  if (item === undefined || !item.shown) {
    return (
      <p class="muted">{item === undefined ? 'No such page.' : 'This admin has no store for this page.'}</p>
    )
  }
  switch (route.page) {
    case 'logs':
      return route.params[0] === undefined ? <LogsPage /> : <LogDetailPage id={route.params[0]} />
    case 'analytics':
      return <AnalyticsPage />
    case 'spend':
      return <SpendPage />
    case 'keys':
      return <KeysPage />
    case 'routes':
      return <RoutesPage name={route.params[0]} />
    default:
      return <SettingsPage />
  }
}

export function App() {
  const route = useRoute()
  // Without logs the first page is the first one this admin has.
  const current =
    route.page === 'logs' && !config.logs ? { page: NAV.find((item) => item.shown)!.page, params: [] } : route
  return (
    <>
      <header class="topbar">
        <nav class="container-fluid">
          <ul>
            <li>
              <strong class="brand">AI Gateway</strong>
            </li>
          </ul>
          <ul>
            {NAV.filter((item) => item.shown).map((item) => (
              <li key={item.page}>
                <a href={href(item.page)} aria-current={item.page === current.page ? 'page' : undefined}>
                  {item.label}
                </a>
              </li>
            ))}
            {config.auth ? (
              <li>
                <button type="button" class="secondary outline logout" onClick={() => void logout()}>
                  Log out
                </button>
              </li>
            ) : null}
          </ul>
        </nav>
      </header>
      <main class="container-fluid">
        {config.auth ? null : (
          <p class="note warn" role="note">
            This admin asks for no token: anyone who can reach it can read the logs and change keys.
          </p>
        )}
        <Page route={current} />
      </main>
    </>
  )
}
