/**
 * Analytics: requests, tokens, cost, errors, cache hit rate and latency over a time range, in total and
 * over time, optionally split by provider, model, principal or a metadata key. Everything comes from the
 * admin's `/analytics`, which the log store computes.
 */
import { useMemo, useState } from 'preact/hooks'
import type { AnalyticsRow } from '../../../src/logs/types.js'
import { api, withQuery } from '../api.js'
import { Chart } from '../chart.js'
import { ErrorNote, PageHeader, Stat } from '../components.js'
import { formatCost, formatMs, formatNumber, formatPercent } from '../format.js'
import { useLoad } from '../hooks.js'
import { bucketValues, type ChartData, groupLabel, groupSeries, METRICS } from '../series.js'
import { bucketFor, bucketStarts, resolveRange, type TimeRange } from '../time-range.js'
import { TimeRangePicker } from '../time-range-picker.js'

type Split = '' | 'provider' | 'model' | 'principal' | 'metadata'

interface Loaded {
  totals: AnalyticsRow | undefined
  overall: AnalyticsRow[]
  grouped: AnalyticsRow[]
  groups: AnalyticsRow[]
  starts: number[]
  group: string | undefined
}

const rowsOf = (path: string) => api<{ rows: AnalyticsRow[] }>(path).then((answer) => answer.rows)

export function AnalyticsPage() {
  const [range, setRange] = useState<TimeRange>({ preset: '24h' })
  const [split, setSplit] = useState<Split>('')
  const [metadataKey, setMetadataKey] = useState('')
  const group =
    split === ''
      ? undefined
      : split === 'metadata'
        ? metadataKey.trim()
          ? `metadata.${metadataKey.trim()}`
          : undefined
        : split

  const loaded = useLoad(async (): Promise<Loaded> => {
    const { from, to } = resolveRange(range, Date.now())
    const bucket = bucketFor(to - from)
    const base = { from, to }
    const [totals, overall, grouped, groups] = await Promise.all([
      rowsOf(withQuery('analytics', base)),
      rowsOf(withQuery('analytics', { ...base, bucket })),
      group === undefined ? [] : rowsOf(withQuery('analytics', { ...base, bucket, groupBy: group })),
      group === undefined ? [] : rowsOf(withQuery('analytics', { ...base, groupBy: group })),
    ])
    return { totals: totals[0], overall, grouped, groups, starts: bucketStarts(from, to, bucket), group }
  }, [range, group])

  const data = loaded.data
  return (
    <section>
      <PageHeader title="Analytics" />
      <form class="controls" onSubmit={(event) => event.preventDefault()}>
        <div class="grid">
          <TimeRangePicker value={range} onChange={setRange} />
          <label>
            Split by
            <select
              name="split"
              value={split}
              onChange={(event) => setSplit(event.currentTarget.value as Split)}
            >
              <option value="">Nothing</option>
              <option value="provider">Provider</option>
              <option value="model">Model</option>
              <option value="principal">Principal</option>
              <option value="metadata">Metadata key…</option>
            </select>
          </label>
          {split === 'metadata' ? (
            <label>
              Metadata key
              <input
                name="metadataKey"
                value={metadataKey}
                onChange={(event) => setMetadataKey(event.currentTarget.value)}
              />
            </label>
          ) : null}
        </div>
      </form>
      <ErrorNote error={loaded.error} />
      {data === undefined ? <p aria-busy="true">Loading…</p> : <AnalyticsView data={data} />}
    </section>
  )
}

/** Every chart's data, from one load. */
function chartData({ overall, grouped, starts, group }: Loaded): Record<string, ChartData> {
  const x = starts
  const perGroup = (metric: (typeof METRICS)[keyof typeof METRICS], label: string): ChartData =>
    group === undefined
      ? { x, series: [{ label, values: bucketValues(overall, starts, metric, 0) }] }
      : { x, series: groupSeries(grouped, group, starts, metric) }
  return {
    requests: perGroup(METRICS.requests, 'Requests'),
    tokens:
      group === undefined
        ? {
            x,
            series: [
              { label: 'In', values: bucketValues(overall, starts, METRICS.tokensIn, 0) },
              { label: 'Out', values: bucketValues(overall, starts, METRICS.tokensOut, 0) },
            ],
          }
        : perGroup(METRICS.tokens, 'Tokens'),
    cost: perGroup(METRICS.cost, 'Cost'),
    errors: perGroup(METRICS.errors, 'Errors'),
    cache: {
      x,
      series: [{ label: 'Cache hits', values: bucketValues(overall, starts, METRICS.cacheHitRate, null) }],
    },
    latency: {
      x,
      series: [
        { label: 'p50', values: bucketValues(overall, starts, METRICS.latencyP50, null) },
        { label: 'p95', values: bucketValues(overall, starts, METRICS.latencyP95, null) },
      ],
    },
  }
}

