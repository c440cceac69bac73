import v8 from 'node:v8'
import vm from 'node:vm'

/** `gc()` without --expose-gc: V8 exposes it to a new context once the flag is set at run time. */
export function collectGarbage(): () => void {
  v8.setFlagsFromString('--expose-gc')
  return vm.runInNewContext('gc') as () => void
}
