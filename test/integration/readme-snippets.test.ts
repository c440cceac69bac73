import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { beforeAll, describe, expect, it } from 'vitest'

// Type-checks every ```ts block of the README with the repo's own compiler options, as if each were a
// file at the package root: `ai-gateway-middleware/...` imports resolve to the sources through the
// package's `ai-gateway-source` export condition, so no build is needed. The files exist only in memory.
//
// A block that uses names it does not define (an `app`, a `store`) gets them from an HTML comment right
// above its fence, which GitHub does not render:
//
//   <!-- snippet-context
//   declare const app: import('express').Express
//   -->
//
// The comment's lines come first and the block follows; a line `/* snippet */` in the comment marks
// where the block goes instead, for a fragment that needs code around it.
//
// A recipe marked `<!-- recipe NAME clients -->` imports packages only test/clients installs: it is not
// checked here but run there, by test/clients/recipes.test.ts.

const root = fileURLToPath(new URL('../..', import.meta.url)).replace(/\\/g, '/')
const README = readFileSync(`${root}README.md`, 'utf8')
const CONTEXT_OPEN = '<!-- snippet-context'
const CONTEXT_CLOSE = '-->'
const PLACEHOLDER = '/* snippet */'
const CLIENTS_RECIPE = /^<!-- recipe [a-z0-9-]+ clients -->$/

interface Snippet {
  /** README line (1-based) of the block's first code line. */
  readonly line: number
  /** README line of the context comment, when there is one. */
  readonly contextLine: number | undefined
  readonly code: string[]
  readonly context: string[]
}

function readmeSnippets(markdown: string): Snippet[] {
  const lines = markdown.split('\n')
  const snippets: Snippet[] = []
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```ts') continue
    const end = lines.indexOf('```', i + 1)
    if (end === -1) throw new Error(`README.md:${i + 1}: a \`\`\`ts block is never closed`)
    if (CLIENTS_RECIPE.test(lines[i - 1] ?? '')) {
      i = end
      continue
    }
    let context: string[] = []
    let contextLine: number | undefined
    if (lines[i - 1] === CONTEXT_CLOSE) {
      let open = i - 2
      while (open >= 0 && lines[open] !== CONTEXT_OPEN && lines[open] !== CONTEXT_CLOSE) open--
      if (lines[open] === CONTEXT_OPEN) {
        context = lines.slice(open + 1, i - 1)
        contextLine = open + 1
      }
    }
    snippets.push({ line: i + 2, contextLine, code: lines.slice(i + 1, end), context })
    i = end
  }
  return snippets
}

/** The file a snippet is checked as, and where its first code line lands in it (0-based). */
function snippetFile(snippet: Snippet): { text: string; firstLine: number } {
  const at = snippet.context.findIndex((line) => line.trim() === PLACEHOLDER)
  const before = at === -1 ? snippet.context : snippet.context.slice(0, at)
  const after = at === -1 ? [] : snippet.context.slice(at + 1)
  // `export {}` makes every snippet a module, so two snippets may both declare `const app`.
  const text = [...before, ...snippet.code, ...after, 'export {}', ''].join('\n')
  return { text, firstLine: before.length }
}

function compilerOptions(): ts.CompilerOptions {
  const config = ts.readConfigFile(`${root}tsconfig.json`, ts.sys.readFile)
  if (config.error) throw new Error(ts.flattenDiagnosticMessageText(config.error.messageText, '\n'))
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, root)
  return { ...parsed.options, noEmit: true }
}

/** Type-checks all snippets in one program; the messages of each, keyed by its README line. */
function typeCheck(snippets: readonly Snippet[]): Map<number, string[]> {
  const files = new Map<string, { snippet: Snippet; text: string; firstLine: number }>()
  for (const snippet of snippets) {
    files.set(`${root}readme-snippet-line-${snippet.line}.ts`, { snippet, ...snippetFile(snippet) })
  }
  const options = compilerOptions()
  const host = ts.createCompilerHost(options, true)
  const getSourceFile = host.getSourceFile.bind(host)
  host.getSourceFile = (fileName, languageVersion, onError, shouldCreate) => {
    const file = files.get(fileName)
    return file
      ? ts.createSourceFile(fileName, file.text, languageVersion, true)
      : getSourceFile(fileName, languageVersion, onError, shouldCreate)
  }
  host.fileExists = (fileName) => files.has(fileName) || ts.sys.fileExists(fileName)
  host.readFile = (fileName) => files.get(fileName)?.text ?? ts.sys.readFile(fileName)
  const program = ts.createProgram({ rootNames: [...files.keys()], options, host })

  const global = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()]
  if (global.length > 0) {
    throw new Error(global.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')).join('\n'))
  }
  const messages = new Map<number, string[]>()
  for (const [fileName, { snippet, firstLine }] of files) {
    const source = program.getSourceFile(fileName)!
    const diagnostics = [
      ...program.getSyntacticDiagnostics(source),
      ...program.getSemanticDiagnostics(source),
    ]
    messages.set(
      snippet.line,
      diagnostics.map((diagnostic) => {
        const text = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')
        const line = source.getLineAndCharacterOfPosition(diagnostic.start ?? 0).line
        const inCode = line >= firstLine && line < firstLine + snippet.code.length
        const where = inCode
          ? `README.md:${snippet.line + line - firstLine}`
          : `README.md:${snippet.contextLine} (the context of the snippet at line ${snippet.line})`
        return `${where}: ${text}`
      }),
    )
  }
  return messages
}

const snippets = readmeSnippets(README)

describe('README snippets', () => {
  let messages: Map<number, string[]>
  beforeAll(() => {
    messages = typeCheck(snippets)
  }, 120_000)

  it('are all found, and every context comment sits right above a ```ts block', () => {
    const lines = README.split('\n')
    const fences = lines.filter(
      (line, i) => line === '```ts' && !CLIENTS_RECIPE.test(lines[i - 1] ?? ''),
    ).length
    expect(snippets.length).toBe(fences)
    // Code tagged otherwise would go unchecked.
    expect(README.match(/^```(?:typescript|tsx|ts[ \t].+|js|javascript|mjs|cjs|mts|cts)$/gm)).toBeNull()
    expect(snippets.length).toBeGreaterThan(10)
    const contexts = README.split('\n').filter((line) => line === CONTEXT_OPEN).length
    expect(snippets.filter((snippet) => snippet.contextLine !== undefined).length).toBe(contexts)
  })

  for (const snippet of snippets) {
    it(`type-checks the snippet at README.md:${snippet.line}`, () => {
      expect(messages.get(snippet.line)).toEqual([])
    })
  }
})
