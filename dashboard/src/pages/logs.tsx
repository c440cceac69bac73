/**
 * Logs: the newest requests first, filtered as the reference's log view is, a page at a time through the
 * API's cursor. While "Live" is on and the first page is shown, the newest page is polled.
 */
import { useEffect, useRef, useState } from 'preact/hooks'
import type { AnalyticsRow, LogRecord } from '../../../src/logs/types.js'
import { api, withQuery } from '../api.js'
import { Badge, ErrorNote, PageHeader } from '../components.js'
import { activeFilterCount, buildFilters, EMPTY_FILTERS, type LogFilterForm } from '../filters.js'
import { formatCost, formatMs, formatNumber, formatTime } from '../format.js'
import { useLoad } from '../hooks.js'
import { href } from '../router.js'
import { resolveRange, type TimeRange } from '../time-range.js'
import { TimeRangePicker } from '../time-range-picker.js'

const PAGE_SIZE = 50
const POLL_MS = 3000

interface Page {
  records: LogRecord[]
  nextCursor: string | null
}

// Kept while the app is open, so coming back from a record finds the list as it was left.
const remembered: { form: LogFilterForm; range: TimeRange; live: boolean } = {
  form: EMPTY_FILTERS,
  range: { preset: '24h' },
  live: true,
}

export function outcomeBadge(record: Pick<LogRecord, 'outcome' | 'success'>) {
  const kind =
    record.outcome === 'cache_hit'
      ? 'muted'
      : record.success
        ? 'ok'
        : record.outcome === 'aborted'
          ? 'warn'
          : 'error'
  return <Badge kind={kind}>{record.outcome.replace('_', ' ')}</Badge>
}

function feedbackMark(feedback: LogRecord['feedback']) {
  if (feedback === 1) return <Badge kind="ok">good</Badge>
  return feedback === -1 ? <Badge kind="error">bad</Badge> : null
}

