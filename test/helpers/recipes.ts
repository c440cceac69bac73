import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import type { Gateway } from '../../src/index.js'
import { createMockProvider, type MockProvider } from '../../src/testing/index.js'
import { mountGateway } from './express-gateway.js'

/**
 * The README's recipes (the blocks right under a `<!-- recipe NAME -->` comment), run as a user runs
 * them: a ```ts block as a module (the recipes use no syntax beyond JavaScript), a ```sh block with bash.
 * Recipes marked `clients` use packages of test/clients and run there (test/clients/recipes.test.ts).
 */
export interface Recipe {
  readonly name: string
  readonly language: 'ts' | 'sh'
  readonly code: string
  /** Whether it needs the packages of test/clients. */
  readonly clients: boolean
  /** README line of its first code line. */
  readonly line: number
}

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const MARKER = /^<!-- recipe ([a-z0-9-]+)( clients)? -->$/

export function readmeRecipes(): Recipe[] {
  const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n')
  const recipes: Recipe[] = []
  for (const [index, line] of lines.entries()) {
    const marker = MARKER.exec(line)
    if (marker === null) continue
    const fence = /^```(ts|sh)$/.exec(lines[index + 1] ?? '')
    if (fence === null)
      throw new Error(`README.md:${index + 1}: a recipe comment must sit right above a ts or sh block`)
    const end = lines.indexOf('```', index + 2)
    recipes.push({
      name: marker[1]!,
      language: fence[1] as 'ts' | 'sh',
      code: lines.slice(index + 2, end).join('\n'),
      clients: marker[2] !== undefined,
      line: index + 3,
    })
  }
  return recipes
}

/** The gateway the recipes talk to: Express, gateway authentication, stored keys, a mock provider that takes only those. */
export interface RecipeGateway {
  readonly url: string
  readonly token: string
  readonly stored: readonly string[]
  readonly mock: MockProvider
  readonly gateway: Gateway
  close(): Promise<void>
}

export async function startRecipeGateway(): Promise<RecipeGateway> {
  const token = 'gw-recipe-token-0123456789'
  const stored = ['sk-stored-openai-0001', 'sk-ant-stored-0002']
  const mock = await createMockProvider({ keys: stored, echoKeyInErrors: true })
  const mounted = await mountGateway({
    authentication: { tokens: [token] },
    providers: {
      openai: { apiKey: stored[0], baseURL: `${mock.url}/v1` },
      anthropic: { apiKey: stored[1], baseURL: mock.url },
    },
  })
  return {
    url: `${mounted.url}/ai`,
    token,
    stored,
    mock,
    gateway: mounted.gateway,
    async close() {
      await mounted.close()
      await mock.close()
    },
  }
}

/**
 * Runs a recipe from `dir` (where its imports resolve: the repository, or test/clients), with
 * `GATEWAY_URL` and `GATEWAY_TOKEN` set and a home directory of its own. Resolves with what it printed;
 * rejects with its output when it exits non-zero.
 */
export async function runRecipe(
  recipe: Recipe,
  options: { dir: string; gateway: RecipeGateway; path?: string; env?: Record<string, string> },
): Promise<string> {
  const home = mkdtempSync(join(tmpdir(), `recipe-${recipe.name}-`))
  // Inside node_modules, so the module's bare imports resolve from `dir`'s packages.
  const scripts = join(options.dir, 'node_modules', '.cache', 'readme-recipes')
  mkdirSync(scripts, { recursive: true })
  const script = join(scripts, `${recipe.name}.mjs`)
  if (recipe.language === 'ts') writeFileSync(script, recipe.code)
  const [file, args] =
    recipe.language === 'ts'
      ? [process.execPath, [script]]
      : ['bash', ['-euo', 'pipefail', '-c', recipe.code]]
  const env = {
    PATH: options.path ?? process.env.PATH,
    HOME: home,
    GATEWAY_URL: options.gateway.url,
    GATEWAY_TOKEN: options.gateway.token,
    ...options.env,
  }
  try {
    return await new Promise<string>((resolve, reject) => {
      execFile(file, args, { cwd: options.dir, env }, (error, stdout, stderr) => {
        if (error === null) resolve(stdout)
        else
          reject(
            new Error(
              `recipe ${recipe.name} (README.md:${recipe.line}) failed: ${error.message}\n${stdout}${stderr}`,
            ),
          )
      })
    })
  } finally {
    rmSync(home, { recursive: true, force: true })
  }
}

/**
 * Runs each recipe against a fresh recipe gateway: it must print the mock's answer to its `Hello`, and
 * every call the provider received must carry a stored key and nothing of the gateway token.
 */
export function recipeSuite(
  title: string,
  recipes: readonly Recipe[],
  options: { dir: string; skip?: boolean; path?: string; env?: Record<string, string> },
): void {
  describe.skipIf(options.skip ?? false)(title, () => {
    let gateway: RecipeGateway
    beforeAll(async () => {
      gateway = await startRecipeGateway()
    })
    afterAll(() => gateway.close())
    beforeEach(() => gateway.mock.reset())

    for (const recipe of recipes) {
      it(`${recipe.name} (README.md:${recipe.line}) gets its answer with the gateway token, and the provider sees only the stored key`, async () => {
        const printed = await runRecipe(recipe, { ...options, gateway })
        expect(printed).toContain('mock reply to:')
        expect(printed).toContain('Hello')
        expect(gateway.mock.calls.length).toBeGreaterThan(0)
        for (const call of gateway.mock.calls) {
          const key = call.headers['x-api-key'] ?? call.headers.authorization?.replace(/^Bearer /, '')
          expect(gateway.stored).toContain(key)
          expect(JSON.stringify(call.headers)).not.toContain(gateway.token)
        }
      }, 60_000)
    }
  })
}
