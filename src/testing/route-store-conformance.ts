import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import type { RouteDefinition, RouteElement, RouteOutput, RouteStore } from '../dynamic/types.js'
import type { MaybePromise } from '../stores/types.js'
import type { ConformanceHooks } from './conformance.js'

/** A fixed instant (Wednesday 15 January 2025, 12:00:00.123 UTC); the odd milliseconds must survive. */
const NOON = Date.UTC(2025, 0, 15, 12, 0, 0, 123)
const MINUTE = 60_000

/**
 * Registers a vitest suite every {@link RouteStore} must pass. `makeStore` is called before each test and
 * must answer an empty store (a fresh prefix, schema or table); cleaning up afterwards is the caller's job,
 * for instance in `hooks.afterAll`.
 *
 * @example
 * import { routeStoreConformance } from 'ai-gateway-middleware/testing/conformance'
 * routeStoreConformance('my store', () => createMyRouteStore({ prefix: `test-${randomUUID()}:` }))
 */
export function routeStoreConformance(
  name: string,
  makeStore: () => MaybePromise<RouteStore>,
  hooks: ConformanceHooks = {},
): void {
  describe(`${name}: RouteStore conformance`, () => {
    if (hooks.afterAll !== undefined) afterAll(hooks.afterAll)
    let store: RouteStore

    beforeEach(async () => {
      store = await makeStore()
    })

    it('knows nothing of a route never saved', async () => {
      expect(await store.versions('missing')).toEqual([])
      expect(await store.version('missing', 1)).toBeUndefined()
      expect(await store.deployed('missing')).toBeUndefined()
      expect(await store.deploy('missing', 1, NOON)).toBeUndefined()
      expect(await store.list()).toEqual([])
      expect(await store.delete('missing')).toBe(false)
    })

    it('saves versions 1, 2, 3 of a route, each as given and with its time', async () => {
      for (let version = 1; version <= 3; version++) {
        const definition = sample('support', `model-${version}`)
        const at = NOON + version * MINUTE
        expect(await store.save(definition, at)).toEqual({
          name: 'support',
          version,
          definition,
          createdAt: at,
        })
      }
    })

    it('lists versions newest first and finds each by number', async () => {
      const definitions = [1, 2, 3].map((n) => sample('support', `model-${n}`))
      for (const [index, definition] of definitions.entries()) await store.save(definition, NOON + index)
      const versions = await store.versions('support')
      expect(versions.map((v) => v.version)).toEqual([3, 2, 1])
      expect(versions.map((v) => v.definition)).toEqual([...definitions].reverse())
      expect(versions.map((v) => v.createdAt)).toEqual([NOON + 2, NOON + 1, NOON])
      for (const [index, definition] of definitions.entries()) {
        expect(await store.version('support', index + 1)).toEqual({
          name: 'support',
          version: index + 1,
          definition,
          createdAt: NOON + index,
        })
      }
    })

    it('answers undefined for a version that does not exist or is no version number', async () => {
      await store.save(sample('support'), NOON)
      for (const version of [0, 2, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
        expect(await store.version('support', version)).toBeUndefined()
      }
    })

    it('deploys nothing on save, and deploys the version asked for', async () => {
      const first = sample('support', 'model-1')
      await store.save(first, NOON)
      await store.save(sample('support', 'model-2'), NOON + 1)
      expect(await store.deployed('support')).toBeUndefined()

      expect(await store.deploy('support', 1, NOON + MINUTE)).toEqual({
        name: 'support',
        version: 1,
        deployedAt: NOON + MINUTE,
      })
      expect(await store.deployed('support')).toEqual({
        name: 'support',
        version: 1,
        deployedAt: NOON + MINUTE,
        definition: first,
      })
      // A later save is not live until it is deployed.
      await store.save(sample('support', 'model-3'), NOON + 2 * MINUTE)
      expect((await store.deployed('support'))?.version).toBe(1)
    })

    it('rolls back by deploying an older version, keeping every version', async () => {
      const definitions = [1, 2, 3].map((n) => sample('support', `model-${n}`))
      for (const definition of definitions) await store.save(definition, NOON)
      await store.deploy('support', 3, NOON + MINUTE)
      expect(await store.deploy('support', 2, NOON + 2 * MINUTE)).toEqual({
        name: 'support',
        version: 2,
        deployedAt: NOON + 2 * MINUTE,
      })
      expect(await store.deployed('support')).toEqual({
        name: 'support',
        version: 2,
        deployedAt: NOON + 2 * MINUTE,
        definition: definitions[1],
      })
      expect((await store.versions('support')).map((v) => v.version)).toEqual([3, 2, 1])
      // Deploying the live version again moves only its time.
      await store.deploy('support', 2, NOON + 3 * MINUTE)
      expect(await store.deployed('support')).toMatchObject({ version: 2, deployedAt: NOON + 3 * MINUTE })
    })

    it('refuses to deploy an unknown route or version, leaving the deployment as it was', async () => {
      await store.save(sample('support'), NOON)
      await store.deploy('support', 1, NOON + 1)
      expect(await store.deploy('other', 1, NOON + 2)).toBeUndefined()
      for (const version of [0, 2, -1, 1.5, Number.NaN]) {
        expect(await store.deploy('support', version, NOON + 3)).toBeUndefined()
      }
      expect(await store.deployed('support')).toMatchObject({ version: 1, deployedAt: NOON + 1 })
      expect(await store.deployed('other')).toBeUndefined()
      expect((await store.list()).map((r) => r.name)).toEqual(['support'])
    })

    it('lists every route by name, with its latest and deployed versions and last change', async () => {
      // Code-unit order: '-' < '2' < '_'.
      for (const name of ['beta', 'alpha_2', 'alpha', 'alpha2', 'alpha-2'])
        await store.save(sample(name), NOON)
      await store.save(sample('beta'), NOON + MINUTE)
      await store.save(sample('beta'), NOON + 2 * MINUTE)
      await store.deploy('beta', 2, NOON + 3 * MINUTE)
      // A deploy stamped earlier than the last save (instances' clocks differ) does not move the time back.
      await store.deploy('alpha', 1, NOON - MINUTE)
      expect(await store.list()).toEqual([
        { name: 'alpha', latestVersion: 1, deployedVersion: 1, updatedAt: NOON },
        { name: 'alpha-2', latestVersion: 1, deployedVersion: undefined, updatedAt: NOON },
        { name: 'alpha2', latestVersion: 1, deployedVersion: undefined, updatedAt: NOON },
        { name: 'alpha_2', latestVersion: 1, deployedVersion: undefined, updatedAt: NOON },
        { name: 'beta', latestVersion: 3, deployedVersion: 2, updatedAt: NOON + 3 * MINUTE },
      ])
    })

    it('deletes a route with its versions and deployment, answering true once', async () => {
      await store.save(sample('support'), NOON)
      await store.save(sample('support'), NOON + 1)
      await store.deploy('support', 2, NOON + 2)
      await store.save(sample('billing'), NOON)
      expect(await store.delete('support')).toBe(true)
      expect(await store.delete('support')).toBe(false)
      expect(await store.versions('support')).toEqual([])
      expect(await store.version('support', 1)).toBeUndefined()
      expect(await store.deployed('support')).toBeUndefined()
      expect(await store.deploy('support', 1, NOON + 3)).toBeUndefined()
      expect((await store.list()).map((r) => r.name)).toEqual(['billing'])
      // A route saved again under the name starts over.
      expect((await store.save(sample('support'), NOON + 4)).version).toBe(1)
      expect(await store.deployed('support')).toBeUndefined()
    })

    it('keeps routes apart, including names that share a prefix', async () => {
      const names = ['team', 'team-eu', 'team:1', 'team:1:versions']
      for (const [index, name] of names.entries()) {
        for (let n = 0; n <= index; n++) await store.save(sample(name, `${name}-${n}`), NOON + n)
      }
      for (const [index, name] of names.entries()) {
        const versions = await store.versions(name)
        expect(versions.map((v) => v.version)).toEqual(
          Array.from({ length: index + 1 }, (_, n) => index + 1 - n),
        )
        expect(versions.every((v) => v.name === name && v.definition.name === name)).toBe(true)
      }
      await store.deploy('team-eu', 2, NOON + MINUTE)
      expect(await store.deployed('team')).toBeUndefined()
      expect(await store.deploy('team', 2, NOON + MINUTE)).toBeUndefined()
      await store.delete('team')
      expect((await store.list()).map((r) => [r.name, r.latestVersion, r.deployedVersion])).toEqual([
        ['team-eu', 2, 2],
        ['team:1', 3, undefined],
        ['team:1:versions', 4, undefined],
      ])
      expect((await store.deployed('team-eu'))?.definition).toEqual(sample('team-eu', 'team-eu-1'))
    })

    it('gives 20 concurrent saves of one route 20 distinct, consecutive versions', async () => {
      const definitions = Array.from({ length: 20 }, (_, i) => sample('busy', `model-${i}`))
      const saved = await Promise.all(definitions.map((definition, i) => store.save(definition, NOON + i)))
      expect(saved.map((v) => v.version).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 20 }, (_, i) => i + 1),
      )
      // Each version holds the definition whose save was given that number.
      const versions = await store.versions('busy')
      expect(versions.map((v) => v.version)).toEqual(Array.from({ length: 20 }, (_, i) => 20 - i))
      for (const each of saved) {
        expect(versions.find((v) => v.version === each.version)?.definition).toEqual(each.definition)
      }
      expect(await store.list()).toEqual([
        { name: 'busy', latestVersion: 20, deployedVersion: undefined, updatedAt: NOON + 19 },
      ])
    })

    it('round-trips every element type, nested conditions and non-ASCII text', async () => {
      const definition = fullDefinition('everything')
      await store.save(definition, NOON)
      await store.deploy('everything', 1, NOON)
      expect((await store.version('everything', 1))?.definition).toEqual(definition)
      expect((await store.deployed('everything'))?.definition).toEqual(definition)
    })

    it('keeps its own copy: changing what was saved or read changes nothing stored', async () => {
      const definition = sample('support', 'model-1')
      const saved = await store.save(definition, NOON)
      await store.deploy('support', 1, NOON)
      const pristine = sample('support', 'model-1')

      mutate(definition)
      mutate(saved.definition)
      mutate((await store.versions('support'))[0]!.definition)
      mutate((await store.version('support', 1))!.definition)
      mutate((await store.deployed('support'))!.definition)

      expect((await store.version('support', 1))?.definition).toEqual(pristine)
      expect((await store.versions('support'))[0]?.definition).toEqual(pristine)
      expect((await store.deployed('support'))?.definition).toEqual(pristine)
    })
  })
}

