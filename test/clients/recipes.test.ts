import { fileURLToPath } from 'node:url'
import { inject } from 'vitest'
import { readmeRecipes, recipeSuite } from '../helpers/recipes.js'
import type { ProvidedClientTests } from '../setup/provided.js'

// The README's client recipes that need this directory's packages (the Vercel AI SDK, Claude Code), run
// as written against a gateway that authenticates callers and holds the provider keys. Claude Code is the
// real command-line tool, run in print mode with a home directory of its own.

const clientTests: ProvidedClientTests = inject('clientTests')

recipeSuite(
  'README recipes (test/clients)',
  readmeRecipes().filter((recipe) => recipe.clients),
  {
    dir: fileURLToPath(new URL('.', import.meta.url)),
    skip: !clientTests.available,
    // Claude Code's own binary, and no network beyond the gateway: no telemetry, no update checks.
    path: `${fileURLToPath(new URL('./node_modules/.bin', import.meta.url))}:${process.env.PATH}`,
    env: { CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1', DISABLE_AUTOUPDATER: '1' },
  },
)
