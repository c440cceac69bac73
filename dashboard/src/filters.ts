/**
 * The Logs page's filter form and the API filters it stands for: the reference's filters (provider,
 * model, status, success, cached, cost, tokens, duration, metadata, feedback) and the principal. Empty
 * fields filter nothing.
 */
import type { LogFilter, LogFilterField } from '../../src/logs/types.js'

export type Comparison = 'gt' | 'lt' | 'eq'

export interface LogFilterForm {
  provider: string
  /** Matched as a substring: `gpt-4o` finds `gpt-4o-mini` too. */
  model: string
  status: string
  success: '' | 'true' | 'false'
  cached: '' | 'true' | 'false'
  costOp: Comparison
  cost: string
  tokensOp: Comparison
  tokens: string
  durationOp: Comparison
  /** Milliseconds. */
  duration: string
  metadataKey: string
  metadataValue: string
  feedback: '' | '1' | '-1'
  principal: string
}

export const EMPTY_FILTERS: LogFilterForm = {
  provider: '',
  model: '',
  status: '',
  success: '',
  cached: '',
  costOp: 'gt',
  cost: '',
  tokensOp: 'gt',
  tokens: '',
  durationOp: 'gt',
  duration: '',
  metadataKey: '',
  metadataValue: '',
  feedback: '',
  principal: '',
}

function numeric(text: string): number | undefined {
  const trimmed = text.trim()
  if (trimmed === '') return undefined
  const value = Number(trimmed)
  return Number.isFinite(value) ? value : undefined
}

/**
 * The API filters for a form, in a fixed order.
 *
 * @example
 * buildFilters({ ...EMPTY_FILTERS, provider: 'openai', cost: '0.01' })
 * // [{ field: 'provider', op: 'eq', value: 'openai' }, { field: 'cost', op: 'gt', value: 0.01 }]
 */
export function buildFilters(form: LogFilterForm): LogFilter[] {
  const filters: LogFilter[] = []
  const text = (field: LogFilterField, op: LogFilter['op'], value: string) => {
    const trimmed = value.trim()
    if (trimmed !== '') filters.push({ field, op, value: trimmed })
  }
  const number = (field: LogFilterField, op: LogFilter['op'], value: string) => {
    const parsed = numeric(value)
    if (parsed !== undefined) filters.push({ field, op, value: parsed })
  }
  text('provider', 'eq', form.provider)
  text('model', 'contains', form.model)
  number('statusCode', 'eq', form.status)
  if (form.success !== '') filters.push({ field: 'success', op: 'eq', value: form.success === 'true' })
  if (form.cached !== '') filters.push({ field: 'cached', op: 'eq', value: form.cached === 'true' })
  number('cost', form.costOp, form.cost)
  number('tokens', form.tokensOp, form.tokens)
  number('duration', form.durationOp, form.duration)
  const key = form.metadataKey.trim()
  if (key !== '' && form.metadataValue.trim() !== '') text(`metadata.${key}`, 'eq', form.metadataValue)
  if (form.feedback !== '') filters.push({ field: 'feedback', op: 'eq', value: Number(form.feedback) })
  text('principal', 'eq', form.principal)
  return filters
}

/**
 * How many fields of the form filter something, for the "Filters (3)" label.
 *
 * @example
 * activeFilterCount({ ...EMPTY_FILTERS, provider: 'openai' }) // 1
 */
export function activeFilterCount(form: LogFilterForm): number {
  return buildFilters(form).length
}
