/**
 * The analytics query of the Postgres log store: totals, percentiles and buckets computed in SQL, one
 * statement per query, and its rows mapped to `AnalyticsRow`s.
 */
import type { Pool, QueryResultRow } from 'pg'
import { COST_DECIMALS } from '../cost/money.js'
import { BUCKET_MS } from '../logs/filters.js'
import type { AnalyticsGroupBy, AnalyticsRow, ResolvedAnalyticsQuery } from '../logs/types.js'
import { Params, ROUTE_NAME_SQL, selectionConditions, whereClause } from './log-sql.js'

/** Runs a validated analytics query against `table`. */
export async function queryAnalytics(
  pool: Pool,
  table: string,
  query: ResolvedAnalyticsQuery,
): Promise<AnalyticsRow[]> {
  const { groupBy, bucket, ...selection } = query
  const params = new Params()
  const keys = groupBy.map((group, i) => `${groupExpression(group, params)} AS g${i}`)
  if (bucket) {
    const size = params.add(BUCKET_MS[bucket], 'int8')
    keys.unshift(`(created_at / ${size}) * ${size} AS bucket_start`)
  }
  const aggregates = [
    'count(*) AS requests',
    'count(*) FILTER (WHERE NOT success) AS errors',
    'count(*) FILTER (WHERE cached) AS cache_hits',
    'coalesce(sum(tokens_in), 0) AS tokens_in',
    'coalesce(sum(tokens_out), 0) AS tokens_out',
    // numeric sums exactly; rounded once, half away from zero, as the memory store rounds its exact sum.
    `round(sum(cost), ${params.add(COST_DECIMALS, 'int4')}) AS cost`,
    `percentile_cont(${params.add(0.5, 'float8')}) WITHIN GROUP (ORDER BY duration_ms) AS latency_p50`,
    `percentile_cont(${params.add(0.95, 'float8')}) WITHIN GROUP (ORDER BY duration_ms) AS latency_p95`,
    'count(*) FILTER (WHERE feedback = 1) AS thumbs_up',
    'count(*) FILTER (WHERE feedback = -1) AS thumbs_down',
    'count(score) AS scored',
    // The exact integer sum divided once in float8, which is the memory store's JS division.
    'sum(score)::float8 / nullif(count(score), 0)::float8 AS score_avg',
  ]
  const where = whereClause(selectionConditions(selection, params))
  const ordinals = keys.map((_, i) => i + 1).join(', ')
  // Without GROUP BY an aggregate answers one row even over nothing; HAVING drops it, as for groups.
  const grouping = keys.length > 0 ? `GROUP BY ${ordinals} ORDER BY ${ordinals}` : 'HAVING count(*) > 0'
  // One row per branch drawn, so a record counts in each of its variant groups; LEFT ... ON true keeps a
  // record without branches once, in the null group.
  const from = groupBy.includes('variant')
    ? `${table} LEFT JOIN LATERAL jsonb_each_text(route -> 'variants') AS ${VARIANT}(element, branch) ON true`
    : table
  const text = `SELECT ${[...keys, ...aggregates].join(', ')} FROM ${from} ${where} ${grouping}`
  const { rows } = await pool.query(text, params.values)
  return rows.map((row) => toAnalyticsRow(row, groupBy, bucket !== undefined))
}

// Named apart from every column of the table, so the filters' unqualified column names stay unambiguous.
const VARIANT = 'variant_drawn'

function groupExpression(group: AnalyticsGroupBy, params: Params): string {
  switch (group) {
    case 'provider':
    case 'model':
    case 'outcome':
    case 'principal':
      return group
    case 'route':
      return ROUTE_NAME_SQL
    case 'variant':
      // Null without a branch: || yields null when either side is.
      return `((route ->> 'name') || '/' || ${VARIANT}.element || '=' || ${VARIANT}.branch) COLLATE "C"`
  }
  return `(metadata ->> ${params.add(group.slice('metadata.'.length), 'text')}) COLLATE "C"`
}

function toAnalyticsRow(row: QueryResultRow, groupBy: AnalyticsGroupBy[], bucketed: boolean): AnalyticsRow {
  const result: AnalyticsRow = {
    group: Object.fromEntries(groupBy.map((name, i) => [name, (row[`g${i}`] as string | null) ?? null])),
    requests: Number(row.requests),
    errors: Number(row.errors),
    cacheHits: Number(row.cache_hits),
    tokensIn: Number(row.tokens_in),
    tokensOut: Number(row.tokens_out),
    cost: row.cost === null ? null : Number(row.cost),
    latencyP50: Number(row.latency_p50),
    latencyP95: Number(row.latency_p95),
    thumbsUp: Number(row.thumbs_up),
    thumbsDown: Number(row.thumbs_down),
    scored: Number(row.scored),
    scoreAvg: row.score_avg === null ? null : Number(row.score_avg),
  }
  if (bucketed) result.bucketStart = Number(row.bucket_start)
  return result
}