export function LogsPage() {
  const [draft, setDraft] = useState(remembered.form)
  const [form, setForm] = useState(remembered.form)
  const [range, setRange] = useState(remembered.range)
  const [live, setLive] = useState(remembered.live)
  // Cursors of the pages seen so far; the last one is shown (undefined: the newest page).
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined])
  const cursor = cursors[cursors.length - 1]
  const [updatedAt, setUpdatedAt] = useState<number | undefined>()

  Object.assign(remembered, { form, range, live })

  const query = () => {
    const { from, to } = resolveRange(range, Date.now())
    const filters = buildFilters(form)
    // A preset range ends now, so the newest page is left open-ended and polling finds new records.
    return {
      filters: filters.length > 0 ? JSON.stringify(filters) : undefined,
      from,
      to: range.preset === 'custom' ? to : undefined,
    }
  }
  const page = useLoad(async () => {
    const loaded = await api<Page>(withQuery('logs', { ...query(), limit: PAGE_SIZE, cursor }))
    setUpdatedAt(Date.now())
    return loaded
  }, [form, range, cursor])
  const choices = useLoad(async () => {
    const { from } = resolveRange(range, Date.now())
    const groups = await api<{ rows: AnalyticsRow[] }>(
      withQuery('analytics', { groupBy: 'provider,model', from }),
    )
    const providers = new Set<string>()
    const models = new Set<string>()
    for (const { group } of groups.rows) {
      if (group.provider) providers.add(group.provider)
      if (group.model) models.add(group.model)
    }
    return { providers: [...providers].sort(), models: [...models].sort() }
  }, [range])

  const polling = live && cursor === undefined
  const loading = useRef(page.loading)
  loading.current = page.loading
  useEffect(() => {
    if (!polling) return
    // The next poll is timed from the last one's answer, and none starts while a load is on its way:
    // polls on a fixed beat would pile up on a store slower than the beat, each one more query on it.
    let timer: ReturnType<typeof setTimeout> | undefined
    let stopped = false
    const poll = async () => {
      if (document.visibilityState === 'visible' && !loading.current) await page.reload()
      if (!stopped) timer = setTimeout(poll, POLL_MS)
    }
    timer = setTimeout(poll, POLL_MS)
    return () => {
      stopped = true
      clearTimeout(timer)
    }
  }, [polling, page.reload])

  const apply = (next: LogFilterForm) => {
    setForm(next)
    setCursors([undefined])
  }
  const set =
    <K extends keyof LogFilterForm>(key: K) =>
    (event: Event) => {
      const value = (event.currentTarget as HTMLInputElement | HTMLSelectElement).value as LogFilterForm[K]
      setDraft({ ...draft, [key]: value })
    }
  const comparison = (key: 'costOp' | 'tokensOp' | 'durationOp', label: string) => (
    <select aria-label={`${label} comparison`} name={key} value={draft[key]} onChange={set(key)}>
      <option value="gt">over</option>
      <option value="lt">under</option>
      <option value="eq">equal to</option>
    </select>
  )
  const records = page.data?.records ?? []
  const count = activeFilterCount(form)

  return (
    <section>
      <PageHeader title="Logs">
        <label class="switch">
          <input
            type="checkbox"
            role="switch"
            aria-checked={live}
            name="live"
            checked={live}
            onChange={(event) => setLive(event.currentTarget.checked)}
          />
          Live
          {polling && updatedAt !== undefined ? (
            <span class="muted updated">· updated {formatTime(updatedAt).slice(11)}</span>
          ) : null}
        </label>
      </PageHeader>
      <details class="filters" open>
        <summary>Filters{count > 0 ? ` (${count})` : ''}</summary>
        <form
          onSubmit={(event) => {
            event.preventDefault()
            apply(draft)
          }}
        >
          <div class="grid">
            <label>
              Provider
              <select name="provider" value={draft.provider} onChange={set('provider')}>
                <option value="">Any</option>
                {[
                  ...new Set([
                    ...(choices.data?.providers ?? []),
                    ...(draft.provider ? [draft.provider] : []),
                  ]),
                ].map((provider) => (
                  <option key={provider} value={provider}>
                    {provider}
                  </option>
                ))}
              </select>
            </label>
            <label>
              Model
              <input
                name="model"
                list="models"
                value={draft.model}
                onInput={set('model')}
                placeholder="contains…"
              />
              <datalist id="models">
                {(choices.data?.models ?? []).map((model) => (
                  <option key={model} value={model} />
                ))}
              </datalist>
            </label>
            <label>
              Principal
              <input
                name="principal"
                value={draft.principal}
                onInput={set('principal')}
                placeholder="user or tenant id"
              />
            </label>
            <label>
              Status
              <input
                name="status"
                type="number"
                min="100"
                max="599"
                value={draft.status}
                onInput={set('status')}
              />
            </label>
          </div>
          <div class="grid">
            <label>
              Success
              <select name="success" value={draft.success} onChange={set('success')}>
                <option value="">Any</option>
                <option value="true">Succeeded</option>
                <option value="false">Failed</option>
              </select>
            </label>
            <label>
              Cached
              <select name="cached" value={draft.cached} onChange={set('cached')}>
                <option value="">Any</option>
                <option value="true">From cache</option>
                <option value="false">Not cached</option>
              </select>
            </label>
            <label>
              Feedback
              <select name="feedback" value={draft.feedback} onChange={set('feedback')}>
                <option value="">Any</option>
                <option value="1">Good</option>
                <option value="-1">Bad</option>
              </select>
            </label>
            <label>
              Metadata
              <span class="pair">
                <input
                  name="metadataKey"
                  aria-label="Metadata key"
                  placeholder="key"
                  value={draft.metadataKey}
                  onInput={set('metadataKey')}
                />
                <input
                  name="metadataValue"
                  aria-label="Metadata value"
                  placeholder="value"
                  value={draft.metadataValue}
                  onInput={set('metadataValue')}
                />
              </span>
            </label>
          </div>
          <div class="grid">
            <label>
              Cost (USD)
              <span class="pair">
                {comparison('costOp', 'Cost')}
                <input
                  name="cost"
                  type="number"
                  step="any"
                  min="0"
                  value={draft.cost}
                  onInput={set('cost')}
                />
              </span>
            </label>
            <label>
              Tokens
              <span class="pair">
                {comparison('tokensOp', 'Tokens')}
                <input name="tokens" type="number" min="0" value={draft.tokens} onInput={set('tokens')} />
              </span>
            </label>
            <label>
              Duration (ms)
              <span class="pair">
                {comparison('durationOp', 'Duration')}
                <input
                  name="duration"
                  type="number"
                  min="0"
                  value={draft.duration}
                  onInput={set('duration')}
                />
              </span>
            </label>
            <TimeRangePicker
              value={range}
              onChange={(next) => {
                setRange(next)
                setCursors([undefined])
              }}
            />
          </div>
          <div class="actions">
            <button type="submit">Apply filters</button>
            <button
              type="button"
              class="secondary outline"
              onClick={() => {
                setDraft(EMPTY_FILTERS)
                apply(EMPTY_FILTERS)
              }}
            >
              Reset
            </button>
          </div>
        </form>
      </details>
      <ErrorNote error={page.error} />
      <div class="overflow-auto">
        <table class="striped logs" aria-busy={page.loading && page.data === undefined}>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Provider</th>
              <th scope="col">Model</th>
              <th scope="col">Status</th>
              <th scope="col">Outcome</th>
              <th scope="col" class="num">
                Tokens in / out
              </th>
              <th scope="col" class="num">
                Cost
              </th>
              <th scope="col" class="num">
                Duration
              </th>
              <th scope="col">Principal</th>
              <th scope="col">Feedback</th>
            </tr>
          </thead>
          <tbody>
            {records.map((record) => (
              <tr key={record.id} data-log-id={record.id}>
                <td>
                  <a href={href('logs', record.id)}>{formatTime(record.createdAt)}</a>
                </td>
                <td>{record.provider ?? '—'}</td>
                <td>{record.model ?? '—'}</td>
                <td>{record.statusCode}</td>
                <td>{outcomeBadge(record)}</td>
                <td class="num">
                  {formatNumber(record.tokensIn)} / {formatNumber(record.tokensOut)}
                </td>
                <td class="num">{formatCost(record.cost)}</td>
                <td class="num">{formatMs(record.durationMs)}</td>
                <td>{record.principal ?? '—'}</td>
                <td>{feedbackMark(record.feedback)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {records.length === 0 && !page.loading ? <p class="muted">No requests match.</p> : null}
      <nav class="pager" aria-label="Pages">
        <button
          type="button"
          class="secondary outline"
          disabled={cursors.length === 1}
          onClick={() => setCursors(cursors.slice(0, -1))}
        >
          ← Newer
        </button>
        <span>Page {cursors.length}</span>
        <button
          type="button"
          class="secondary outline"
          disabled={!page.data?.nextCursor}
          onClick={() => setCursors([...cursors, page.data?.nextCursor ?? undefined])}
        >
          Older →
        </button>
      </nav>
    </section>
  )
}
