import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import { promisify } from 'node:util'

// Callgrind counts the instructions a process executes: the same program on the same input gives the same
// count, however busy the machine is, where its time moves by up to 2x on a shared two-core VM. A server runs
// under it uninstrumented (`--instr-atstart=no`, about ten times faster than counting) until its JIT has
// settled; callgrind_control then switches counting on, zeroes the counters before each measured round and
// dumps them after it, one file per round.

const run = promisify(execFile)

const TOOLS = ['valgrind', 'callgrind_control', 'callgrind_annotate'] as const
// A dump of a server that ran a few thousand requests is some megabytes; annotating it prints as much.
const OUTPUT_BYTES = 256 * 1024 * 1024
// vgdb, which carries each command, interrupts a process blocked in a system call within 100 ms; a dump
// writes the counts of every function called so far, which takes seconds at most.
const CONTROL_TIMEOUT_MS = 120_000

/** Fails, saying what to install, unless valgrind and its callgrind scripts can be run. */
export async function requireCallgrind(): Promise<void> {
  for (const tool of TOOLS) {
    try {
      await run(tool, ['--version'])
    } catch (error) {
      // callgrind_annotate exits 1 after printing its version: only a tool that cannot be started is missing.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') continue
      throw new Error(
        `${tool} not found: counting instructions needs valgrind. Install Debian's \`valgrind\` package ` +
          '(apt-get install valgrind)',
      )
    }
  }
}

/**
 * The command that runs a server's node under callgrind, not counting until told to. `outFile` may hold
 * `%p`, replaced by the pid; each dump goes to `outFile` with `.1`, `.2` and so on appended. With `caches`,
 * callgrind also simulates them and counts each level's misses.
 */
export function callgrindWrapper(
  outFile: string,
  caches?: CacheGeometry,
): [command: string, ...args: string[]] {
  const simulation =
    caches === undefined
      ? []
      : ['--cache-sim=yes', `--I1=${caches.i1}`, `--D1=${caches.d1}`, `--LL=${caches.l2}`]
  return [
    'valgrind',
    '--tool=callgrind',
    '--quiet',
    '--instr-atstart=no',
    ...simulation,
    `--callgrind-out-file=${outFile}`,
  ]
}

/** Caches as valgrind's `--I1`, `--D1` and `--LL` take them: `size,associativity,line size`, in bytes. */
export interface CacheGeometry {
  readonly i1: string
  readonly d1: string
  /**
   * The core's own second level, as the last level: what misses it goes to the L3, which other cores (and on
   * a VM, other machines) share, so what fits in it is what a request can count on.
   */
  readonly l2: string
}

const CACHE_DIR = '/sys/devices/system/cpu/cpu0/cache'

/** This machine's first core's caches, read from sysfs; `undefined` when it does not list them. */
export function cacheGeometry(): CacheGeometry | undefined {
  const found: Partial<Record<keyof CacheGeometry, string>> = {}
  for (let index = 0; index < 8; index++) {
    const cache = readCache(`${CACHE_DIR}/index${index}`)
    if (cache === undefined) continue
    const { level, type, geometry } = cache
    if (level === '1' && type === 'Instruction') found.i1 = geometry
    else if (level === '1' && type === 'Data') found.d1 = geometry
    else if (level === '2' && type === 'Unified') found.l2 = geometry
  }
  const { i1, d1, l2 } = found
  return i1 && d1 && l2 ? { i1, d1, l2 } : undefined
}

function readCache(dir: string): { level: string; type: string; geometry: string } | undefined {
  const read = (name: string) => readFileSync(`${dir}/${name}`, 'utf8').trim()
  try {
    // `size` is in kilobytes: `32K`, `1024K`.
    const bytes = Number.parseInt(read('size'), 10) * 1024
    const geometry = `${bytes},${read('ways_of_associativity')},${read('coherency_line_size')}`
    return { level: read('level'), type: read('type'), geometry }
  } catch {
    return undefined
  }
}

/** A process running under callgrind, told what to do through callgrind_control. */
export class CallgrindProcess {
  private dumps = 0

  /** `outFile` is the process's `--callgrind-out-file`, with any `%p` already replaced by its pid. */
  constructor(
    readonly pid: number,
    private readonly outFile: string,
  ) {}