function AnalyticsView({ data }: { data: Loaded }) {
  const { totals, group } = data
  // Rebuilt only with new data, so a re-render does not redraw every chart.
  const charts = useMemo(() => chartData(data), [data])
  // One colour per group across the charts, in the requests chart's order.
  const order = charts.requests?.series.map((series) => series.label) ?? []
  const requests = totals?.requests ?? 0
  return (
    <>
      <div class="stats">
        <Stat name="requests" label="Requests" value={formatNumber(requests)} />
        <Stat
          name="errors"
          label="Errors"
          value={formatNumber(totals?.errors ?? 0)}
          hint={requests ? formatPercent((totals?.errors ?? 0) / requests) : '—'}
        />
        <Stat
          name="cache"
          label="Cache hit rate"
          value={requests ? formatPercent((totals?.cacheHits ?? 0) / requests) : '—'}
        />
        <Stat
          name="tokens"
          label="Tokens in / out"
          value={`${formatNumber(totals?.tokensIn ?? 0)} / ${formatNumber(totals?.tokensOut ?? 0)}`}
        />
        <Stat name="cost" label="Cost" value={formatCost(totals?.cost ?? null)} />
        <Stat
          name="latency"
          label="Latency p50 / p95"
          value={totals ? `${formatMs(totals.latencyP50)} / ${formatMs(totals.latencyP95)}` : '—'}
        />
      </div>
      <div class="charts">
        <Chart
          name="requests"
          title="Requests"
          data={charts.requests!}
          format={formatNumber}
          integer
          order={order}
        />
        <Chart
          name="tokens"
          title="Tokens"
          data={charts.tokens!}
          format={formatNumber}
          integer
          order={order}
        />
        <Chart name="cost" title="Cost (USD)" data={charts.cost!} format={formatCost} order={order} />
        <Chart
          name="errors"
          title="Errors"
          data={charts.errors!}
          format={formatNumber}
          integer
          order={order}
        />
        <Chart
          name="cache"
          title="Cache hit rate"
          data={charts.cache!}
          format={formatPercent}
          range={[0, 1]}
        />
        <Chart name="latency" title="Latency" data={charts.latency!} format={formatMs} />
      </div>
      {group === undefined ? null : <Breakdown rows={data.groups} group={group} />}
    </>
  )
}

function Breakdown({ rows, group }: { rows: AnalyticsRow[]; group: string }) {
  const sorted = [...rows].sort((a, b) => b.requests - a.requests)
  return (
    <div class="overflow-auto">
      <table class="striped breakdown">
        <caption>By {group}</caption>
        <thead>
          <tr>
            <th scope="col">{group}</th>
            <th scope="col" class="num">
              Requests
            </th>
            <th scope="col" class="num">
              Errors
            </th>
            <th scope="col" class="num">
              Cache hits
            </th>
            <th scope="col" class="num">
              Tokens in / out
            </th>
            <th scope="col" class="num">
              Cost
            </th>
            <th scope="col" class="num">
              p50 / p95
            </th>
          </tr>
        </thead>
        <tbody>
          {sorted.map((row) => (
            <tr key={groupLabel(row.group, group)}>
              <td>{groupLabel(row.group, group)}</td>
              <td class="num">{formatNumber(row.requests)}</td>
              <td class="num">{formatNumber(row.errors)}</td>
              <td class="num">{formatPercent(row.cacheHits / row.requests)}</td>
              <td class="num">
                {formatNumber(row.tokensIn)} / {formatNumber(row.tokensOut)}
              </td>
              <td class="num">{formatCost(row.cost)}</td>
              <td class="num">
                {formatMs(row.latencyP50)} / {formatMs(row.latencyP95)}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}
