import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

// The README's two header tables against the headers the code reads and sets. No single list of them
// exists in the code (the settings rules, authentication, metadata and tracing each read their own), so
// the sources are the list: every string literal that is a whole `cf-*` header name, in the gateway's
// code (src/ and adapters/, without the test kit in src/testing/). Comments do not count.
const root = fileURLToPath(new URL('../..', import.meta.url))
const README = readFileSync(join(root, 'README.md'), 'utf8')
const HEADER_NAME = /^cf-(?:[a-z0-9]+-)*[a-z0-9]+$/

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts'))
    .map((entry) => join(entry.parentPath, entry.name))
    .filter((file) => !relative(root, file).split(/[\\/]/).join('/').startsWith('src/testing/'))
}

/**
 * A header name the code writes is a response header: set through `responseHeaders[...]` (or read back
 * from it), assigned as `headers[name] = …`, or a key of an object literal or destructuring pattern.
 * Any other use (`headers['cf-aig-…']`, a rule's `header: '…'`, an argument) reads a request header.
 */
function isResponseUse(literal: ts.Node): boolean {
  const parent = literal.parent
  if (ts.isElementAccessExpression(parent) && parent.argumentExpression === literal) {
    if (/responseHeaders$/.test(parent.expression.getText())) return true
    const assignment = parent.parent
    return (
      ts.isBinaryExpression(assignment) &&
      assignment.left === parent &&
      assignment.operatorToken.kind === ts.SyntaxKind.EqualsToken
    )
  }
  if (ts.isPropertyAssignment(parent) && parent.name === literal) return true
  return ts.isBindingElement(parent) && parent.propertyName === literal
}

function headersInCode(): { request: Set<string>; response: Set<string> } {
  const request = new Set<string>()
  const response = new Set<string>()
  const files = [...sourceFiles(join(root, 'src')), ...sourceFiles(join(root, 'adapters'))]
  for (const file of files) {
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true)
    const visit = (node: ts.Node): void => {
      if (
        (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) &&
        HEADER_NAME.test(node.text)
      ) {
        ;(isResponseUse(node) ? response : request).add(node.text)
      }
      ts.forEachChild(node, visit)
    }
    visit(source)
  }
  return { request, response }
}

/** The `cf-*` names in the first column of the tables of the README's "Headers" section, in order. */
function headersInReadme(): Set<string>[] {
  const section = README.split(/^## Headers$/m)[1]?.split(/^## /m)[0]
  if (section === undefined) throw new Error('README.md has no "## Headers" section')
  const tables: Set<string>[] = []
  let current: Set<string> | undefined
  for (const line of section.split('\n')) {
    if (!line.startsWith('|')) {
      current = undefined
      continue
    }
    if (current === undefined) {
      current = new Set()
      tables.push(current)
    }
    const firstCell = line.split('|')[1] ?? ''
    for (const match of firstCell.matchAll(/`(cf-[a-z0-9-]+)`/g)) current.add(match[1]!)
  }
  return tables
}

const sorted = (names: Set<string>) => [...names].sort()

describe('README header tables', () => {
  const code = headersInCode()
  const [requestTable, responseTable] = headersInReadme()

  it('finds both tables, and headers in the code', () => {
    expect(requestTable?.size).toBeGreaterThan(0)
    expect(responseTable?.size).toBeGreaterThan(0)
    expect(code.request.has('cf-aig-authorization')).toBe(true)
    expect(code.response.has('cf-aig-cache-status')).toBe(true)
  })

  it('list every request header the code reads, and only those', () => {
    expect(sorted(requestTable!)).toEqual(sorted(code.request))
  })

  it('list every response header the code sets, and only those', () => {
    expect(sorted(responseTable!)).toEqual(sorted(code.response))
  })
})