/** A small valid route: start → model → end, with a fallback model. */
function sample(name: string, model = 'gpt-4o-mini'): RouteDefinition {
  return {
    name,
    elements: [
      { id: 'start', type: 'start', outputs: { next: { elementId: 'primary' } } },
      {
        id: 'primary',
        type: 'model',
        properties: { provider: 'openai', model, timeout: 5000, retries: 1 },
        outputs: { success: { elementId: 'end' }, fallback: { elementId: 'backup' } },
      },
      {
        id: 'backup',
        type: 'model',
        properties: { provider: 'anthropic', model: 'claude-3-5-haiku-latest' },
        outputs: { success: { elementId: 'end' } },
      },
      { id: 'end', type: 'end', outputs: {} },
    ],
  }
}

function fullDefinition(name: string): RouteDefinition {
  return {
    name,
    elements: [
      { id: 'start', type: 'start', outputs: { next: { elementId: 'plan' } } },
      {
        id: 'plan',
        type: 'conditional',
        properties: {
          condition: {
            $and: [
              { 'metadata.plan': { $in: ['pro', 'équipe', '企業'] } },
              { $or: [{ 'body.temperature': { $lte: 0.7 } }, { 'headers.x-tier': { $exists: false } }] },
              { $not: { 'principal.id': null } },
            ],
          },
        },
        outputs: { true: { elementId: 'split' }, false: { elementId: 'limit' } },
      },
      {
        id: 'split',
        type: 'percentage',
        properties: { key: 'metadata.user_id' },
        outputs: {
          '12.5%': { elementId: 'fast' },
          '50%': { elementId: 'limit' },
          else: { elementId: 'fast' },
        },
      },
      {
        id: 'limit',
        type: 'rate',
        properties: {
          limitType: 'cost',
          key: 'principal.id',
          limit: 0.25,
          interval: 3600,
          technique: 'sliding',
        },
        outputs: { success: { elementId: 'fast' }, fallback: { elementId: 'end' } },
      },
      {
        id: 'fast',
        type: 'model',
        properties: { provider: 'workers-ai', model: '@cf/meta/llama-3.1-8b-instruct', retries: 0 },
        outputs: { success: { elementId: 'end' } },
      },
      { id: 'end', type: 'end', outputs: {} },
    ],
  }
}

/** Changes a definition in place, at the top and deep inside, as a careless caller might. */
function mutate(definition: RouteDefinition): void {
  const elements = definition.elements as RouteElement[]
  ;(elements[0]!.outputs as Record<string, RouteOutput>).next = { elementId: 'elsewhere' }
  elements.push({ id: 'extra', type: 'end', outputs: {} })
  ;(definition as { name: string }).name = 'changed'
}
