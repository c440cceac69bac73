/**
 * The reference's `named-interval` windows: UTC calendar periods, not fixed lengths. A month is 28 to 31
 * days and an ISO week starts on a Monday, so neither lines up with `floor(now / windowMs)` (the epoch was a
 * Thursday); every period is computed from the calendar instead.
 */

export const PERIODS = ['hourly', 'daily', 'weekly', 'monthly'] as const
export type Period = (typeof PERIODS)[number]

/** One calendar period: `[start, end)` in ms since the epoch. */
export interface PeriodWindow {
  readonly period: Period
  readonly start: number
  readonly end: number
}

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS

/**
 * The UTC period of kind `period` that contains `now`: the hour, the day, the ISO week (Monday 00:00 to the
 * next Monday) or the calendar month.
 *
 * @example
 * periodWindow('weekly', Date.parse('2026-12-31T23:59:00Z')) // start 2026-12-28T00:00Z, end 2027-01-04T00:00Z
 */
export function periodWindow(period: Period, now: number): PeriodWindow {
  const date = new Date(now)
  const year = date.getUTCFullYear()
  const month = date.getUTCMonth()
  const dayStart = Date.UTC(year, month, date.getUTCDate())
  switch (period) {
    case 'hourly': {
      const start = dayStart + date.getUTCHours() * HOUR_MS
      return { period, start, end: start + HOUR_MS }
    }
    case 'daily':
      return { period, start: dayStart, end: dayStart + DAY_MS }
    case 'weekly': {
      // getUTCDay() counts from Sunday; ISO weeks count from Monday.
      const start = dayStart - ((date.getUTCDay() + 6) % 7) * DAY_MS
      return { period, start, end: start + 7 * DAY_MS }
    }
    case 'monthly':
      // Date.UTC carries month 12 into January of the next year.
      return { period, start: Date.UTC(year, month, 1), end: Date.UTC(year, month + 1, 1) }
  }
}
