/**
 * Spend per user: who is active, what a user usually spends, who spends more than twice that, and which
 * sessions cost more than twice their user's usual session. Definitions in `../spend.ts`.
 */
import { useState } from 'preact/hooks'
import type { AnalyticsRow } from '../../../src/logs/types.js'
import { api, withQuery } from '../api.js'
import { Badge, ErrorNote, PageHeader, Stat } from '../components.js'
import { formatCost, formatNumber, formatUtcDate } from '../format.js'
import { useLoad } from '../hooks.js'
import { OUTLIER_FACTOR, spendReport } from '../spend.js'
import { resolveRange, type TimeRange } from '../time-range.js'
import { TimeRangePicker } from '../time-range-picker.js'

const ratio = (value: number | null) => (value === null ? '—' : `${value.toFixed(1)}×`)

export function SpendPage() {
  const [range, setRange] = useState<TimeRange>({ preset: '30d' })
  const [draftKey, setDraftKey] = useState('session')
  const [sessionKey, setSessionKey] = useState('session')
  const report = useLoad(async () => {
    const { from, to } = resolveRange(range, Date.now())
    const query = { from, to, bucket: 'day', groupBy: `principal,metadata.${sessionKey}` }
    const { rows } = await api<{ rows: AnalyticsRow[] }>(withQuery('analytics', query))
    return spendReport(rows, sessionKey)
  }, [range, sessionKey])
  const data = report.data

  return (
    <section>
      <PageHeader title="Spend per user" />
      <form
        class="controls"
        onSubmit={(event) => {
          event.preventDefault()
          setSessionKey(draftKey.trim() || 'session')
        }}
      >
        <div class="grid">
          <TimeRangePicker value={range} onChange={setRange} />
          <label>
            Session key in cf-aig-metadata
            <span class="pair">
              <input
                name="sessionKey"
                value={draftKey}
                onInput={(event) => setDraftKey(event.currentTarget.value)}
              />
              <button type="submit" class="secondary">
                Apply
              </button>
            </span>
          </label>
        </div>
      </form>
      <p class="muted explain">
        A user is the request's principal. A session is a user's requests with the same{' '}
        <code>{sessionKey}</code> metadata value; requests without one make a session per user and UTC day. A
        session is flagged when it cost more than {OUTLIER_FACTOR}× the user's median session (it takes three
        sessions to stand out).
      </p>
      <ErrorNote error={report.error} />
      {data === undefined ? (
        <p aria-busy="true">Loading…</p>
      ) : (
        <>
          <div class="stats">
            <Stat
              name="active-users"
              label="Active users"
              value={formatNumber(data.activeUsers)}
              hint={`${formatNumber(data.anonymousRequests)} anonymous requests`}
            />
            <Stat name="median-spend" label="Median spend per user" value={formatCost(data.medianSpend)} />
            <Stat
              name="heavy-users"
              label={`Users above ${OUTLIER_FACTOR}× the median`}
              value={formatNumber(data.heavyUsers.length)}
            />
            <Stat
              name="flagged-sessions"
              label="Sessions above a user's usual"
              value={formatNumber(data.flaggedSessions.length)}
              hint={`of ${formatNumber(data.sessions)}`}
            />
          </div>
          <div class="overflow-auto">
            <table class="striped users">
              <caption>Users, biggest spender first</caption>
              <thead>
                <tr>
                  <th scope="col">Principal</th>
                  <th scope="col" class="num">
                    Requests
                  </th>
                  <th scope="col" class="num">
                    Tokens
                  </th>
                  <th scope="col" class="num">
                    Cost
                  </th>
                  <th scope="col" class="num">
                    × median
                  </th>
                  <th scope="col" class="num">
                    Sessions
                  </th>
                </tr>
              </thead>
              <tbody>
                {data.users.length === 0 ? (
                  <tr>
                    <td colSpan={6}>No requests with a principal in this range.</td>
                  </tr>
                ) : null}
                {data.users.map((user) => (
                  <tr key={user.principal} data-principal={user.principal} data-heavy={user.heavy}>
                    <td>
                      {user.principal}{' '}
                      {user.heavy ? <Badge kind="warn">above {OUTLIER_FACTOR}× median</Badge> : null}
                    </td>
                    <td class="num">{formatNumber(user.requests)}</td>
                    <td class="num">{formatNumber(user.tokens)}</td>
                    <td class="num">{formatCost(user.cost)}</td>
                    <td class="num">{ratio(user.ratio)}</td>
                    <td class="num">{formatNumber(user.sessions)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <div class="overflow-auto">
            <table class="striped sessions">
              <caption>Sessions above their user's usual cost</caption>
              <thead>
                <tr>
                  <th scope="col">Principal</th>
                  <th scope="col">Session</th>
                  <th scope="col">Began (UTC day)</th>
                  <th scope="col" class="num">
                    Requests
                  </th>
                  <th scope="col" class="num">
                    Cost
                  </th>
                  <th scope="col" class="num">
                    User's usual
                  </th>
                  <th scope="col" class="num">
                    × usual
                  </th>
                </tr>
              </thead>
              <tbody>
                {data.flaggedSessions.length === 0 ? (
                  <tr>
                    <td colSpan={7}>None in this range.</td>
                  </tr>
                ) : (
                  data.flaggedSessions.map((session) => (
                    <tr
                      key={`${session.principal}-${session.session}-${session.start}`}
                      data-principal={session.principal}
                    >
                      <td>{session.principal}</td>
                      <td>{session.session ?? <span class="muted">(by day)</span>}</td>
                      <td>{formatUtcDate(session.start)}</td>
                      <td class="num">{formatNumber(session.requests)}</td>
                      <td class="num">{formatCost(session.cost)}</td>
                      <td class="num">{formatCost(session.usual)}</td>
                      <td class="num">{ratio(session.usual > 0 ? session.cost / session.usual : null)}</td>
                    </tr>
                  ))
                )}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  )
}
