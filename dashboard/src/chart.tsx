/**
 * A time-series chart (uPlot on a canvas) with its numbers beside it: the legend names each series, and a
 * table under "Data" lists every bucket with a value, for screen readers and for copying.
 */
import { useEffect, useRef } from 'preact/hooks'
import uPlot from 'uplot'
import { formatTime } from './format.js'
import type { ChartData } from './series.js'

// Distinct in light and dark themes, and for the common kinds of colour blindness (Okabe–Ito).
const PALETTE = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#f0e442', '#999999']

export interface ChartProps {
  /** Names the chart in the page (`data-chart`), for links and tests. */
  readonly name: string
  readonly title: string
  readonly data: ChartData
  readonly format: (value: number) => string
  /** Counts: the y axis steps by whole numbers. */
  readonly integer?: boolean
  /** A fixed y range (a rate's 0 to 1); by default from 0 to a little over the largest value. */
  readonly range?: [number, number]
  /**
   * The series' places in the palette, by label, so that one provider keeps its colour in every chart of a
   * page; a label it does not list takes the next free colour.
   */
  readonly order?: readonly string[]
}

/** Each series' colour: its place in `order`, else after every listed label. */
export function seriesColors(labels: readonly string[], order: readonly string[] = []): string[] {
  let next = order.length
  return labels.map((label) => {
    const at = order.indexOf(label)
    return PALETTE[(at === -1 ? next++ : at) % PALETTE.length]!
  })
}

// Whole-number steps for counts: 1, 2, 5, 10, 20, 50, …
const INTEGER_STEPS = Array.from({ length: 30 }, (_, i) => [1, 2, 5][i % 3]! * 10 ** Math.floor(i / 3))

function options(props: ChartProps, width: number, color: string): uPlot.Options {
  const { data, format } = props
  const colors = seriesColors(
    data.series.map((series) => series.label),
    props.order,
  )
  return {
    width,
    height: 220,
    ms: 1,
    scales: {
      x: { time: true },
      // Every metric here is zero or more; an empty chart still gets an axis from 0 to 1.
      y: { range: props.range ?? ((_plot, _min, max) => [0, max > 0 ? max * 1.1 : 1]) },
    },
    cursor: { drag: { x: false, y: false } },
    legend: { live: true },
    axes: [
      {
        stroke: color,
        grid: { stroke: 'rgba(128,128,128,0.15)' },
        ticks: { stroke: 'rgba(128,128,128,0.3)' },
      },
      {
        stroke: color,
        size: 72,
        grid: { stroke: 'rgba(128,128,128,0.15)' },
        ticks: { stroke: 'rgba(128,128,128,0.3)' },
        values: (_plot, ticks) => ticks.map(format),
        ...(props.integer ? { incrs: INTEGER_STEPS } : {}),
      },
    ],
    series: [
      { label: 'Time', value: (_plot, value) => (value === null ? '—' : formatTime(value)) },
      ...data.series.map((series, index) => ({
        label: series.label,
        stroke: colors[index]!,
        width: 2,
        points: { show: data.x.length <= 60 },
        value: (_plot: uPlot, value: number | null) => (value === null ? '—' : format(value)),
      })),
    ],
  }
}

export function Chart(props: ChartProps) {
  const { name, title, data, format } = props
  const holder = useRef<HTMLDivElement>(null)

  useEffect(() => {
    const element = holder.current
    if (element === null) return
    const color = getComputedStyle(element).color
    const plot = new uPlot(
      options(props, Math.max(element.clientWidth, 280), color),
      [data.x as number[], ...data.series.map((series) => series.values)] as uPlot.AlignedData,
      element,
    )
    const resize = new ResizeObserver(() =>
      plot.setSize({ width: Math.max(element.clientWidth, 280), height: 220 }),
    )
    resize.observe(element)
    return () => {
      resize.disconnect()
      plot.destroy()
    }
  }, [data])

  const rows = data.x
    .map((x, index) => ({ x, values: data.series.map((series) => series.values[index] ?? null) }))
    .filter((row) => row.values.some((value) => value !== null && value !== 0))
  return (
    <figure class="chart" data-chart={name}>
      <figcaption>{title}</figcaption>
      <div ref={holder} class="plot" />
      <details>
        <summary>Data</summary>
        <table class="striped">
          <thead>
            <tr>
              <th scope="col">Time</th>
              {data.series.map((series) => (
                <th key={series.label} scope="col">
                  {series.label}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.length === 0 ? (
              <tr>
                <td colSpan={data.series.length + 1}>Nothing in this range.</td>
              </tr>
            ) : (
              rows.map((row) => (
                <tr key={row.x} data-x={row.x}>
                  <td>{formatTime(row.x)}</td>
                  {row.values.map((value, index) => (
                    <td key={data.series[index]!.label} data-value={value ?? ''}>
                      {value === null ? '—' : format(value)}
                    </td>
                  ))}
                </tr>
              ))
            )}
          </tbody>
        </table>
      </details>
    </figure>
  )
}
