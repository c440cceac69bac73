/** One sample line of the Prometheus text format. */
export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

/** The samples of a Prometheus text exposition; comments and blank lines are skipped. */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = LINE.exec(line)
    if (match === null) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, name, value] of (match[2] ?? '').matchAll(LABEL)) {
      labels[name!] = value!.replace(/\\(.)/g, (_all, char: string) => (char === 'n' ? '\n' : char))
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) })
  }
  return samples
}

/**
 * Reads samples by name and labels: `value` is the one sample whose labels are exactly these (`undefined`
 * when there is none), `sum` adds every sample whose labels include these.
 */
export function samplesOf(text: string) {
  const samples = parseExposition(text)
  const matches = (sample: Sample, name: string, labels: Record<string, string>) =>
    sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value)
  return {
    samples,
    value(name: string, labels: Record<string, string> = {}): number | undefined {
      const found = samples.filter(
        (sample) =>
          matches(sample, name, labels) && Object.keys(sample.labels).length === Object.keys(labels).length,
      )
      if (found.length > 1)
        throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`)
      return found[0]?.value
    },
    sum(name: string, labels: Record<string, string> = {}): number {
      return samples
        .filter((sample) => matches(sample, name, labels))
        .reduce((total, s) => total + s.value, 0)
    },
    /** The label values a metric has for `label`, each once. */
    valuesOf(name: string, label: string): string[] {
      return [
        ...new Set(samples.filter((sample) => sample.name === name).map((sample) => sample.labels[label]!)),
      ]
    },
  }
}
