/** Picks a time range: a preset ("last 24 hours") or a custom from/to in the browser's time zone. */
import { PRESETS, type TimeRange } from './time-range.js'

const pad = (value: number) => String(value).padStart(2, '0')

// `datetime-local` speaks local time without a zone.
function toLocalInput(ms: number | undefined): string {
  if (ms === undefined) return ''
  const d = new Date(ms)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`
}

function fromLocalInput(text: string): number | undefined {
  if (text === '') return undefined
  const ms = new Date(text).getTime()
  return Number.isNaN(ms) ? undefined : ms
}

export function TimeRangePicker({
  value,
  onChange,
}: {
  value: TimeRange
  onChange: (range: TimeRange) => void
}) {
  const custom = value.preset === 'custom'
  return (
    <fieldset class="time-range">
      <label>
        Time range
        <select
          name="range"
          value={value.preset}
          onChange={(event) => {
            const preset = event.currentTarget.value
            onChange(
              preset === 'custom' ? { preset, from: Date.now() - 86_400_000, to: Date.now() } : { preset },
            )
          }}
        >
          {PRESETS.map((preset) => (
            <option key={preset.id} value={preset.id}>
              {preset.label}
            </option>
          ))}
          <option value="custom">Custom…</option>
        </select>
      </label>
      {custom ? (
        <>
          <label>
            From
            <input
              type="datetime-local"
              name="from"
              value={toLocalInput(value.from)}
              onChange={(event) => onChange({ ...value, from: fromLocalInput(event.currentTarget.value) })}
            />
          </label>
          <label>
            To
            <input
              type="datetime-local"
              name="to"
              value={toLocalInput(value.to)}
              onChange={(event) => onChange({ ...value, to: fromLocalInput(event.currentTarget.value) })}
            />
          </label>
        </>
      ) : null}
    </fieldset>
  )
}