  startCounting(): Promise<void> {
    return this.control('-i', 'on')
  }

  zeroCounts(): Promise<void> {
    return this.control('-z')
  }

  /** Writes the counts since the last zeroing to a new file and gives its path. */
  async dumpCounts(label: string): Promise<string> {
    await this.control('-d', label)
    this.dumps++
    const file = `${this.outFile}.${this.dumps}`
    const written = await readdir(dirname(file))
    if (!written.includes(basename(file))) {
      throw new Error(`callgrind wrote no ${file} for dump ${label} (found: ${written.join(', ')})`)
    }
    return file
  }

  private async control(...args: string[]): Promise<void> {
    // It reports every command it sends on stdout, which would only clutter the bench's own output.
    const { stdout } = await run('callgrind_control', [...args, String(this.pid)], {
      timeout: CONTROL_TIMEOUT_MS,
    })
    // It exits 0 whatever happened: only its report tells whether the process took the command.
    if (!stdout.includes('OK.')) {
      throw new Error(`callgrind_control ${args.join(' ')} ${this.pid} failed: ${stdout.trim()}`)
    }
  }
}

/**
 * A dump's counts by event (`Ir`, and with the cache simulation `I1mr`, `D1mr` and the rest): its `events:`
 * line names them, its `summary:` line (or `totals:` in files that have only that) counts them.
 */
async function summaryCounts(file: string): Promise<Record<string, number>> {
  const text = await readFile(file, 'utf8')
  const events = text.match(/^events: (.+)$/m)
  const counts = text.match(/^(?:summary|totals): (.+)$/m)
  if (!events || !counts) throw new Error(`${file} has no events line, or no summary or totals line`)
  const values = counts[1]!.trim().split(/\s+/).map(Number)
  return Object.fromEntries(
    events[1]!
      .trim()
      .split(/\s+/)
      .map((event, i) => [event, values[i] ?? 0]),
  )
}

/**
 * Where a dump's instructions went:
 * - `gc`: V8's heap and garbage collector (marking, scavenging, sweeping, evacuation, compaction, allocation,
 *   remembered sets and slots, pages), on the main thread and its helper threads;
 * - `builtins`: V8's builtins (`Builtins_*`, compiled into node): interpreter, inline caches, the standard
 *   library's functions, the write barrier;
 * - `jit`: code V8 compiled at run time from the JavaScript, which callgrind sees only as addresses;
 * - `native`: everything else: V8's runtime and compilers, node's C++, libuv, libc.
 */
export type Breakdown = Record<Category, number>

export const CATEGORIES = ['gc', 'builtins', 'jit', 'native'] as const
export type Category = (typeof CATEGORIES)[number]

/** A breakdown whose every category is `figure` of it. */
export function breakdownOf(figure: (category: Category) => number): Breakdown {
  return Object.fromEntries(CATEGORIES.map((category) => [category, figure(category)])) as Breakdown
}

// V8's heap and collector by the names of their classes and functions (a heuristic: node has symbols, no
// sources): marking, scavenging, sweeping, evacuation, compaction, allocation, remembered sets and slots,
// spaces, pages and their chunks, the collector's worklists and tracer.
const GC_IDENTIFIER =
  /^(?:Heap|Heap_\w+|Heap(?:Allocator|Visitor|ObjectIterator|Verifier|Layout)|\w*Marking\w*|\w*MarkCompact\w*|\w*Marker\w*|MarkBit\w*|\w*Scaveng\w*|\w*Sweep\w*|\w*Evacuat\w*|\w*Compact\w*|\w*Remembered\w*|\w*SlotSet\w*|\w*TypedSlot\w*|\w*Promot\w*|Pretenur\w*|Allocate\w*|(?!Accounting|Zone)\w*Allocator|\w*AllocationBuffer|LinearAllocationArea|(?!\w*WhiteSpace)\w*Space\w*|\w*Page\w*|\w*MemoryChunk\w*|FreeList\w*|GCTracer|\w*Worklist\w*|MemoryReducer)$/
