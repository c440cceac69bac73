import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'
import { readmeRecipes, recipeSuite } from '../helpers/recipes.js'

// The README's client recipes that need only this package's dev dependencies (the OpenAI and Anthropic
// SDKs), run as written against a gateway that authenticates callers and holds the provider keys. The
// recipes marked `clients` run in test/clients/recipes.test.ts.

const recipes = readmeRecipes()

it('README recipes are found, each name once', () => {
  const names = recipes.map((recipe) => recipe.name)
  expect(new Set(names).size).toBe(names.length)
  expect(names.sort()).toEqual(['ai-sdk', 'anthropic-sdk', 'claude-code', 'openai-env', 'openai-sdk'])
})

recipeSuite(
  'README recipes',
  recipes.filter((recipe) => !recipe.clients),
  { dir: fileURLToPath(new URL('../..', import.meta.url)) },
)
