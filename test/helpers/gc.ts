import v8 from 'node:v8'
import vm from 'node:vm'

/**
 * `gc()` without --expose-gc: V8 exposes it to a new context once the flag is set at run time. It collects
 * twice: V8 frees the memory of dead ArrayBuffers on a background thread after a full collection, and the
 * next collection waits for that, so `process.memoryUsage().arrayBuffers` reads true only after the second.
 */
export function collectGarbage(): () => void {
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  return () => {
    gc()
    gc()
  }
}