// Its namespaces of their own, and one of a heap type's return type (`heap::base::SlotCallbackResult`).
const GC_NAMESPACE = /^(?:[\w:<>*& ]+ )?(?:cppgc|heap::base)::/

/** `fn` without its parameters (it keeps its return type and template arguments). */
function qualifiedName(fn: string): string {
  const name = fn.replaceAll('(anonymous namespace)', '{anonymous}')
  const parameters = name.indexOf('(')
  return parameters === -1 ? name : name.slice(0, parameters)
}

function isGc(fn: string): boolean {
  const name = qualifiedName(fn)
  if (GC_NAMESPACE.test(name)) return true
  // The optimizing compiler has its own allocators, spaces and the like, none of them the heap's.
  if (!name.includes('v8::internal::') || name.includes('v8::internal::compiler::')) return false
  return (name.match(/\w+/g) ?? []).some((identifier) => GC_IDENTIFIER.test(identifier))
}

function categoryOf(fn: string, object: string | undefined): Category {
  // Code with no symbol in no file mapped from disk: what V8 compiled at run time.
  if (fn.startsWith('0x') && (object === undefined || object === '???')) return 'jit'
  if (fn.startsWith('Builtins_')) return 'builtins'
  return isGc(fn) ? 'gc' : 'native'
}

// `  1,234,567 (12.34%)  ???:v8::internal::Heap::Scavenge() [/usr/bin/node]`: a function's own count, its
// source file (`???` without debug information) and the file it was loaded from.
const FUNCTION_LINE = /^\s*([\d,]+) \([^)]*\)\s+(?:[^:\s]*:)?(.+?)(?: \[([^\]]*)\])?$/

interface FunctionCount {
  readonly fn: string
  readonly object: string | undefined
  readonly count: number
}

/** Every function of a dump with its own count, as callgrind_annotate lists them (none left out). */
async function functionCounts(file: string): Promise<FunctionCount[]> {
  // Instructions alone, however many events the dump counts: one column to read.
  const { stdout } = await run('callgrind_annotate', ['--show=Ir', '--threshold=100', '--auto=no', file], {
    maxBuffer: OUTPUT_BYTES,
  })
  const counts: FunctionCount[] = []
  let listing = false
  for (const line of stdout.split('\n')) {
    // The listing comes after the program's totals; what comes before is the dump's description.
    if (line.includes('PROGRAM TOTALS')) {
      listing = true
      continue
    }
    const match = listing ? FUNCTION_LINE.exec(line) : null
    if (match) counts.push({ fn: match[2]!, object: match[3], count: Number(match[1]!.replaceAll(',', '')) })
  }
  return counts
}

/** Misses the cache simulation counted: code and data that missed the first level, and what missed the L2. */
export interface CacheMisses {
  i1: number
  d1: number
  l2: number
}

export interface DumpCounts {
  /** Instructions counted in the dump. */
  total: number
  /** The same, by category: adds up to `total`. */
  breakdown: Breakdown
  /** Without the cache simulation, `undefined`. */
  misses: CacheMisses | undefined
}

/** A dump's count, its breakdown, and its misses when the caches were simulated. */
export async function readDump(file: string): Promise<DumpCounts> {
  const [counts, functions] = await Promise.all([summaryCounts(file), functionCounts(file)])
  const total = counts.Ir ?? 0
  // Reads (`mr`) and writes (`mw`) that missed; the last level's are the instructions' and the data's.
  const misses =
    counts.I1mr === undefined
      ? undefined
      : {
          i1: counts.I1mr,
          d1: (counts.D1mr ?? 0) + (counts.D1mw ?? 0),
          l2: (counts.ILmr ?? 0) + (counts.DLmr ?? 0) + (counts.DLmw ?? 0),
        }
  const listed = breakdownOf(() => 0)
  for (const { fn, object, count } of functions) listed[categoryOf(fn, object)] += count
  // The functions' counts add up to the dump's summary within 0.1%, not exactly: scaled to it, so that the
  // categories add up to the figure they split.
  const sum = CATEGORIES.reduce((all, category) => all + listed[category], 0)
  const breakdown = breakdownOf((category) => (sum === 0 ? 0 : (listed[category] * total) / sum))
  return { total, breakdown, misses }
}
