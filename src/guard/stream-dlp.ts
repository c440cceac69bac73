/**
 * DLP over a stream's answer text, one lane per answer (an OpenAI choice, a Gemini candidate), each lane
 * scanned on its own. A lane's text is handed back to the events that carried it, each event exactly its
 * own characters, masked where a policy redacts: an event can go out once the scanner has released all of
 * its text, so a finding is decided, and masked, before any event holding part of it goes out. A finding
 * that runs over several events is masked in each: its label goes where it starts, the rest of it is
 * dropped (a fill mask fills every character), so the events' text, joined, reads as a whole-text
 * redaction does.
 */
import {
  createStreamScanner,
  type DlpMask,
  type DlpStreamOutput,
  type DlpStreamScanner,
} from './dlp/index.js'
import { maskSpans, mergeSpans } from './dlp/redact.js'
import type { DlpCollector } from './dlp-json.js'

export interface StreamDlp {
  readonly collector: DlpCollector
  readonly mask: DlpMask
  readonly holdBackChars: number | undefined
}

/** A finding to mask, at lane positions. */
interface Redaction {
  readonly start: number
  readonly end: number
  readonly entryId: string
}

/**
 * One answer's text. Positions count from the lane's start and go on across scanners: a lane's text ends
 * (a tool call, a finish) and a new text begins with a new scanner, so no finding spans the two.
 */
export class DlpLane {
  readonly #dlp: StreamDlp
  /** Where findings are recorded: the stream's text, or one answer of several. */
  readonly #path: string
  #scanner: DlpStreamScanner
  /** Where the current scanner began. */
  #origin = 0
  #seen = 0
  #released = 0
  /** Released text not yet taken by an event, from `#taken`. */
  #raw = ''
  #taken = 0
  /** Findings to mask that end past `#taken`: the rest of one may still be in events to come. */
  #redactions: Redaction[] = []
  /** Findings only flagged, likewise: masked in the logged copy of the events, not in what is sent. */
  #flagged: Redaction[] = []

  constructor(dlp: StreamDlp, path: string) {
    this.#dlp = dlp
    this.#path = path
    this.#scanner = this.#newScanner()
  }

  /** Scans an event's text; returns where it ends in the lane, for `isReleased` and `take`. */
  push(text: string): number {
    this.#seen += text.length
    this.#accept(this.#scanner.push(text))
    return this.#seen
  }

  /** Ends the lane's current text: what the scanner held is released. */
  end(): void {
    if (this.#seen === this.#origin) return
    this.#accept(this.#scanner.end())
    this.#origin = this.#seen
    this.#scanner = this.#newScanner()
  }

  isReleased(end: number): boolean {
    return this.#released >= end
  }

  /**
   * The released text from what was taken before up to `end`, masked; and, when a finding only flagged is
   * in it, the text as the log keeps it, with that finding masked too.
   */
  take(end: number): { text: string; logged: string | undefined } {
    const from = this.#taken
    const text = this.#raw.slice(0, end - from)
    const masked = maskFrom(text, from, this.#redactions, this.#dlp.mask)
    const flagged = this.#flagged.filter((finding) => finding.start < end)
    const logged =
      flagged.length === 0
        ? undefined
        : maskFrom(text, from, [...this.#redactions, ...flagged], this.#dlp.mask)
    this.#raw = this.#raw.slice(text.length)
    this.#taken = end
    this.#redactions = this.#redactions.filter((redaction) => redaction.end > end)
    this.#flagged = this.#flagged.filter((finding) => finding.end > end)
    return { text: masked, logged }
  }

  #accept(output: DlpStreamOutput): void {
    const redact = new Set(this.#dlp.collector.add(output.findings, this.#path, this.#origin))
    for (const finding of output.findings) {
      const { start, end, entryId } = finding
      const placed = { start: start + this.#origin, end: end + this.#origin, entryId }
      // A blocking finding stops the stream: only flagged ones go out as they are.
      if (redact.has(finding)) this.#redactions.push(placed)
      else this.#flagged.push(placed)
    }
    this.#raw += output.release
    this.#released += output.release.length
  }

  #newScanner(): DlpStreamScanner {
    // Detect mode: which findings are masked is the policies' choice, made as they are released.
    return createStreamScanner(this.#dlp.collector.check.compiled, {
      holdBackChars: this.#dlp.holdBackChars,
      action: 'detect',
    })
  }
}

/** The lanes of one stream, made as their answers first show up. */
export class DlpLanes {
  readonly #dlp: StreamDlp
  readonly #lanes = new Map<number, DlpLane>()

  constructor(dlp: StreamDlp) {
    this.#dlp = dlp
  }

  lane(index: number): DlpLane {
    let lane = this.#lanes.get(index)
    if (lane === undefined) {
      // The first answer's text is the stream's text, as when there is only one.
      lane = new DlpLane(this.#dlp, index === 0 ? '' : `/${index}`)
      this.#lanes.set(index, lane)
    }
    return lane
  }

  /** Ends one lane's text, or every lane's for an event that belongs to no one answer. */
  end(index: number | undefined): void {
    if (index === undefined) for (const lane of this.#lanes.values()) lane.end()
    else this.#lanes.get(index)?.end()
  }
}

/**
 * Masks `text`, the lane's characters from `from`. A masked region that began before `from` was labelled
 * in an earlier event, with every finding that overlaps it: its rest is dropped here.
 */
function maskFrom(text: string, from: number, redactions: readonly Redaction[], mask: DlpMask): string {
  const regions = mergeSpans(
    redactions.map(({ start, end, entryId }) => ({
      start: start - from,
      end: end - from,
      entryIds: [entryId],
    })),
  )
  if (mask !== 'label') return maskSpans(text, regions, mask)
  const begun = regions[0] !== undefined && regions[0].start < 0 ? regions[0].end : 0
  const rest = Math.min(begun, text.length)
  const after = regions.map((region) => ({ ...region, start: region.start - rest, end: region.end - rest }))
  return maskSpans(text.slice(rest), after, mask)
}
