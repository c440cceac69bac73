import type { PassThrough } from 'node:stream'
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

/**
 * Writes `text` to `source` in pieces of `size` bytes, each its own Buffer, as a provider that writes each
 * piece on its own cuts it. `kept()` waits until the source passed every piece on, then says how many of
 * those Buffers are still alive after a full collection: the ones its reader keeps as they came.
 */
export function trickle(source: PassThrough, text: string, size = 1): { kept: () => Promise<number> } {
  const gc = collectGarbage()
  const bytes = Buffer.from(text)
  const written: WeakRef<Buffer>[] = []
  for (let at = 0; at < bytes.length; at += size) {
    const piece = Buffer.from(bytes.subarray(at, at + size))
    source.write(piece)
    written.push(new WeakRef(piece))
  }
  return {
    kept: async () => {
      // A WeakRef's target lives at least to the end of the task that made it.
      do await new Promise((resolve) => setImmediate(resolve))
      while (source.readableLength > 0 || source.writableLength > 0)
      gc()
      return written.filter((piece) => piece.deref() !== undefined).length
    },
  }
}
