/** Loading data for a page: one hook, so every page shows progress and failures the same way. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks'

export interface Loaded<T> {
  readonly data: T | undefined
  readonly error: Error | undefined
  readonly loading: boolean
  /** Loads again with the same inputs; resolves when done. */
  reload(): Promise<void>
}

/**
 * Runs `load` now and whenever `deps` change, keeping the last answer on screen while the next loads.
 * An answer that arrives after a newer load started is dropped.
 *
 * @example
 * const keys = useLoad(() => api<{ keys: MaskedKey[] }>('keys'), [])
 */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true })
  const latest = useRef(0)
  const run = useCallback(async () => {
    const call = ++latest.current
    setState((previous) => ({ ...previous, loading: true }))
    try {
      const data = await load()
      if (call === latest.current) setState({ data, loading: false })
    } catch (error) {
      if (call === latest.current) {
        setState((previous) => ({ ...previous, error: error as Error, loading: false }))
      }
    }
  }, deps)
  useEffect(() => {
    void run()
  }, [run])
  return { data: state.data, error: state.error, loading: state.loading, reload: run }
}
